"""Certificate path + revocation validation answers kept per process, reused only where exact.

pyhanko_certvalidator validates the same paths (the hospital signer, the TSA, under the same CA)
with the same revocation data for every document of a signing batch, ~7 times per document: a
third of the signature check's CPU (issue #15 item 2). Its own caches live in one validation
context, and each document is judged at its own moment, so nothing carried over.

What ``async_validate_path`` answers depends on (pyhanko_certvalidator 0.33, read for this):

* the path's certificates and trust anchor (with its qualifiers), the PKIX parameters, the trust
  roots, every certificate the context can look responders and CRL issuers up in, the OCSP
  responses and CRLs in their order (a revoked answer ahead of a good one wins), the revocation
  policy, the algorithm policy, the time tolerance and whether the validation is point-in-time;
* the moment (and the best signature time) — only through comparisons with a time carried by
  those inputs plus a constant: validity periods and trust anchor bounds (± tolerance), OCSP and
  CRL thisUpdate/nextUpdate (± tolerance, nextUpdate defaulting to thisUpdate + 30 minutes) and
  revocation times. Under the DEFAULT freshness rule and the two time-blind algorithm policies
  the library has, nothing else reads a clock or a time.

So a *successful* answer is kept under a key holding all of the first list (each DER by its
SHA-256), with the open interval of moments between the nearest such breakpoints on either side
(every time found anywhere in the inputs' DER, shifted by each of those constants): any moment
inside it makes every comparison come out the same, hence the same answer. Failures are never
kept. A context that may fetch, holds revocation assertions, or uses another freshness rule,
algorithm policy, signature validator or context class is passed straight through. A hit
repeats what a success leaves behind in the context (the validated prefixes of the path, the
qualified policies); what validating an OCSP responder or CRL issuer records there only saves
later work, so leaving it out checks more.
The attack tests are tests/unit/archive/test_path_cache.py; recheck this list on any upgrade of
pyhanko-certvalidator (pinned through pyHanko 0.38).
"""

from __future__ import annotations

import bisect
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock
from typing import Any, Final

import pyhanko_certvalidator
from asn1crypto import x509
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator import validate as certvalidator_validate
from pyhanko_certvalidator.authority import AuthorityWithCert
from pyhanko_certvalidator.ltv import ades_past
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import (
    FRESHNESS_FALLBACK_VALIDITY_DEFAULT,
    AcceptAllAlgorithms,
    DisallowWeakAlgorithmsPolicy,
    FreshnessReqType,
    PKIXValidationParams,
)
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.sig_validate import DefaultSignatureValidator

from archive.sign.der_times import times_in
from archive.sign.parsed_der import Der, der

_ORIGINAL: Final = certvalidator_validate.async_validate_path
_KEYS: Final = 1024  # distinct questions: a few paths per signer and per set of revocation data
_WINDOWS: Final = 8  # cells kept per question
_SHIFTS: Final = range(-2, 3)  # multiples of the tolerance a comparison adds (± 1), with margin


@dataclass(frozen=True, slots=True)
class Cell:
    """Moments that compare alike with every breakpoint: ``exact``, or strictly inside
    (``lo``, ``hi``); None is unbounded."""

    lo: datetime | None
    hi: datetime | None
    exact: datetime | None = None

    def holds(self, moment: datetime) -> bool:
        if self.exact is not None:
            return moment == self.exact
        return (self.lo is None or self.lo < moment) and (self.hi is None or moment < self.hi)


@dataclass(frozen=True, slots=True)
class _Answer:
    moment: Cell
    signature_time: Cell
    order: tuple[int, ...]  # how moment and best signature time compare (± tolerance)
    policies: Any  # the qualified policies the path ends with


_ANSWERS: OrderedDict[tuple[Any, ...], list[_Answer]] = OrderedDict()
_LOCK = Lock()
_HITS = [0]  # answers reused: tests assert the cache was in play, benchmarks report it


async def async_validate_path(
    validation_context: ValidationContext,
    path: ValidationPath,
    parameters: PKIXValidationParams | None = None,
) -> Any:
    """pyhanko_certvalidator's ``async_validate_path``, answering from earlier successes
    wherever that answer is exactly what validating again would give."""
    question = _question(validation_context, path, parameters)
    if question is None:
        return await _ORIGINAL(validation_context, path, parameters)
    key = _digested(question)
    moment, signed = validation_context.moment, validation_context.best_signature_time
    tolerance = validation_context.time_tolerance
    order = _order(moment, signed, tolerance)
    with _LOCK:
        known = _ANSWERS.get(key, ())
        answer = next((a for a in known if _fits(a, moment, signed, order)), None)
        if answer is not None:
            _ANSWERS.move_to_end(key)
            _HITS[0] += 1
    if answer is not None:
        return _replay(validation_context, path, answer.policies)
    result = await _ORIGINAL(validation_context, path, parameters)  # raises: nothing kept
    times, shifts = _times(question), _shifts(tolerance)
    answer = _Answer(
        _cell(moment, times, shifts),
        _cell(signed, times, shifts),
        order,
        path.qualified_policies(),
    )
    with _LOCK:
        kept = _ANSWERS.setdefault(key, [])
        kept.insert(0, answer)
        del kept[_WINDOWS:]
        _ANSWERS.move_to_end(key)
        while len(_ANSWERS) > _KEYS:
            _ANSWERS.popitem(last=False)
    return result


def install() -> None:
    """Route every caller of ``async_validate_path`` through the cache (idempotent)."""
    pyhanko_certvalidator.async_validate_path = async_validate_path  # type: ignore[attr-defined] # find_valid_path's
    ades_past.async_validate_path = async_validate_path  # type: ignore[attr-defined] # AdES past-time validation's
    certvalidator_validate.async_validate_path = async_validate_path


def uninstall() -> None:
    """The library's own ``async_validate_path`` back (the cold benchmark)."""
    pyhanko_certvalidator.async_validate_path = _ORIGINAL  # type: ignore[attr-defined]
    ades_past.async_validate_path = _ORIGINAL  # type: ignore[attr-defined]
    certvalidator_validate.async_validate_path = _ORIGINAL


def hits() -> int:
    """How many answers this process reused so far."""
    return _HITS[0]


def forget() -> None:
    """Empty the process's answers (tests, the cold benchmark)."""
    with _LOCK:
        _ANSWERS.clear()


def _question(
    context: ValidationContext, path: ValidationPath, parameters: PKIXValidationParams | None
) -> tuple[Any, ...] | None:
    """Everything but the moment the answer depends on, or None when it cannot be told."""
    revinfo = context.revinfo_manager
    trust = context.path_builder.trust_manager
    policy = context.revinfo_policy
    algorithms = _algorithm_policy(context.algorithm_policy)
    anchor = path.trust_anchor
    registry = context.certificate_registry
    if (
        type(context) is not ValidationContext
        or context.fetching_allowed
        or revinfo._fetchers is not None
        or revinfo._assertions
        or revinfo.certificate_registry is not registry
        or context.path_builder.registry is not registry
        or type(trust) is not SimpleTrustManager
        or policy.freshness_req_type is not FreshnessReqType.DEFAULT
        or algorithms is None
        or type(context.sig_validator) is not DefaultSignatureValidator
        or context.moment != context.timing_params.validation_time
        or not isinstance(anchor.authority, AuthorityWithCert)
        or not (path.leaf is None or isinstance(path.leaf, x509.Certificate))
    ):
        return None
    roots = frozenset(_root(trust, cert) for cert in trust.iter_certs())
    return (
        tuple(der(c) for c in path.iter_certs(include_root=True)),
        anchor.trust_qualifiers,
        parameters,
        roots,
        tuple(der(c) for c in registry),
        tuple((der(c.ocsp_response_data), c.index) for c in revinfo._ocsps),
        tuple(der(c.crl_data) for c in revinfo._crls),
        policy,
        algorithms,
        context.time_tolerance,
        context.timing_params.point_in_time_validation,
    )


def _times(question: tuple[Any, ...]) -> tuple[datetime, ...]:
    """Every time the question's inputs carry, sorted: what the cells are drawn from."""
    path, anchor_qualifiers, _, roots, registry, ocsps, crls = question[:7]
    found: set[datetime] = set()
    for d in (*path, *(d for d, _ in roots), *registry, *(d for d, _ in ocsps), *crls):
        found.update(times_in(d.value.dump() if isinstance(d, Der) else d))
    for q in (anchor_qualifiers, *(q for _, q in roots)):
        for bound in (getattr(q, "valid_from", None), getattr(q, "valid_until", None)):
            if bound is not None:
                found.add(bound)
    return tuple(sorted(found))


def _digested(value: Any) -> Any:
    """The question with each DER by its SHA-256: no CRL kept per question, a fast key."""
    if isinstance(value, Der):
        return value.digest
    if isinstance(value, bytes):
        return hashlib.sha256(value).digest()
    if isinstance(value, tuple):
        return tuple(_digested(v) for v in value)
    if isinstance(value, frozenset):
        return frozenset(_digested(v) for v in value)
    return value


def _root(trust: SimpleTrustManager, cert: x509.Certificate) -> tuple[Der, Any]:
    anchor = trust.as_trust_anchor(AuthorityWithCert(cert))
    return der(cert), None if anchor is None else anchor.trust_qualifiers


def _algorithm_policy(policy: object) -> tuple[Any, ...] | None:
    """The two library policies that read no time, by their settings; others: not cached."""
    if type(policy) is AcceptAllAlgorithms:
        return ("accept-all",)
    if type(policy) is DisallowWeakAlgorithmsPolicy:
        return (
            "disallow-weak",
            frozenset(policy.weak_hash_algos),
            frozenset(policy.weak_signature_algos),
            policy.rsa_key_size_threshold,
            policy.dsa_key_size_threshold,
        )
    return None


def _shifts(tolerance: timedelta) -> tuple[timedelta, ...]:
    """What the library adds to an input's time before comparing it with the moment."""
    bases = (timedelta(0), FRESHNESS_FALLBACK_VALIDITY_DEFAULT)
    return tuple(sorted({d + k * tolerance for d in bases for k in _SHIFTS}))


def _cell(moment: datetime, times: tuple[datetime, ...], shifts: tuple[timedelta, ...]) -> Cell:
    """The moments between the breakpoints (``times`` + each shift) nearest ``moment``."""
    lo: datetime | None = None
    hi: datetime | None = None
    for shift in shifts:
        target = moment - shift
        i = bisect.bisect_left(times, target)
        if i < len(times) and times[i] == target:
            return Cell(None, None, exact=moment)  # on a breakpoint: this very moment only
        if i > 0 and (lo is None or times[i - 1] + shift > lo):
            lo = times[i - 1] + shift
        if i < len(times) and (hi is None or times[i] + shift < hi):
            hi = times[i] + shift
    return Cell(lo, hi)


def _order(moment: datetime, signed: datetime, tolerance: timedelta) -> tuple[int, ...]:
    deltas = [moment - signed - k * tolerance for k in _SHIFTS]
    return tuple((d > timedelta(0)) - (d < timedelta(0)) for d in deltas)


def _fits(answer: _Answer, moment: datetime, signed: datetime, order: tuple[int, ...]) -> bool:
    return (
        answer.order == order
        and answer.moment.holds(moment)
        and answer.signature_time.holds(signed)
    )


def _replay(context: ValidationContext, path: ValidationPath, policies: Any) -> Any:
    """What a successful ``intl_validate_path`` leaves behind, and what it returns."""
    anchor = path.trust_anchor
    completed = ValidationPath(anchor, interm=[], leaf=None)
    authority = anchor.authority
    cert: Any = None
    if isinstance(authority, AuthorityWithCert):
        context.record_validation(authority.certificate, completed)  # type: ignore[no-untyped-call]
        cert = authority.certificate
    for index in range(1, path.pkix_len + 1):
        cert = path[index]
        completed = completed.copy_and_append(cert)
        context.record_validation(cert, completed)  # type: ignore[no-untyped-call]
    if cert is not None:
        path._set_qualified_policies(policies)  # type: ignore[no-untyped-call]
        completed._set_qualified_policies(policies)  # type: ignore[no-untyped-call]
    return cert
