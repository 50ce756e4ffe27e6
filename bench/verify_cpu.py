"""CPU seconds per check of full verification, with and without what is shared between records,
and stock pyHanko on the same documents (bench_verify's side-by-side table).

In one process, on a sample of catalogued records, each check is timed with the thread's CPU
clock (``time.thread_time``: the machine is shared, so wall time says little):

- *now*: as verification runs — one strict reader per record for every check, pyHanko's hex
  strings read in one step, certificate names prepared once per process, chain answers and
  certificate path + revocation answers kept (archive.sign.path_cache), certificate name
  comparisons kept (archive.sign.name_equality), certificates, OCSP responses and CRLs parsed
  once per thread (archive.sign.parsed_der);
- *cold*: the same checks with all of that off — each check parses the PDF itself, the
  libraries' own hex reader and name preparation and path validation, the chain answers
  forgotten before each record (close to the code before issue #15 item 2: that one also read
  the DSS four times);
- *stock pyHanko*: ``validate_pdf_signature`` / ``validate_pdf_timestamp`` with one fresh
  ``ValidationContext`` per document (the DSS's certificates and revocation data, as of the
  newest document timestamp), pyHanko's own readers, with the libraries' defaults back
  (:func:`cold`): what a project would write without us. (Measured before with our
  process-wide replacements installed, stock pyHanko ran on them too and looked ~2x faster.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from asn1crypto import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko_certvalidator import ValidationContext

from archive.catalog import CatalogRow
from archive.render import hex_strings
from archive.sign import (
    diff_policy,
    name_equality,
    name_prep,
    parsed_der,
    path_cache,
    pdf_tokens,
    ref_paths,
)
from archive.sign.contexts import forget_chains
from verification.checks import FULL
from verification.document import (
    check_conversion_mark,
    check_embedded_data,
    check_pdfa,
    check_signature,
    renewal_need,
    shared_reader,
)
from verification.evidence import Environment, Evidence
from verification.evidence_record import check_evidence_record

STAGES = (
    *("read (HEAD, GET, unseal)", "parse", "signature", "pdfa", "embedded-data"),
    *("conversion-mark", "horizon", "evidence", "lock, object"),
)


@contextlib.contextmanager
def cold() -> Iterator[None]:
    """The library defaults back, for the duration."""
    generic.read_hex_string_from_stream = hex_strings._ORIGINAL
    x509.NameTypeAndValue._ldap_string_prep = name_prep._ORIGINAL
    path_cache.uninstall()
    name_equality.uninstall()
    pdf_tokens.uninstall()
    ref_paths.uninstall()
    diff_policy.uninstall()
    parsed_der.uninstall()
    try:
        yield
    finally:
        hex_strings.install()
        name_prep.install()
        path_cache.install()
        name_equality.install()
        pdf_tokens.install()
        ref_paths.install()
        diff_policy.install()
        parsed_der.install()


def check_cpu(
    env: Environment, rows: Sequence[CatalogRow], now: datetime, *, shared: bool
) -> dict[str, float]:
    """CPU seconds per record, by stage; every record must pass (else the figure is wrong)."""
    total: dict[str, float] = defaultdict(float)
    for row in rows:
        if not shared:
            forget_chains()
            env.renewals.clear()
        failed = _record(Evidence(row, env), now, _Clock(total), shared=shared)
        if failed:
            raise RuntimeError(f"a sample record did not pass: {failed}")
    return {k: v / len(rows) for k, v in total.items()}


def _record(ev: Evidence, now: datetime, spent: _Clock, *, shared: bool) -> list[str]:
    pdf = spent("read (HEAD, GET, unseal)", lambda: (ev.head(), ev.pdf_matches())[1])
    reader = spent("parse", lambda: shared_reader(pdf)) if shared else None
    trust, settings = ev.env.trust, ev.env.settings
    results = [
        spent("signature", lambda: check_signature(pdf, trust=trust, now=now, reader=reader)),
        spent("pdfa", lambda: check_pdfa(pdf, reader=reader)),
        spent("embedded-data", lambda: check_embedded_data(pdf, reader=reader)),
        spent("conversion-mark", lambda: check_conversion_mark(pdf, reader=reader)),
        spent("evidence", lambda: check_evidence_record(ev, now)),
    ]
    weak = ev.env.weak
    spent(
        "horizon", lambda: renewal_need(pdf, now=now, settings=settings, weak=weak, reader=reader)
    )
    others = [c for c in FULL if c.name in ("object", "lock")]
    results += spent("lock, object", lambda: [c.run(ev, now) for c in others])
    return [r.reason_code for r in results if r.status.value != "passed"]


def stock_cpu(env: Environment, rows: Sequence[CatalogRow]) -> float:
    """CPU seconds per document of stock pyHanko validation (signatures and timestamps)."""
    spent: dict[str, float] = defaultdict(float)
    clock = _Clock(spent)
    for row in rows:
        pdf = Evidence(row, env).pdf_matches()
        with cold():  # not on our replacements of library code
            accepted = clock("stock", functools.partial(_stock, pdf, env.trust.all_roots))
        if not accepted:
            raise RuntimeError("stock pyHanko did not accept a sample record")
    return spent["stock"] / len(rows)


def _stock(pdf: bytes, roots: Sequence[x509.Certificate]) -> bool:
    return asyncio.run(_stock_async(pdf, roots))


async def _stock_async(pdf: bytes, roots: Sequence[x509.Certificate]) -> bool:
    reader = PdfFileReader(io.BytesIO(pdf))
    signatures = list(reader.embedded_signatures)
    newest = signatures[-1].signed_data["encap_content_info"]["content"].parsed
    kwargs: dict[str, Any] = {
        "trust_roots": list(roots),
        "allow_fetching": False,
        "revocation_mode": "hard-fail",
        "moment": newest["gen_time"].native,
    }
    context: ValidationContext = DocumentSecurityStore.read_dss(reader).as_validation_context(
        kwargs
    )
    ok = True
    for sig in signatures:
        if sig.sig_object_type == "/Sig":
            status: Any = await async_validate_pdf_signature(sig, context)
            ok = ok and status.bottom_line
        else:
            status = await async_validate_pdf_timestamp(sig, validation_context=context)
            ok = ok and status.valid and status.intact
    return ok


class _Clock:
    """Adds the thread's CPU seconds of each call to ``total[stage]``."""

    def __init__(self, total: dict[str, float]) -> None:
        self._total = total

    def __call__(self, stage: str, fn: Callable[[], Any]) -> Any:
        begin = time.thread_time()
        try:
            return fn()
        finally:
            self._total[stage] += time.thread_time() - begin
