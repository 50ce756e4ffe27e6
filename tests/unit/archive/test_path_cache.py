"""Path + revocation answers kept between documents never turn a failing validation into a
passing one (archive.sign.path_cache).

Each attack follows genuine validations of the same certificate under the same CA at other
moments (the cache warm with their successes), and must get the verdict a cold process gives.
Each is also run against a naive cache (keyed by the path's certificates alone, reused at any
moment), which passes it: the attack tests can fail.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.authority import CertTrustAnchor, TrustQualifiers
from pyhanko_certvalidator.errors import PathBuildingError, ValidationError

from archive.sign import path_cache
from archive.sign.der_times import times_in
from tests.support.mini_pki import MiniCa, asn1

T0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)
GOOD_BEFORE = 6


@dataclass(frozen=True)
class Case:
    """Validating one certificate: roots, revocation data offered, moment."""

    leaf: Any
    roots: Sequence[Any]
    moment: dt.datetime
    ocsps: Sequence[asn1_ocsp.OCSPResponse] = ()
    crls: Sequence[asn1_crl.CertificateList] = ()

    def at(self, moment: dt.datetime) -> Case:
        return Case(self.leaf, self.roots, moment, self.ocsps, self.crls)


def verdict(case: Case) -> str:
    context = ValidationContext(
        trust_roots=list(case.roots),
        allow_fetching=False,
        revocation_mode="hard-fail",
        moment=case.moment,
        ocsps=list(case.ocsps),
        crls=list(case.crls),
    )
    validator = CertificateValidator(case.leaf, validation_context=context)
    try:
        asyncio.run(validator.async_validate_usage(set()))  # type: ignore[no-untyped-call]
    except PathBuildingError:
        return "no path"
    except ValidationError as e:
        return type(e).__name__
    return "valid"


@pytest.fixture(scope="module")
def ca() -> MiniCa:
    return MiniCa("Path Cache Test CA", start=T0 - dt.timedelta(days=365))


def _leaf(ca: MiniCa, name: str, until: dt.datetime = T0 + dt.timedelta(days=365)) -> Any:
    return ca.issue(name, T0 - dt.timedelta(days=30), until)


def revoked_between_documents(ca: MiniCa) -> tuple[Case, Case]:
    """A CRL current for a day lists the signer as revoked two hours after the first document."""
    leaf = _leaf(ca, "signer revoked later")
    crl = ca.crl(
        T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=1), {leaf.serial_number: T0 + 120 * MIN}
    )
    genuine = Case(asn1(leaf), [ca.asn1], T0, crls=[crl])
    return genuine, genuine.at(T0 + 180 * MIN)


def ocsp_for_another_certificate(ca: MiniCa) -> tuple[Case, Case]:
    leaf, other = _leaf(ca, "signer"), _leaf(ca, "another signer")
    good = ca.ocsp(leaf, T0 - MIN, T0 + 60 * MIN)
    foreign = ca.ocsp(other, T0 - MIN, T0 + 60 * MIN)
    genuine = Case(asn1(leaf), [ca.asn1], T0, ocsps=[good])
    return genuine, Case(asn1(leaf), [ca.asn1], T0 + 10 * MIN, ocsps=[foreign])


def ocsp_outside_its_window(ca: MiniCa) -> tuple[Case, Case]:
    """The same OCSP response, 10 minutes long, asked about after its nextUpdate."""
    leaf = _leaf(ca, "signer with short OCSP")
    good = ca.ocsp(leaf, T0 - MIN, T0 + 9 * MIN)
    genuine = Case(asn1(leaf), [ca.asn1], T0, ocsps=[good])
    return genuine, genuine.at(T0 + 30 * MIN)


def expired_at_the_later_time(ca: MiniCa) -> tuple[Case, Case]:
    leaf = _leaf(ca, "signer expiring", until=T0 + 60 * MIN)
    crl = ca.crl(T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=1))
    genuine = Case(asn1(leaf), [ca.asn1], T0, crls=[crl])
    return genuine, genuine.at(T0 + 90 * MIN)


def root_trusted_for_less(ca: MiniCa) -> tuple[Case, Case]:
    """Another root set: the same CA, trusted only until five minutes after the first document."""
    leaf = _leaf(ca, "signer under bounded root")
    crl = ca.crl(T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=1))
    genuine = Case(asn1(leaf), [ca.asn1], T0, crls=[crl])
    bounded = CertTrustAnchor(ca.asn1, quals=TrustQualifiers(valid_until=T0 + 5 * MIN))
    return genuine, Case(asn1(leaf), [bounded], T0 + 10 * MIN, crls=[crl])


def tsa_revoked_by_newer_ocsp(ca: MiniCa) -> tuple[Case, Case]:
    """A TSA certificate whose newer OCSP response says revoked, before the later moment."""
    tsa = _leaf(ca, "timestamping authority")
    good = ca.ocsp(tsa, T0 - MIN, T0 + 60 * MIN)
    revoked = ca.ocsp(tsa, T0 + 5 * MIN, T0 + 65 * MIN, revoked_at=T0 + 4 * MIN)
    genuine = Case(asn1(tsa), [ca.asn1], T0, ocsps=[good])
    return genuine, Case(asn1(tsa), [ca.asn1], T0 + 10 * MIN, ocsps=[revoked, good])


ATTACKS: dict[str, Callable[[MiniCa], tuple[Case, Case]]] = {
    "signer revoked between two documents' times": revoked_between_documents,
    "OCSP response for another certificate": ocsp_for_another_certificate,
    "OCSP response used after its nextUpdate": ocsp_outside_its_window,
    "certificate expired at the later document's time": expired_at_the_later_time,
    "a different root set (trust anchor bounded in time)": root_trusted_for_less,
    "TSA certificate revoked (newer OCSP response)": tsa_revoked_by_newer_ocsp,
}


def _warm(genuine: Case) -> None:
    before = path_cache.hits()
    for i in range(GOOD_BEFORE):  # genuine documents at other moments, the same inputs
        assert verdict(genuine.at(genuine.moment + i * 2 * dt.timedelta(seconds=7))) == "valid"
    assert path_cache.hits() >= before + GOOD_BEFORE - 1  # the cache answered them


@pytest.fixture
def naive(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A cache keyed by the path's certificates only, reused at any moment."""

    def question(context: Any, path: Any, parameters: Any) -> tuple[Any, ...]:
        return (tuple(c.dump() for c in path.iter_certs(include_root=True)),)

    monkeypatch.setattr(path_cache, "_question", question)
    monkeypatch.setattr(path_cache, "_times", lambda question: ())  # no breakpoints: any moment
    path_cache.forget()
    yield
    path_cache.forget()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_an_attack_after_genuine_validations_gets_its_cold_verdict(name: str, ca: MiniCa) -> None:
    genuine, attack = ATTACKS[name](ca)
    path_cache.forget()
    cold = verdict(attack)
    assert cold != "valid", cold
    _warm(genuine)
    assert verdict(attack) == cold
    path_cache.forget()
    assert verdict(genuine) == "valid"  # and the other way round: the failure was not kept
    assert verdict(attack) == cold


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_naive_cache_would_pass_the_attack(name: str, ca: MiniCa, naive: None) -> None:
    genuine, attack = ATTACKS[name](ca)
    _warm(genuine)
    assert verdict(attack) == "valid"  # what the tests above would catch


TIME_ATTACKS = [
    "signer revoked between two documents' times",
    "OCSP response used after its nextUpdate",
    "certificate expired at the later document's time",
]


@pytest.mark.parametrize("name", TIME_ATTACKS)
def test_the_full_key_without_time_windows_would_pass_the_time_attacks(
    name: str, ca: MiniCa, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(path_cache, "_times", lambda question: ())  # no breakpoints: any moment
    path_cache.forget()
    genuine, attack = ATTACKS[name](ca)
    _warm(genuine)
    assert verdict(attack) == "valid"
    path_cache.forget()


def test_a_moment_on_a_breakpoint_is_reused_for_that_moment_only(ca: MiniCa) -> None:
    leaf = _leaf(ca, "signer at the edge")
    good = ca.ocsp(leaf, T0 - MIN, T0 + 9 * MIN)
    edge = Case(asn1(leaf), [ca.asn1], T0 + 9 * MIN, ocsps=[good])  # exactly nextUpdate
    path_cache.forget()
    assert verdict(edge) == "valid"
    assert verdict(edge.at(T0 + 9 * MIN + dt.timedelta(seconds=2))) != "valid"
    assert verdict(edge) == "valid"


def test_times_are_found_inside_nested_der(ca: MiniCa) -> None:
    leaf = _leaf(ca, "signer")
    response = ca.ocsp(leaf, T0 - MIN, T0 + 9 * MIN, revoked_at=T0 - 2 * MIN)
    times = times_in(response.dump())  # the basic response sits in an OCTET STRING
    assert {T0 - MIN, T0 + 9 * MIN, T0 - 2 * MIN} <= times
