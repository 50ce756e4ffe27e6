"""Word lists and clinical scenarios for :mod:`archive.sample` (fictitious but realistic).

Every string is normalised to NFC at import, so generated text is NFC whatever the editor wrote.
Codes: ICD-10 (WHO, Vietnamese display names as in the MOH list), ICD-9-CM volume 3 procedures,
LOINC for observations, MOH-style department codes (K01...) and 5-digit facility codes (MA_CSKCB).
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass
from typing import Any, Final, TypeVar

T = TypeVar("T")


def _nfc(value: T) -> T:
    # Recursive over the shapes used below: str, tuple, dict and frozen dataclasses.
    result: Any = value
    if isinstance(value, str):
        result = unicodedata.normalize("NFC", value)
    elif isinstance(value, tuple):
        result = tuple(_nfc(v) for v in value)
    elif isinstance(value, dict):
        result = {_nfc(k): _nfc(v) for k, v in value.items()}
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _nfc(getattr(value, f.name)) for f in dataclasses.fields(value)}
        result = dataclasses.replace(value, **changes)
    return result  # type: ignore[no-any-return]


# --- people -------------------------------------------------------------------------------------

# (family name, weight in percent, roughly the national distribution)
FAMILY_NAMES: Final = _nfc(
    (
        ("Nguyễn", 38.0),
        ("Trần", 11.0),
        ("Lê", 9.5),
        ("Phạm", 7.0),
        ("Hoàng", 3.0),
        ("Huỳnh", 2.1),
        ("Phan", 4.5),
        ("Vũ", 2.4),
        ("Võ", 1.5),
        ("Đặng", 2.1),
        ("Bùi", 3.0),
        ("Đỗ", 1.4),
        ("Hồ", 1.3),
        ("Ngô", 1.3),
        ("Dương", 1.0),
        ("Lý", 0.5),
        ("Đinh", 1.0),
        ("Quách", 0.5),
    )
)
MIDDLE_MALE: Final = _nfc(
    ("Văn", "Văn", "Văn", "Hữu", "Đức", "Minh", "Quốc", "Thanh", "Công", "Đình", "Xuân", "Bá")
)
MIDDLE_FEMALE: Final = _nfc(
    ("Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Minh", "Phương", "Kim", "Hồng", "Thùy", "Mỹ")
)
GIVEN_MALE: Final = _nfc(
    (
        "Anh",
        "Hùng",
        "Dũng",
        "Tuấn",
        "Nam",
        "Hải",
        "Long",
        "Phúc",
        "Khoa",
        "Quân",
        "Trung",
        "Thắng",
        "Bình",
        "Cường",
        "Hiếu",
        "Sơn",
        "Tùng",
        "Đạt",
        "Huy",
        "Khánh",
        "Lộc",
        "Mạnh",
        "Nghĩa",
        "Quang",
        "Thành",
        "Toàn",
        "Việt",
        "Vinh",
        "Đông",
        "Hưng",
    )
)
GIVEN_FEMALE: Final = _nfc(
    (
        "Lan",
        "Hương",
        "Hà",
        "Linh",
        "Trang",
        "Thảo",
        "Mai",
        "Ngọc",
        "Hạnh",
        "Yến",
        "Nhung",
        "Hằng",
        "Vy",
        "Châu",
        "Uyên",
        "Huyền",
        "Loan",
        "Nga",
        "Oanh",
        "Phượng",
        "Quyên",
        "Thủy",
        "Tuyết",
        "Xuân",
        "Diệp",
        "Giang",
        "Hoa",
        "Liên",
        "My",
        "Trâm",
    )
)
PRACTITIONER_TITLES: Final = _nfc(("BS.", "BSCKI.", "BSCKII.", "ThS.BS.", "TS.BS."))

# (3-digit CCCD province code, province name, weight): patients are mostly local
PROVINCES: Final = _nfc(
    (
        ("017", "tỉnh Hòa Bình", 80.0),
        ("001", "thành phố Hà Nội", 6.0),
        ("025", "tỉnh Phú Thọ", 3.0),
        ("014", "tỉnh Sơn La", 3.0),
        ("037", "tỉnh Ninh Bình", 2.0),
        ("038", "tỉnh Thanh Hóa", 2.0),
        ("035", "tỉnh Hà Nam", 1.0),
        ("079", "thành phố Hồ Chí Minh", 1.0),
        ("031", "thành phố Hải Phòng", 1.0),
        ("040", "tỉnh Nghệ An", 1.0),
    )
)
DISTRICTS: Final = _nfc(
    (
        (
            "thành phố Hòa Bình",
            (
                "phường Đồng Tiến",
                "phường Phương Lâm",
                "phường Tân Thịnh",
                "phường Hữu Nghị",
                "phường Thái Bình",
                "xã Yên Mông",
            ),
        ),
        ("huyện Mai Châu", ("thị trấn Mai Châu", "xã Chiềng Châu", "xã Vân Sơn", "xã Nà Phòn")),
        ("huyện Lương Sơn", ("thị trấn Lương Sơn", "xã Cao Dương", "xã Cư Yên", "xã Liên Sơn")),
        ("huyện Kim Bôi", ("thị trấn Bo", "xã Hợp Tiến", "xã Vĩnh Đồng", "xã Nam Thượng")),
        ("huyện Tân Lạc", ("thị trấn Mãn Đức", "xã Phong Phú", "xã Quy Hậu")),
        ("huyện Lạc Sơn", ("thị trấn Vụ Bản", "xã Ân Nghĩa", "xã Yên Phú")),
        ("huyện Cao Phong", ("thị trấn Cao Phong", "xã Bắc Phong", "xã Thu Phong")),
        ("huyện Đà Bắc", ("thị trấn Đà Bắc", "xã Hiền Lương", "xã Tú Lý")),
    )
)
STREETS: Final = _nfc(
    (
        "Trần Hưng Đạo",
        "Cù Chính Lan",
        "An Dương Vương",
        "Lê Thánh Tông",
        "Chi Lăng",
        "Hoàng Văn Thụ",
        "Trương Hán Siêu",
        "Nguyễn Văn Trỗi",
        "Lý Thường Kiệt",
        "Điện Biên Phủ",
        "Phùng Hưng",
        "Tô Hiến Thành",
    )
)
HAMLETS: Final = _nfc(
    (
        "xóm Mít",
        "xóm Chanh",
        "bản Lác",
        "bản Pom Coọng",
        "xóm Bãi",
        "tổ 5",
        "tổ 12",
        "xóm Đồng Bài",
        "xóm Khả",
        "xóm Trại",
    )
)
# BHYT object codes (first two letters of the card) with weights
BHYT_OBJECTS: Final = (
    ("DN", 18.0),
    ("HC", 6.0),
    ("HT", 10.0),
    ("GD", 30.0),
    ("TE", 10.0),
    ("CN", 8.0),
    ("HN", 8.0),
    ("HS", 5.0),
    ("BT", 3.0),
    ("CB", 2.0),
)

# --- facilities and departments -------------------------------------------------------------------

# (MA_CSKCB, name, weight)
FACILITIES: Final = _nfc(
    (
        ("17001", "Bệnh viện Đa khoa tỉnh Hòa Bình", 80.0),
        ("17002", "Bệnh viện Y học cổ truyền tỉnh Hòa Bình", 8.0),
        ("17011", "Trung tâm Y tế huyện Mai Châu", 12.0),
    )
)
DEPARTMENTS: Final = _nfc(
    {
        "K01": "Khoa Khám bệnh",
        "K02": "Khoa Hồi sức cấp cứu",
        "K03": "Khoa Nội tổng hợp",
        "K04": "Khoa Nội tim mạch",
        "K05": "Khoa Nội tiêu hóa",
        "K07": "Khoa Nội thận - tiết niệu",
        "K08": "Khoa Nội tiết",
        "K11": "Khoa Truyền nhiễm",
        "K14": "Khoa Thần kinh",
        "K15": "Khoa Tâm thần",
        "K17": "Khoa Lão khoa",
        "K18": "Khoa Nhi",
        "K19": "Khoa Ngoại tổng hợp",
        "K23": "Khoa Ngoại thận - tiết niệu",
        "K24": "Khoa Chấn thương chỉnh hình",
        "K25": "Khoa Bỏng",
        "K27": "Khoa Phụ sản",
        "K30": "Khoa Mắt",
        "K32": "Khoa Ung bướu",
        "K35": "Khoa Phẫu thuật tạo hình - Thẩm mỹ",
    }
)

# --- codes ----------------------------------------------------------------------------------------

ICD10: Final = _nfc(
    {
        "J18.9": "Viêm phổi, không đặc hiệu",
        "J44.1": "Bệnh phổi tắc nghẽn mạn tính có đợt cấp, không đặc hiệu",
        "J45.9": "Hen phế quản, không đặc hiệu",
        "J06.9": "Nhiễm trùng đường hô hấp trên cấp, không đặc hiệu",
        "J20.9": "Viêm phế quản cấp, không đặc hiệu",
        "I10": "Bệnh lý tăng huyết áp vô căn (nguyên phát)",
        "I20.0": "Cơn đau thắt ngực không ổn định",
        "I21.9": "Nhồi máu cơ tim cấp, không đặc hiệu",
        "I50.0": "Suy tim sung huyết",
        "I63.9": "Nhồi máu não, không đặc hiệu",
        "I61.9": "Xuất huyết não, không đặc hiệu",
        "E11.9": "Bệnh đái tháo đường không phụ thuộc insulin, không có biến chứng",
        "E78.5": "Tăng lipid máu, không đặc hiệu",
        "K29.7": "Viêm dạ dày, không đặc hiệu",
        "K35.8": "Viêm ruột thừa cấp, khác và không đặc hiệu",
        "K80.2": "Sỏi túi mật không có viêm túi mật",
        "K74.6": "Xơ gan khác và không đặc hiệu",
        "A09": "Tiêu chảy và viêm dạ dày - ruột do nhiễm trùng",
        "A91": "Sốt xuất huyết Dengue",
        "A41.9": "Nhiễm khuẩn huyết, không đặc hiệu",
        "B18.1": "Viêm gan virus B mạn, không có tác nhân delta",
        "U07.1": "COVID-19, đã xác định virus",
        "N18.5": "Bệnh thận mạn, giai đoạn 5",
        "N39.0": "Nhiễm trùng đường tiết niệu, vị trí không xác định",
        "N20.0": "Sỏi thận",
        "M17.9": "Thoái hóa khớp gối, không đặc hiệu",
        "M54.5": "Đau vùng thắt lưng",
        "C34.9": "U ác của phế quản hoặc phổi, không đặc hiệu",
        "C22.0": "Ung thư biểu mô tế bào gan",
        "C16.9": "U ác của dạ dày, không đặc hiệu",
        "O80": "Đẻ thường một thai",
        "O82": "Đẻ một thai bằng mổ lấy thai",
        "G40.9": "Động kinh, không đặc hiệu",
        "H25.9": "Đục thể thủy tinh tuổi già, không đặc hiệu",
        "D64.9": "Thiếu máu, không đặc hiệu",
        "Z94.0": "Tình trạng ghép thận",
        "Z41.1": "Phẫu thuật thẩm mỹ vì lý do ngoại hình không chấp nhận được",
        "F32.1": "Giai đoạn trầm cảm vừa",
        "F20.0": "Tâm thần phân liệt thể paranoid",
        "F10.2": "Rối loạn tâm thần và hành vi do sử dụng rượu, hội chứng nghiện",
        "F41.1": "Rối loạn lo âu lan tỏa",
        "F31.2": "Rối loạn cảm xúc lưỡng cực, giai đoạn hưng cảm có triệu chứng loạn thần",
        "F03": "Mất trí không biệt định",
        "S06.0": "Chấn động não",
        "S52.5": "Gãy đầu dưới xương quay",
        "S72.0": "Gãy cổ xương đùi",
        "S82.2": "Gãy thân xương chày",
        "S01.8": "Vết thương hở phần khác của đầu",
        "S61.0": "Vết thương hở ngón tay không tổn thương móng",
        "T20.2": "Bỏng độ II vùng đầu và cổ",
        "T24.2": "Bỏng độ II vùng háng và chi dưới, trừ cổ chân và bàn chân",
        "T60.0": "Ngộ độc thuốc trừ sâu phospho hữu cơ và carbamat",
        "T51.0": "Tác dụng độc của ethanol",
        "T75.1": "Đuối nước và ngạt nước không tử vong",
        "V29.4": "Người lái mô tô bị thương trong va chạm với xe khác, tai nạn giao thông",
        "V23.4": "Người lái mô tô bị thương do va chạm với ô tô, tai nạn giao thông",
        "V43.5": "Người lái ô tô bị thương do va chạm với ô tô khác, tai nạn giao thông",
        "W11": "Ngã từ thang",
        "W12": "Ngã trên hoặc từ giàn giáo",
        "W23": "Bị kẹt, bị đè hoặc bị ép giữa các vật",
        "W69": "Đuối nước và chìm khi ở trong vùng nước tự nhiên",
        "W74": "Đuối nước và chìm không đặc hiệu",
        "X10": "Tiếp xúc với đồ uống, thức ăn, dầu mỡ nóng",
        "X00": "Tiếp xúc với đám cháy không kiểm soát trong nhà",
        "X99": "Bị tấn công bằng vật sắc nhọn",
        "Y04": "Bị tấn công bằng sức mạnh cơ thể",
        "X68": "Cố ý tự đầu độc bằng thuốc trừ sâu",
        "X48": "Ngộ độc do tai nạn và phơi nhiễm với thuốc trừ sâu",
        "X45": "Ngộ độc do tai nạn và phơi nhiễm với rượu",
        "W01": "Ngã trên cùng mặt phẳng do trượt, vấp",
        "W19": "Ngã không đặc hiệu",
        "W54": "Bị chó cắn hoặc húc",
    }
)
ICD9CM: Final = _nfc(
    {
        "47.01": "Cắt ruột thừa nội soi",
        "51.23": "Cắt túi mật nội soi",
        "74.1": "Mổ lấy thai đoạn dưới tử cung",
        "73.59": "Đỡ đẻ thường",
        "79.35": "Nắn mở, cố định trong gãy xương đùi",
        "79.36": "Nắn mở, cố định trong gãy xương chày và xương mác",
        "79.02": "Nắn kín gãy xương cẳng tay không cố định trong",
        "36.06": "Đặt stent động mạch vành",
        "45.23": "Nội soi đại tràng",
        "44.13": "Nội soi dạ dày",
        "13.41": "Phẫu thuật tán nhuyễn thể thủy tinh (Phaco)",
        "39.95": "Lọc máu (thận nhân tạo)",
        "96.04": "Đặt nội khí quản",
        "99.04": "Truyền khối hồng cầu",
        "86.59": "Khâu vết thương da và tổ chức dưới da",
        "86.22": "Cắt lọc vết bỏng",
        "81.54": "Thay toàn bộ khớp gối",
        "55.69": "Ghép thận",
        "86.82": "Căng da mặt (phẫu thuật thẩm mỹ)",
        "85.50": "Tạo hình tăng kích thước vú",
        "96.33": "Rửa dạ dày",
    }
)

# key -> (medication text, dosage instruction)
MEDICATIONS: Final = _nfc(
    {
        "paracetamol": (
            "Paracetamol 500 mg (viên nén)",
            "Uống 1 viên khi sốt trên 38,5°C, cách ít nhất 4 giờ, tối đa 4 viên/ngày",
        ),
        "amoxiclav": (
            "Amoxicilin + Acid clavulanic 875 mg/125 mg (viên)",
            "Uống 1 viên x 2 lần/ngày, sau ăn sáng và tối",
        ),
        "ceftriaxon": (
            "Ceftriaxon 1 g (lọ bột pha tiêm)",
            "Tiêm tĩnh mạch chậm 2 g/ngày lúc 8 giờ",
        ),
        "cefazolin": ("Cefazolin 1 g (lọ)", "Tiêm tĩnh mạch 1 g x 3 lần/ngày"),
        "ciprofloxacin": ("Ciprofloxacin 500 mg (viên)", "Uống 1 viên x 2 lần/ngày"),
        "omeprazol": ("Omeprazol 20 mg (viên nang)", "Uống 1 viên trước ăn sáng 30 phút"),
        "amlodipin": ("Amlodipin 5 mg (viên)", "Uống 1 viên/ngày vào buổi sáng"),
        "metformin": ("Metformin 850 mg (viên)", "Uống 1 viên x 2 lần/ngày, sau ăn sáng và tối"),
        "insulin": (
            "Insulin người trộn 30/70, 100 IU/ml (bút tiêm)",
            "Tiêm dưới da 12 đơn vị trước ăn sáng, 8 đơn vị trước ăn tối",
        ),
        "nacl": ("Natri clorid 0,9% 500 ml (chai)", "Truyền tĩnh mạch 1.000 ml/ngày, XL giọt/phút"),
        "glucose": ("Glucose 5% 500 ml (chai)", "Truyền tĩnh mạch 500 ml/ngày, XXX giọt/phút"),
        "ringer": ("Ringer lactat 500 ml (chai)", "Truyền tĩnh mạch 1.500 ml/ngày"),
        "atorvastatin": ("Atorvastatin 20 mg (viên)", "Uống 1 viên buổi tối"),
        "aspirin": ("Acid acetylsalicylic 81 mg (viên)", "Uống 1 viên/ngày sau ăn trưa"),
        "clopidogrel": ("Clopidogrel 75 mg (viên)", "Uống 1 viên/ngày"),
        "furosemid": ("Furosemid 40 mg (viên)", "Uống 1 viên buổi sáng"),
        "salbutamol": ("Salbutamol 2,5 mg/2,5 ml (ống khí dung)", "Khí dung 1 ống x 3 lần/ngày"),
        "methylpred": ("Methylprednisolon 40 mg (lọ)", "Tiêm tĩnh mạch 40 mg/ngày"),
        "tramadol": ("Tramadol 50 mg (viên)", "Uống 1 viên khi đau, tối đa 4 viên/ngày"),
        "morphin": (
            "Morphin hydroclorid 10 mg/ml (ống)",
            "Tiêm dưới da 5 mg khi đau nhiều, cách 4-6 giờ",
        ),
        "sertralin": ("Sertralin 50 mg (viên)", "Uống 1 viên/ngày buổi sáng sau ăn"),
        "olanzapin": ("Olanzapin 10 mg (viên)", "Uống 1 viên buổi tối trước khi ngủ"),
        "diazepam": ("Diazepam 5 mg (viên)", "Uống 1 viên buổi tối khi mất ngủ"),
        "haloperidol": ("Haloperidol 5 mg/ml (ống)", "Tiêm bắp 1 ống khi kích động"),
        "valproat": ("Natri valproat 500 mg (viên)", "Uống 1 viên x 2 lần/ngày"),
        "vitb1": ("Thiamin (vitamin B1) 100 mg (ống)", "Tiêm bắp 1 ống/ngày"),
        "atropin": (
            "Atropin sulfat 0,25 mg/ml (ống)",
            "Tiêm tĩnh mạch theo đáp ứng, duy trì tình trạng thấm atropin",
        ),
        "pam": (
            "Pralidoxim clorid 500 mg (lọ)",
            "Truyền tĩnh mạch 1 g trong 30 phút, sau đó duy trì 500 mg/giờ",
        ),
        "tacrolimus": (
            "Tacrolimus 1 mg (viên nang)",
            "Uống 3 viên x 2 lần/ngày cách nhau 12 giờ, chỉnh theo nồng độ thuốc",
        ),
        "mycophenolat": ("Mycophenolat mofetil 500 mg (viên)", "Uống 2 viên x 2 lần/ngày"),
        "oxytocin": ("Oxytocin 5 IU/ml (ống)", "Tiêm bắp 10 IU ngay sau sổ thai"),
        "oresol": (
            "Oresol 245 (gói)",
            "Pha 1 gói với 200 ml nước đun sôi để nguội, uống sau mỗi lần đi ngoài",
        ),
        "zinc": ("Kẽm gluconat 10 mg (gói)", "Uống 1 gói/ngày trong 10-14 ngày"),
        "silver": ("Sulfadiazin bạc 1% (tuýp 20 g)", "Bôi vùng bỏng 2 lần/ngày sau thay băng"),
        "levetiracetam": ("Levetiracetam 500 mg (viên)", "Uống 1 viên x 2 lần/ngày"),
        "epo": ("Erythropoietin 2.000 IU (bơm tiêm)", "Tiêm dưới da 2.000 IU x 2 lần/tuần"),
        "tobradex": (
            "Tobramycin + Dexamethason (lọ nhỏ mắt 5 ml)",
            "Nhỏ mắt mổ 1 giọt x 4 lần/ngày",
        ),
        "celecoxib": ("Celecoxib 200 mg (viên)", "Uống 1 viên/ngày sau ăn"),
        "molnupiravir": ("Molnupiravir 200 mg (viên)", "Uống 4 viên x 2 lần/ngày trong 5 ngày"),
        "enoxaparin": ("Enoxaparin 40 mg/0,4 ml (bơm tiêm)", "Tiêm dưới da 40 mg/ngày"),
    }
)


@dataclass(frozen=True, slots=True)
class Measure:
    """An observation the generator draws from a normal distribution."""

    loinc: str
    display: str  # LOINC display (English, as the code system gives it)
    text: str  # Vietnamese label for the PDF
    unit: str
    ucum: str
    mean: float
    sd: float
    decimals: int
    low: float  # values are clamped to [low, high]
    high: float


VITALS: Final = _nfc(
    (
        Measure("8867-4", "Heart rate", "Mạch", "lần/phút", "/min", 84, 12, 0, 45, 160),
        Measure(
            "8480-6",
            "Systolic blood pressure",
            "Huyết áp tâm thu",
            "mmHg",
            "mm[Hg]",
            125,
            18,
            0,
            80,
            210,
        ),
        Measure(
            "8462-4",
            "Diastolic blood pressure",
            "Huyết áp tâm trương",
            "mmHg",
            "mm[Hg]",
            78,
            10,
            0,
            40,
            120,
        ),
        Measure("8310-5", "Body temperature", "Nhiệt độ", "°C", "Cel", 37.1, 0.7, 1, 35.5, 41.0),
        Measure("29463-7", "Body weight", "Cân nặng", "kg", "kg", 56, 9, 1, 2.5, 110),
    )
)
LABS: Final = _nfc(
    (
        Measure(
            "718-7",
            "Hemoglobin [Mass/volume] in Blood",
            "Huyết sắc tố (Hb)",
            "g/L",
            "g/L",
            128,
            18,
            0,
            50,
            180,
        ),
        Measure(
            "2345-7",
            "Glucose [Moles/volume] in Serum or Plasma",
            "Glucose máu",
            "mmol/L",
            "mmol/L",
            6.4,
            2.2,
            1,
            2.5,
            30,
        ),
        Measure(
            "2160-0",
            "Creatinine [Mass/volume] in Serum or Plasma",
            "Creatinin máu",
            "µmol/L",
            "umol/L",
            85,
            30,
            0,
            30,
            900,
        ),
        Measure(
            "6690-2",
            "Leukocytes [#/volume] in Blood",
            "Số lượng bạch cầu (WBC)",
            "G/L",
            "10*9/L",
            9.0,
            3.5,
            1,
            1.5,
            40,
        ),
        Measure(
            "777-3",
            "Platelets [#/volume] in Blood",
            "Số lượng tiểu cầu (PLT)",
            "G/L",
            "10*9/L",
            245,
            70,
            0,
            10,
            600,
        ),
        Measure(
            "1742-6",
            "Alanine aminotransferase",
            "Hoạt độ ALT (GPT)",
            "U/L",
            "U/L",
            32,
            18,
            0,
            5,
            900,
        ),
        Measure(
            "2951-2",
            "Sodium [Moles/volume] in Serum or Plasma",
            "Natri máu",
            "mmol/L",
            "mmol/L",
            138,
            3.5,
            0,
            115,
            160,
        ),
        Measure(
            "2823-3",
            "Potassium [Moles/volume] in Serum or Plasma",
            "Kali máu",
            "mmol/L",
            "mmol/L",
            4.0,
            0.5,
            1,
            2.5,
            7,
        ),
        Measure(
            "1988-5",
            "C reactive protein [Mass/volume] in Serum or Plasma",
            "Protein phản ứng C (CRP)",
            "mg/L",
            "mg/L",
            18,
            25,
            1,
            0.5,
            300,
        ),
    )
)

# --- scenarios ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    """A kind of encounter: department, codes, drugs and the words of its notes."""

    key: str
    weight: float
    department: str
    classes: tuple[str, ...]  # v3-ActCode, drawn uniformly (repeat a code to weight it)
    principal: tuple[str, ...]  # ICD-10, one drawn
    comorbid: tuple[str, ...] = ()  # ICD-10, 0-2 drawn
    procedures: tuple[str, ...] = ()  # ICD-9-CM, one drawn with probability procedure_rate
    procedure_rate: float = 0.0
    medications: tuple[str, ...] = ("paracetamol",)
    labs: tuple[str, ...] = ("718-7", "2345-7")
    complaint: tuple[str, ...] = ("mệt mỏi",)
    sex: str | None = None
    ages: tuple[int, int] = (18, 90)
    accident: str = "0"  # QĐ130 MA_TAI_NAN
    external: tuple[str, ...] = ()  # external-cause ICD-10 (V01-Y98), one drawn
    fatal_rate: float = 0.0


SCENARIOS: Final = _nfc(
    (
        Scenario(
            "pneumonia",
            9,
            "K03",
            ("IMP", "IMP", "EMER"),
            ("J18.9", "J20.9"),
            ("I10", "E11.9", "J44.1"),
            medications=("ceftriaxon", "paracetamol", "nacl"),
            labs=("718-7", "6690-2", "1988-5"),
            complaint=("sốt cao, ho khạc đờm đục", "ho, khó thở tăng dần", "sốt, đau ngực khi ho"),
            fatal_rate=0.04,
        ),
        Scenario(
            "copd",
            4,
            "K03",
            ("IMP",),
            ("J44.1", "J45.9"),
            ("I10",),
            medications=("salbutamol", "methylpred", "amoxiclav"),
            complaint=("khó thở, khò khè", "ho nhiều, khó thở về đêm"),
            ages=(40, 90),
        ),
        Scenario(
            "cardiac",
            7,
            "K04",
            ("IMP", "EMER", "AMB"),
            ("I10", "I20.0", "I50.0", "I21.9"),
            ("E11.9", "E78.5"),
            ("36.06",),
            0.15,
            ("amlodipin", "aspirin", "clopidogrel", "atorvastatin", "furosemid"),
            ("718-7", "2160-0", "2823-3"),
            ("đau thắt ngực trái", "hồi hộp, khó thở khi gắng sức", "đau đầu, chóng mặt"),
            ages=(40, 95),
            fatal_rate=0.05,
        ),
        Scenario(
            "stroke",
            4,
            "K14",
            ("IMP", "EMER"),
            ("I63.9", "I61.9"),
            ("I10", "E11.9"),
            medications=("aspirin", "atorvastatin", "nacl", "enoxaparin"),
            complaint=("yếu nửa người phải", "nói khó, méo miệng", "đau đầu dữ dội, nôn"),
            ages=(45, 95),
            fatal_rate=0.08,
        ),
        Scenario(
            "diabetes",
            6,
            "K08",
            ("AMB", "AMB", "IMP"),
            ("E11.9",),
            ("I10", "E78.5"),
            medications=("metformin", "insulin", "atorvastatin"),
            labs=("2345-7", "2160-0"),
            complaint=("khát nhiều, tiểu nhiều", "khám định kỳ đái tháo đường"),
        ),
        Scenario(
            "gastro",
            7,
            "K01",
            ("AMB",),
            ("K29.7", "M54.5", "J06.9"),
            medications=("omeprazol", "paracetamol"),
            labs=(),
            complaint=("đau thượng vị", "đau lưng", "sổ mũi, đau họng"),
        ),
        Scenario(
            "appendix",
            4,
            "K19",
            ("IMP",),
            ("K35.8",),
            (),
            ("47.01",),
            1.0,
            ("cefazolin", "tramadol", "nacl"),
            ("718-7", "6690-2"),
            ("đau bụng hố chậu phải", "đau bụng quanh rốn lan xuống hố chậu phải"),
            ages=(8, 70),
        ),
        Scenario(
            "gallstone",
            2,
            "K19",
            ("IMP",),
            ("K80.2",),
            ("E78.5",),
            ("51.23",),
            0.9,
            ("cefazolin", "tramadol"),
            ("718-7", "1742-6"),
            ("đau hạ sườn phải",),
        ),
        Scenario(
            "dengue",
            4,
            "K11",
            ("IMP",),
            ("A91",),
            (),
            medications=("paracetamol", "ringer"),
            labs=("777-3", "718-7"),
            complaint=("sốt cao liên tục 3 ngày", "sốt, đau mỏi người"),
        ),
        Scenario(
            "child_diarrhoea",
            4,
            "K18",
            ("IMP", "AMB"),
            ("A09",),
            (),
            medications=("oresol", "zinc"),
            labs=("2951-2", "2823-3"),
            complaint=("tiêu chảy nhiều lần, nôn",),
            ages=(0, 10),
        ),
        Scenario(
            "child_pneumonia",
            4,
            "K18",
            ("IMP",),
            ("J18.9", "J20.9"),
            (),
            medications=("ceftriaxon", "paracetamol", "salbutamol"),
            labs=("6690-2",),
            complaint=("sốt, ho, thở nhanh",),
            ages=(0, 12),
        ),
        Scenario(
            "delivery",
            4,
            "K27",
            ("IMP",),
            ("O80",),
            (),
            ("73.59",),
            1.0,
            ("oxytocin", "paracetamol"),
            ("718-7",),
            ("chuyển dạ, thai 39 tuần", "đau bụng từng cơn, thai đủ tháng"),
            sex="female",
            ages=(18, 42),
        ),
        Scenario(
            "caesarean",
            2,
            "K27",
            ("IMP",),
            ("O82",),
            (),
            ("74.1",),
            1.0,
            ("oxytocin", "cefazolin", "tramadol"),
            ("718-7",),
            ("thai 39 tuần, ngôi mông, chỉ định mổ lấy thai",),
            sex="female",
            ages=(18, 45),
        ),
        Scenario(
            "ckd",
            3,
            "K07",
            ("IMP", "AMB"),
            ("N18.5",),
            ("I10", "D64.9"),
            ("39.95",),
            0.8,
            ("epo", "furosemid", "amlodipin"),
            ("2160-0", "2823-3", "718-7"),
            ("phù, mệt mỏi, tiểu ít",),
        ),
        Scenario(
            "uti",
            3,
            "K07",
            ("AMB", "IMP"),
            ("N39.0", "N20.0"),
            (),
            medications=("ciprofloxacin", "paracetamol"),
            labs=("6690-2", "2160-0"),
            complaint=("tiểu buốt, tiểu rắt", "đau hông lưng phải"),
        ),
        Scenario(
            "cataract",
            3,
            "K30",
            ("AMB",),
            ("H25.9",),
            (),
            ("13.41",),
            1.0,
            ("tobradex",),
            (),
            ("nhìn mờ mắt trái", "nhìn mờ tăng dần hai mắt"),
            ages=(55, 90),
        ),
        Scenario(
            "knee",
            3,
            "K24",
            ("AMB", "IMP"),
            ("M17.9",),
            (),
            ("81.54",),
            0.15,
            ("celecoxib", "paracetamol"),
            (),
            ("đau khớp gối hai bên",),
            ages=(50, 90),
        ),
        Scenario(
            "cancer",
            3,
            "K32",
            ("IMP",),
            ("C34.9", "C22.0", "C16.9"),
            ("B18.1", "K74.6"),
            medications=("morphin", "nacl", "omeprazol"),
            labs=("718-7", "1742-6"),
            complaint=("gầy sút cân, mệt mỏi", "đau bụng, ăn kém"),
            ages=(35, 90),
            fatal_rate=0.12,
        ),
        Scenario(
            "sepsis",
            1.5,
            "K02",
            ("EMER", "IMP"),
            ("A41.9",),
            ("E11.9", "N39.0"),
            ("96.04",),
            0.3,
            ("ceftriaxon", "nacl", "ringer"),
            ("6690-2", "1988-5", "2160-0"),
            ("sốt cao, rét run, lơ mơ",),
            ages=(30, 95),
            fatal_rate=0.2,
        ),
        Scenario(
            "covid",
            0.5,
            "K11",
            ("IMP",),
            ("U07.1",),
            ("I10",),
            medications=("molnupiravir", "paracetamol"),
            complaint=("sốt, ho, mất vị giác",),
        ),
        Scenario(
            "epilepsy",
            1,
            "K14",
            ("IMP", "EMER"),
            ("G40.9",),
            (),
            medications=("levetiracetam", "diazepam"),
            complaint=("co giật toàn thân",),
            ages=(5, 70),
        ),
        Scenario(
            "depression",
            1.5,
            "K15",
            ("IMP", "AMB"),
            ("F32.1", "F41.1"),
            (),
            medications=("sertralin", "diazepam"),
            labs=(),
            complaint=("buồn chán, mất ngủ kéo dài, giảm hứng thú",),
        ),
        Scenario(
            "psychosis",
            1,
            "K15",
            ("IMP",),
            ("F20.0", "F31.2"),
            (),
            medications=("olanzapin", "haloperidol", "valproat"),
            labs=("1742-6",),
            complaint=("nói một mình, nghi ngờ người nhà hại mình", "kích động, không ngủ"),
        ),
        Scenario(
            "alcohol",
            1,
            "K15",
            ("IMP",),
            ("F10.2",),
            ("K74.6",),
            medications=("vitb1", "diazepam"),
            labs=("1742-6",),
            complaint=("run tay, vã mồ hôi sau khi ngừng rượu",),
            sex="male",
        ),
        Scenario(
            "dementia",
            0.7,
            "K17",
            ("IMP", "AMB"),
            ("F03",),
            ("I10",),
            medications=("olanzapin",),
            labs=(),
            complaint=("hay quên, đi lạc",),
            ages=(70, 95),
        ),
        Scenario(
            "traffic",
            3,
            "K24",
            ("IMP", "EMER"),
            ("S82.2", "S52.5", "S72.0", "S06.0"),
            (),
            ("79.36", "79.02", "79.35"),
            0.6,
            ("cefazolin", "tramadol", "nacl"),
            ("718-7",),
            ("chấn thương do tai nạn giao thông (xe máy)",),
            ages=(15, 75),
            accident="1",
            external=("V29.4", "V23.4", "V43.5"),
            fatal_rate=0.02,
        ),
        Scenario(
            "work",
            1,
            "K24",
            ("IMP", "AMB"),
            ("S61.0", "S82.2", "S52.5"),
            (),
            ("86.59", "79.36"),
            0.6,
            ("cefazolin", "tramadol"),
            (),
            ("tai nạn khi đang làm việc tại công trường",),
            ages=(18, 62),
            accident="2",
            external=("W11", "W12", "W23"),
        ),
        Scenario(
            "drowning",
            0.3,
            "K02",
            ("EMER",),
            ("T75.1",),
            (),
            medications=("nacl",),
            complaint=("đuối nước, được vớt lên sau khoảng 5 phút",),
            ages=(3, 40),
            accident="3",
            external=("W69", "W74"),
            fatal_rate=0.1,
        ),
        Scenario(
            "burn",
            0.5,
            "K25",
            ("IMP",),
            ("T20.2", "T24.2"),
            (),
            ("86.22",),
            0.7,
            ("silver", "ringer", "tramadol"),
            ("718-7",),
            ("bỏng do nước sôi",),
            ages=(1, 70),
            accident="4",
            external=("X10", "X00"),
        ),
        Scenario(
            "violence",
            0.5,
            "K19",
            ("EMER", "IMP"),
            ("S01.8", "S06.0"),
            (),
            ("86.59",),
            0.8,
            ("cefazolin", "paracetamol"),
            (),
            ("vết thương vùng đầu do bị đánh",),
            ages=(16, 60),
            accident="5",
            external=("X99", "Y04"),
        ),
        Scenario(
            "self_harm",
            0.4,
            "K02",
            ("EMER", "IMP"),
            ("T60.0",),
            ("F32.1",),
            ("96.33",),
            1.0,
            ("atropin", "pam", "nacl"),
            ("2160-0",),
            ("uống thuốc trừ sâu tự tử",),
            ages=(15, 70),
            accident="6",
            external=("X68",),
            fatal_rate=0.15,
        ),
        Scenario(
            "poisoning",
            0.5,
            "K02",
            ("EMER", "IMP"),
            ("T60.0", "T51.0"),
            (),
            ("96.33",),
            0.6,
            ("atropin", "pam", "vitb1"),
            ("2345-7",),
            ("ngộ độc sau khi phun thuốc sâu", "say rượu, lơ mơ"),
            ages=(16, 70),
            accident="7",
            external=("X48", "X45"),
        ),
        Scenario(
            "domestic",
            1,
            "K24",
            ("IMP", "AMB"),
            ("S72.0", "S52.5", "S61.0"),
            (),
            ("79.35", "79.02"),
            0.5,
            ("tramadol", "enoxaparin"),
            ("718-7",),
            ("ngã tại nhà", "bị chó cắn vào cẳng chân"),
            ages=(2, 95),
            accident="8",
            external=("W01", "W19", "W54"),
        ),
        Scenario(
            "transplant",
            0.25,
            "K23",
            ("IMP",),
            ("N18.5",),
            ("Z94.0",),
            ("55.69",),
            1.0,
            ("tacrolimus", "mycophenolat", "methylpred"),
            ("2160-0", "718-7"),
            ("vào viện ghép thận theo kế hoạch",),
            ages=(20, 60),
        ),
        Scenario(
            "cosmetic",
            0.3,
            "K35",
            ("IMP", "AMB"),
            ("Z41.1",),
            (),
            ("86.82", "85.50"),
            1.0,
            ("cefazolin", "paracetamol"),
            (),
            ("phẫu thuật thẩm mỹ theo yêu cầu",),
            sex="female",
            ages=(22, 60),
        ),
    )
)
FATAL_CODES: Final = ("I21.9", "I63.9", "J18.9", "A41.9", "C34.9")

# --- narrative ------------------------------------------------------------------------------------

NOTE_OPENINGS: Final = _nfc(
    (
        "Bệnh nhân vào viện vì {complaint}. Bệnh diễn biến khoảng {days} ngày nay, ở nhà đã tự "
        "dùng thuốc nhưng không đỡ, gia đình đưa đến khám.",
        "Lý do vào viện: {complaint}. Theo lời kể của bệnh nhân và người nhà, triệu chứng xuất "
        "hiện khoảng {days} ngày trước, tăng dần.",
    )
)
NOTE_HISTORY: Final = _nfc(
    (
        "Tiền sử: chưa phát hiện bệnh lý nội khoa mạn tính, không dị ứng thuốc.",
        "Tiền sử: tăng huyết áp nhiều năm, điều trị không đều. Không dị ứng thuốc.",
        "Tiền sử: đái tháo đường typ 2 đang dùng thuốc uống. Gia đình không ai mắc bệnh tương tự.",
        "Tiền sử: hút thuốc lá 20 bao-năm, uống rượu thường xuyên.",
        "Tiền sử: khỏe mạnh, tiêm chủng đầy đủ theo chương trình.",
    )
)
NOTE_EXAM: Final = _nfc(
    (
        "Khám lúc vào: bệnh nhân tỉnh, tiếp xúc được, thể trạng trung bình. Mạch {hr} lần/phút, "
        "huyết áp {sys}/{dia} mmHg, nhiệt độ {temp}°C.",
        "Khám vào viện: tỉnh, mệt, da niêm mạc hồng nhạt, không phù, không xuất huyết dưới da. "
        "Mạch {hr} lần/phút, huyết áp {sys}/{dia} mmHg.",
    )
)
NOTE_PROGRESS: Final = _nfc(
    (
        "Bệnh nhân tỉnh, tiếp xúc tốt, da niêm mạc hồng.",
        "Mạch {hr} lần/phút, huyết áp {sys}/{dia} mmHg, nhiệt độ {temp}°C.",
        "Phổi thông khí rõ, không nghe rales.",
        "Phổi còn ít rales nổ rải rác hai đáy.",
        "Bụng mềm, không chướng, ấn không đau.",
        "Ăn uống được, đại tiểu tiện bình thường.",
        "Bệnh nhân còn mệt, ăn kém, ngủ được.",
        "Tiếp tục điều trị theo y lệnh, theo dõi sát dấu hiệu sinh tồn.",
        "Vết mổ khô, không chảy dịch, không có dấu hiệu nhiễm trùng.",
        "Đã giải thích tình trạng bệnh và kế hoạch điều trị cho người nhà.",
        "Hội chẩn khoa, thống nhất tiếp tục phác đồ hiện tại.",
        "Đường huyết mao mạch buổi sáng {glu} mmol/L.",
        "Giảm đau tốt, bệnh nhân tự vận động nhẹ nhàng tại giường.",
        "Không sốt, không nôn, không đau đầu.",
        "Nước tiểu trong, khoảng 1.500 ml/24 giờ.",
        "Điều dưỡng chăm sóc cấp II, chế độ ăn bệnh lý theo chỉ định.",
        "Kết quả xét nghiệm trong giới hạn cho phép, chưa cần điều chỉnh thuốc.",
        "Bệnh nhân hợp tác điều trị, tinh thần ổn định.",
    )
)
NOTE_DISCHARGE: Final = _nfc(
    (
        "Tình trạng ra viện: bệnh nhân tỉnh, các triệu chứng cải thiện rõ, dấu hiệu sinh tồn ổn "
        "định. Hướng điều trị tiếp: uống thuốc theo đơn, tái khám sau 1 tuần tại {department}, "
        "có dấu hiệu bất thường đến khám lại ngay.",
        "Ra viện trong tình trạng ổn định. Dặn dò chế độ ăn uống, sinh hoạt, tái khám theo hẹn "
        "hoặc khi có dấu hiệu bất thường.",
    )
)
NOTE_DEATH: Final = _nfc(
    "Diễn biến bệnh nặng dần, suy hô hấp và trụy tuần hoàn không đáp ứng điều trị. Đã cấp cứu "
    "tích cực theo phác đồ, đặt nội khí quản, thở máy, dùng thuốc vận mạch. Bệnh nhân tử vong lúc "
    "{time}. Đã thông báo và giải thích cho gia đình."
)
NOTE_TRANSFER: Final = _nfc(
    "Do vượt quá khả năng chuyên môn, bệnh nhân được chuyển tuyến trên để tiếp tục điều trị, "
    "đã liên hệ trước với cơ sở tiếp nhận."
)
