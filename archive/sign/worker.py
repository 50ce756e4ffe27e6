"""Signing in a process pool: one key load and one certificate check per worker process.

The pool's initializer builds the worker's :class:`DocumentSigner` from a picklable
:class:`SignerConfig`; tasks then send PDF bytes and get outcome dataclasses back. A loaded key
never crosses a process boundary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from archive.core.errors import SigningError
from archive.sign.config import SignerConfig
from archive.sign.outcomes import SignOutcome
from archive.sign.signer import DocumentSigner

__all__ = ["init_worker", "sign_in_worker"]

_worker_signer: DocumentSigner | None = None


def init_worker(config: SignerConfig, options: Mapping[str, Any] | None = None) -> None:
    """``ProcessPoolExecutor(initializer=init_worker, initargs=(config,))``: one key load and one
    certificate check per worker process."""
    global _worker_signer
    _worker_signer = DocumentSigner.create(config, **dict(options or {}))


def sign_in_worker(pdfs: Sequence[bytes]) -> list[SignOutcome]:
    """Sign a batch in a worker set up by :func:`init_worker` (bytes in, dataclasses out)."""
    if _worker_signer is None:
        raise SigningError("sign_in_worker needs init_worker as the pool's initializer")
    return _worker_signer.sign_batch(pdfs)
