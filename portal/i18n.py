"""The portal's labels in Vietnamese and English.

Vietnamese is the default: the users are Vietnamese hospital staff and inspectors. A label missing
from a language is a bug the unit tests catch (every key has both), never a blank on a page.
The chosen language travels in a cookie; ``Accept-Language`` decides the first visit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

LANGUAGES: Final = ("vi", "en")
DEFAULT: Final = "vi"

# key: (Vietnamese, English)
LABELS: Final[Mapping[str, tuple[str, str]]] = {
    "app.title": ("Lưu trữ bệnh án điện tử", "Electronic medical-record archive"),
    "app.tagline": (
        "Tra cứu và trích xuất hồ sơ đã lưu trữ — mọi lượt truy cập đều được ghi nhật ký",
        "Find and export archived dossiers — every access is recorded in the audit log",
    ),
    "nav.search": ("Tra cứu", "Search"),
    "nav.grants": ("Quyền truy cập", "Grants"),
    "nav.audit": ("Nhật ký truy cập", "Audit log"),
    "nav.signout": ("Đăng xuất", "Sign out"),
    "nav.signed_in_as": ("Đăng nhập:", "Signed in as"),
    "login.title": ("Đăng nhập", "Sign in"),
    "login.username": ("Tên đăng nhập", "Username"),
    "login.password": ("Mật khẩu", "Password"),
    "login.submit": ("Đăng nhập", "Sign in"),
    "login.failed": (
        "Sai tên đăng nhập hoặc mật khẩu.",
        "Unknown user or wrong password.",
    ),
    "login.expired": (
        "Phiên làm việc không còn hiệu lực. Vui lòng đăng nhập lại.",
        "Your session is no longer valid. Please sign in again.",
    ),
    "login.signed_out": ("Đã đăng xuất.", "Signed out."),
    "role.records-officer": ("Cán bộ lưu trữ hồ sơ", "Records officer"),
    "role.inspector": ("Thanh tra", "Inspector"),
    "role.auditor": ("Kiểm toán viên", "Auditor"),
    "role.admin": ("Quản trị viên", "Administrator"),
    "role.facility-head": ("Thủ trưởng cơ sở", "Facility head"),
    "role.facility-head-delegate": ("Người được thủ trưởng ủy quyền", "Facility head's delegate"),
    "search.title": ("Tra cứu hồ sơ", "Find a dossier"),
    "search.encounter": ("Mã đợt điều trị", "Encounter id"),
    "search.patient": ("Mã người bệnh", "Patient id"),
    "search.patient_hint": (
        "Mã người bệnh được mã hoá ngay khi tra cứu và không được lưu.",
        "The patient id is pseudonymised at once and not kept.",
    ),
    "search.facility": ("Mã cơ sở KCB", "Facility code"),
    "search.class": ("Loại lưu trữ", "Retention class"),
    "search.any_class": ("(tất cả)", "(any)"),
    "search.from": ("Ra viện từ ngày", "Discharged from"),
    "search.to": ("đến ngày", "to"),
    "search.submit": ("Tra cứu", "Search"),
    "search.one_kind": (
        "Tra cứu theo một tiêu chí: mã đợt điều trị, mã người bệnh, hoặc cơ sở / loại lưu trữ.",
        "Search by one of: encounter id, patient id, or facility / retention class.",
    ),
    "search.results": ("Kết quả", "Results"),
    "search.none": ("Không có hồ sơ nào phù hợp.", "No archived record matched."),
    "search.truncated": (
        "Còn nhiều kết quả hơn: hãy thu hẹp tìm kiếm.",
        "There are more results: narrow the search.",
    ),
    "search.export_patient": (
        "Trích xuất toàn bộ hồ sơ của người bệnh",
        "Export every record of this patient",
    ),
    "grants.mine": ("Quyền truy cập của bạn", "Your grants"),
    "grants.none_active": (
        "Bạn chưa có quyền truy cập nào còn hiệu lực: hãy liên hệ cán bộ lưu trữ hồ sơ.",
        "You hold no active grant: ask a records officer.",
    ),
    "col.encounter": ("Đợt điều trị", "Encounter"),
    "col.facility": ("Cơ sở", "Facility"),
    "col.admitted": ("Vào viện", "Admitted"),
    "col.discharged": ("Ra viện", "Discharged"),
    "col.class": ("Loại lưu trữ", "Class"),
    "col.retain_until": ("Lưu trữ đến", "Retain until"),
    "col.hold": ("Phong toả", "Legal hold"),
    "col.verification": ("Kiểm tra gần nhất", "Last verification"),
    "col.versions": ("Phiên bản", "Versions"),
    "col.document": ("Tài liệu", "Document"),
    "col.patient": ("Bút danh người bệnh", "Patient pseudonym"),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "verification.never": ("chưa kiểm tra", "not yet verified"),
    "status.passed": ("đạt", "passed"),
    "status.failed": ("KHÔNG ĐẠT", "FAILED"),
    "status.indeterminate": ("chưa xác định", "indeterminate"),
    "dossier.title": ("Hồ sơ", "Dossier"),
    "dossier.documents": ("Tài liệu đã lưu trữ", "Archived documents"),
    "dossier.document": (
        "Tóm tắt ra viện (PDF/A-3b, ký số PAdES B-LTA, kèm dữ liệu FHIR)",
        "Discharge summary (PDF/A-3b, PAdES B-LTA signed, FHIR data embedded)",
    ),
    "dossier.retention": ("Thời hạn lưu trữ", "Retention"),
    "dossier.on_hold": (
        "Đang bị phong toả theo yêu cầu pháp lý: không được tiêu huỷ.",
        "Under legal hold: it may not be destroyed.",
    ),
    "dossier.not_on_hold": ("Không bị phong toả.", "No legal hold."),
    "dossier.export": ("Trích xuất hồ sơ (BagIt .zip)", "Export dossier (BagIt .zip)"),
    "dossier.export_note": (
        "Bản trích xuất gồm tài liệu PDF đúng như đã ký, dữ liệu FHIR, báo cáo kiểm tra lập "
        "tại thời điểm trích xuất và bảng băm SHA-256 của từng tệp.",
        "The export holds the PDFs exactly as signed, the FHIR data, a verification report made "
        "at export time and the SHA-256 of every file.",
    ),
    "grants.title": ("Quyền truy cập của thanh tra", "Inspector grants"),
    "grants.issue": ("Cấp quyền mới", "Issue a grant"),
    "grants.inspector": ("Tài khoản thanh tra", "Inspector account"),
    "grants.case": ("Số quyết định / hồ sơ vụ việc", "Decision or case file"),
    "grants.encounters": (
        "Mã đợt điều trị (cách nhau bởi dấu phẩy)",
        "Encounter ids (comma separated)",
    ),
    "grants.days": ("Số ngày hiệu lực", "Valid for (days)"),
    "grants.scope_hint": (
        "Phạm vi: ít nhất một trong cơ sở, đợt điều trị, người bệnh. Quyền tự hết hạn.",
        "Scope: at least one of facility, encounters, patient. A grant expires by itself.",
    ),
    "grants.submit": ("Cấp quyền", "Issue grant"),
    "grants.issued": ("Đã cấp quyền", "Grant issued"),
    "grants.revoke": ("Thu hồi", "Revoke"),
    "grants.reason": ("Lý do thu hồi", "Reason"),
    "grants.revoked": ("Đã thu hồi quyền", "Grant revoked"),
    "col.grant": ("Mã quyền", "Grant"),
    "col.scope": ("Phạm vi", "Scope"),
    "col.valid": ("Hiệu lực", "Valid"),
    "col.issued_by": ("Người cấp", "Issued by"),
    "col.case": ("Căn cứ", "Case"),
    "col.state": ("Trạng thái", "State"),
    "state.active": ("còn hiệu lực", "active"),
    "state.expired": ("hết hạn", "expired"),
    "state.pending": ("chưa bắt đầu", "not yet valid"),
    "scope.facility": ("cơ sở", "facility"),
    "scope.encounters": ("đợt điều trị", "encounter(s)"),
    "scope.patient": ("một người bệnh", "one patient"),
    "audit.title": ("Nhật ký truy cập", "Audit log"),
    "audit.actor": ("Người thực hiện", "Actor"),
    "audit.action": ("Hành động (tiền tố)", "Action (prefix)"),
    "audit.submit": ("Lọc", "Filter"),
    "audit.shown": ("sự kiện (mới nhất trước)", "event(s), newest first"),
    "col.when": ("Thời điểm (UTC)", "When (UTC)"),
    "col.actor": ("Người thực hiện", "Actor"),
    "col.role": ("Vai trò", "Role"),
    "col.action": ("Hành động", "Action"),
    "col.outcome": ("Kết quả", "Outcome"),
    "col.what": ("Đối tượng", "What"),
    "col.detail": ("Chi tiết", "Detail"),
    "outcome.success": ("thành công", "success"),
    "outcome.failure": ("bị từ chối / lỗi", "refused / failed"),
    "error.401": ("Chưa đăng nhập (401)", "Not signed in (401)"),
    "error.403": ("Không được phép (403)", "Not allowed (403)"),
    "error.404": ("Không tìm thấy (404)", "Not found (404)"),
    "error.400": ("Yêu cầu không hợp lệ (400)", "Bad request (400)"),
    "error.429": ("Quá nhiều lần thử (429)", "Too many attempts (429)"),
    "error.500": ("Lỗi hệ thống (500)", "Internal error (500)"),
    "error.503": ("Tạm thời không phục vụ được (503)", "Temporarily unavailable (503)"),
    "error.audited": (
        "Lượt truy cập này đã được ghi vào nhật ký.",
        "This attempt has been recorded in the audit log.",
    ),
    "error.back": ("Quay lại tra cứu", "Back to search"),
    "lang.switch": ("English", "Tiếng Việt"),
}


def language(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's language if valid, else the first supported one the browser asks for."""
    if cookie in LANGUAGES:
        return cookie
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return DEFAULT


def translator(lang: str) -> Callable[[str], str]:
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0

    def t(key: str) -> str:
        return LABELS[key][index]  # KeyError: a template uses an undefined label (tests catch it)

    return t
