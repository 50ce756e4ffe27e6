"""CPU of the incremental-update analysis inside the signature check, pyHanko's against ours.

Run by hand: ``python -m bench.bench_diff [ROUNDS]`` (default 40). A throwaway development PKI
and TSA; one rendered record signed by the real signer, and copies of it renewed once and three
times (each renewal: validation data and one more document timestamp). For each shape, rounds
alternate between

- *pyHanko*: its standard policy (``DEFAULT_DIFF_POLICY``) with pyHanko's own name, array and
  dictionary readers, as before issue #15 item 2;
- *15i*: the state after the first round of work: our policy, name and array readers, with
  pyHanko's dictionary reader and pyHanko's copy into a revision's view;
- *15i2*: the state after the second round: :data:`archive.sign.diff_policy.POLICY` (each
  review once per document) and its copy into a revision's view, with
  :mod:`archive.sign.pdf_tokens` installed, and pyHanko's map of the paths to each object;
- *ours*: the same with :mod:`archive.sign.ref_paths` (that map walks only values that can
  hold a reference; each object's newest revision looked up once per document),

and report the median thread CPU per document of the analysis (every ``review_file`` call,
outermost only), of the whole signature check (``check_signature``, which includes it) and of
all document checks on one shared reader, after a collection of the previous round's
garbage (untimed). The machine is shared: CPU, not wall time, and all
sides in the same run. The setup is not timed.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, StandardDiffPolicy

from archive.sign import (
    DocumentSigner,
    SignedDocument,
    SignerConfig,
    diff_policy,
    pdf_tokens,
    ref_paths,
)
from archive.sign.certificates import cert_sha256
from archive.sign.config import load_certificates
from archive.sign.renew import DocumentRenewer
from archive.sign.trust import TrustPolicy
from bench.bench_pki import pki_service
from bench.bench_sign import sample_documents
from bench.common import table
from infra.pki import DevPki
from verification.document import (
    check_conversion_mark,
    check_embedded_data,
    check_pdfa,
    check_signature,
    shared_reader,
)

SIDES = ("pyHanko", "15i", "15i2", "ours")


def documents(pki: DevPki) -> tuple[dict[str, bytes], TrustPolicy]:
    [document] = sample_documents(1, seed=15)
    config = SignerConfig(
        pkcs12_path=pki.signer.p12,
        password_file=pki.signer.password_file,
        tsa_url=pki.tsa_url,
        trust_roots=(pki.trust_root,),
        tsa_trust_roots=(pki.trust_root,),
    )
    [signed] = DocumentSigner.create(config).sign_batch([document])
    assert isinstance(signed, SignedDocument), signed
    [root] = load_certificates(pki.trust_root)
    [me] = load_certificates(pki.cert_path("hospital-signer"))
    with DocumentRenewer(tsa_url=pki.tsa_url, tsa_roots=[root]) as renewer:
        once = renewer.renew(signed.pdf).pdf
        thrice = renewer.renew(renewer.renew(once).pdf).pdf
    trust = TrustPolicy((root,), (root,), frozenset({cert_sha256(me)}))
    return {"signed": signed.pdf, "renewed once": once, "renewed 3 times": thrice}, trust


@contextmanager
def side(name: str) -> Iterator[None]:
    ours = diff_policy.POLICY
    if name == "pyHanko":
        diff_policy.POLICY = DEFAULT_DIFF_POLICY  # type: ignore[misc, assignment]
        pdf_tokens.uninstall()
        diff_policy.uninstall()
        ref_paths.uninstall()
    elif name == "15i":
        generic.DictionaryObject.read_from_stream = pdf_tokens._ORIGINAL_DICT  # type: ignore[method-assign]
        diff_policy.uninstall()
        ref_paths.uninstall()
    elif name == "15i2":
        ref_paths.uninstall()
    try:
        yield
    finally:
        diff_policy.POLICY = ours  # type: ignore[misc]
        pdf_tokens.install()
        diff_policy.install()
        ref_paths.install()


class DiffClock:
    """Thread CPU seconds in the outermost ``review_file`` of any standard policy."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._depth = 0
        for cls in (StandardDiffPolicy, diff_policy.ReviewOncePolicy):
            cls.review_file = self._timed(cls.review_file)  # type: ignore[method-assign]

    def _timed(self, review: Callable[..., Any]) -> Callable[..., Any]:
        def timed(policy: Any, *args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            begin = time.thread_time()
            try:
                return review(policy, *args, **kwargs)
            finally:
                self._depth -= 1
                if not self._depth:
                    self.spent += time.thread_time() - begin

        return timed


def one(pdf: bytes, trust: TrustPolicy, clock: DiffClock) -> tuple[float, float, float]:
    clock.spent = 0.0
    now = datetime.now(UTC)
    gc.collect()  # each side pays for its own garbage, not for the previous round's
    begin = time.thread_time()
    reader = shared_reader(pdf)
    signature = check_signature(pdf, trust=trust, now=now, reader=reader)
    signed = time.thread_time()
    check_pdfa(pdf, reader=reader)
    check_embedded_data(pdf, reader=reader)
    check_conversion_mark(pdf, reader=reader)
    if signature.status.value != "passed":
        raise RuntimeError(f"a genuine document did not pass: {signature.reason_code}")
    return clock.spent, signed - begin, time.thread_time() - begin


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    with pki_service() as pki:
        docs, trust = documents(pki)
    clock = DiffClock()
    header = ("document", "side", "diff analysis ms", "signature check ms", "document checks ms")
    rows: list[tuple[str, ...]] = [header]
    for shape, pdf in docs.items():
        spent: dict[str, list[tuple[float, float, float]]] = {s: [] for s in SIDES}
        for i in range(rounds):
            for name in SIDES if i % 2 else SIDES[::-1]:
                with side(name):
                    spent[name].append(one(pdf, trust, clock))
        for name in SIDES:
            medians = [statistics.median(r[k] for r in spent[name]) * 1e3 for k in range(3)]
            rows.append((shape, name, *(f"{m:.1f}" for m in medians)))
    print(table(rows))


if __name__ == "__main__":
    main()
