"""The memoised name comparison and ``hashable`` (archive.sign.name_equality) give asn1crypto's
own answers, on edge cases and random names, cold and with their memory warm."""

from __future__ import annotations

import itertools
import random

import pytest
from asn1crypto import x509

from archive.sign import name_equality

BASE = {"country_name": "VN", "organization_name": "Bệnh viện Đa khoa", "common_name": "Ký số"}
EDGE = [
    BASE,
    {**BASE, "common_name": "ký  SỐ"},  # case and inner spaces fold under RFC 4518
    {**BASE, "common_name": " Ký số "},
    {**BASE, "common_name": "Ky so"},  # diacritics do not fold
    {"country_name": "VN", "common_name": "Ký số"},
    {"common_name": "Ký số", "country_name": "VN"},  # order of RDNs differs
    {**BASE, "email_address": "A@Example.org"},
    {**BASE, "email_address": "a@example.org"},
    {"country_name": "VN", "common_name": "Ky  SO"},
    {"country_name": "VN", "common_name": "ky so"},
    {},
]


def _names(specs: list[dict[str, str]]) -> list[x509.Name]:
    out = []
    for spec in specs:
        out.append(x509.Name.build(spec))
        if all(v.isascii() for v in spec.values()):  # PrintableString holds ASCII only
            out.append(x509.Name.build(spec, use_printable=True))
        out.append(x509.Name.load(x509.Name.build(spec).dump()))  # a parsed copy
    return out


def _random_specs(count: int) -> list[dict[str, str]]:
    rng = random.Random(15)
    alphabet = "aAbB  ệỆđĐ-.'"
    keys = ["common_name", "organization_name", "organizational_unit_name", "country_name"]
    specs = []
    for _ in range(count):
        chosen = rng.sample(keys, rng.randrange(1, 4))
        specs.append(
            {
                k: (
                    "VN"
                    if k == "country_name"
                    else "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 6)))
                )
                for k in chosen
            }
        )
    return specs


def _original(a: object, b: object) -> object:
    return name_equality._ORIGINAL(a, b)


@pytest.mark.parametrize("specs", [EDGE, _random_specs(12)], ids=["edge", "random"])
def test_names_compare_as_asn1crypto_compares_them(specs: list[dict[str, str]]) -> None:
    names = _names(specs)
    name_equality.forget()
    for warm in (False, True):  # the second round answers from memory
        for a, b in itertools.product(names, repeat=2):
            assert (a == b) == _original(a, b), (a.native, b.native, warm)
            assert (a != b) == (not _original(a, b))
            assert a.hashable == name_equality._ORIGINAL_HASHABLE.fget(a)
    assert any(a == b and a.dump() != b.dump() for a, b in itertools.product(names, repeat=2))


def test_a_name_is_not_equal_to_another_type() -> None:
    name = x509.Name.build(BASE)
    assert (name == "Ký số") is False
    assert (name == x509.Name.build(BASE).chosen) is False
