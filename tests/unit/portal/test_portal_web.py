"""The portal's pure pieces: sealed form values, the CSRF token, the
cross-origin test and which refusals a page may call audited."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from portal import (
    Caller,
    FormRefusedError,
    NotSignedInError,
    TooManyAttemptsError,
    audited,
    cross_origin,
    status_of,
)
from retrieval import AccessDeniedError, AuthenticationError, Principal, Role


def caller(token: str = "token-a") -> Caller:  # noqa: S107 - a test session, not a secret
    return Caller(Principal("insp.an", Role.INSPECTOR, "t1", None), token, b"s" * 32)


def test_sealed_form_values_are_secret_bound_to_the_session_and_tamper_evident() -> None:
    value = "p1_0123456789abcdef0123456789abcdef"
    sealed = caller().seal(value)
    assert value not in sealed
    assert value[3:15] not in sealed  # an inspector cannot read the pseudonym back
    assert caller().unseal(sealed) == value
    assert caller().seal(value) != sealed  # fresh nonce each time
    with pytest.raises(FormRefusedError):
        caller("token-b").unseal(sealed)  # another session
    flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    for bad in (flipped, sealed + "x", "", "!!!"):
        with pytest.raises(FormRefusedError):
            caller().unseal(bad)


def test_csrf_token_is_per_session() -> None:
    caller().check_csrf(caller().csrf)
    with pytest.raises(FormRefusedError):
        caller().check_csrf(caller("token-b").csrf)
    with pytest.raises(FormRefusedError):
        caller().check_csrf("")


def request_with(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in {"host": "portal.test", **headers}.items()]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/search",
        "headers": raw,
        "scheme": "https",
        "server": ("portal.test", 443),
        "query_string": b"",
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("headers", "foreign"),
    [
        ({"origin": "https://portal.test", "sec-fetch-site": "same-origin"}, False),
        ({}, False),  # not a browser: nothing to forge on its behalf
        ({"origin": "https://evil.example"}, True),
        ({"origin": "null"}, True),
        ({"origin": "http://portal.test"}, True),  # a downgraded scheme is another origin
        ({"sec-fetch-site": "cross-site"}, True),
        ({"sec-fetch-site": "same-site"}, True),  # a sibling subdomain is not this portal
    ],
)
def test_cross_origin_posts_are_told_apart(headers: dict[str, str], foreign: bool) -> None:
    assert cross_origin(request_with(headers)) is foreign


def test_only_refusals_the_archive_recorded_are_called_audited() -> None:
    assert audited(AccessDeniedError("no grant"))
    assert audited(AuthenticationError("token expired"))
    assert not audited(FormRefusedError("csrf"))
    assert not audited(NotSignedInError("sign in"))
    assert not audited(TooManyAttemptsError("slow down"))
    assert [
        status_of(e)
        for e in (NotSignedInError("x"), FormRefusedError("x"), TooManyAttemptsError("x"))
    ] == [401, 403, 429]
