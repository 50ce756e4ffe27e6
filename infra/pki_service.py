"""HTTP service of the development PKI: RFC 3161 timestamps, OCSP and CRLs on 127.0.0.1.

Run as ``python -m infra.pki_service --pki-dir var/pki --port 18990``. It generates the PKI if
there is none (see :func:`infra.pki.ensure_dev_pki`), serves certomancer's Animator with a
multi-threaded WSGI server so one slow request never holds up a batch, and on SIGTERM/SIGINT
stops accepting, lets in-flight requests finish (a few seconds at most) and exits 0.

The Animator runs without its web UI (which would hand out any private key as PKCS#12) and
without its fake-time header (which would let a client backdate a timestamp): timestamps, OCSP
responses and CRLs carry the wall-clock time, as a real TSA's do.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from archive.core.errors import ArchiveError
from infra.errors import PkiError, StackError
from infra.pki import ARCH, DevPki, ensure_dev_pki, probe

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

__all__ = ["build_app", "main", "probe", "serve"]  # probe: the health check's real TSA request
HOST = "127.0.0.1"
MAX_REQUEST_BYTES = 64 * 1024  # a TSA or OCSP request is < 1 KiB; refuse anything absurd
SHUTDOWN_GRACE_S = 5.0

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _Guard:
    """WSGI middleware: refuses oversized bodies and counts requests in flight for shutdown."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_REQUEST_BYTES:
            start_response("413 Content Too Large", [("Content-Type", "text/plain")])
            return [b"request body too large\n"]
        with self._lock:
            self._in_flight += 1
        try:
            # certomancer's responses are single in-memory buffers: materialise them here so the
            # count covers the whole request.
            result = self._app(environ, start_response)
            try:
                return list(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        finally:
            with self._lock:
                self._in_flight -= 1


def build_app(pki: DevPki) -> _Guard:
    """The WSGI application: certomancer's Animator over the generated configuration."""
    from certomancer.integrations.animator import Animator, AnimatorArchStore
    from certomancer.registry import CertomancerConfig

    try:
        config = CertomancerConfig.from_file(str(pki.certomancer_config.resolve()))
    except (OSError, ValueError) as e:  # ConfigurationError is a ValueError
        raise PkiError(
            f"cannot load {pki.certomancer_config} ({e}): delete {pki.pki_dir} to regenerate"
        ) from e
    animator = Animator(
        AnimatorArchStore(config.pki_archs), with_web_ui=False, allow_time_override=False
    )
    return _Guard(animator)


def serve(pki_dir: Path, port: int, *, stop: threading.Event | None = None) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT arrives when running as the main thread)."""
    pki = ensure_dev_pki(pki_dir, port=port, now=datetime.now(UTC))
    app = build_app(pki)
    server = _listen(port, app)
    _run_until(stop or _stop_on_signals(), server, app)


def _listen(port: int, app: _Guard) -> BaseWSGIServer:
    from werkzeug.serving import make_server

    try:
        server = make_server(HOST, port, app, threaded=True)
    except (OSError, SystemExit) as e:  # werkzeug logs a taken port and exits instead of raising
        raise StackError(
            f"cannot listen on {HOST}:{port} (in use?): stop whatever holds the port, or move "
            "the stack with EMR_ARCHIVE_STACK__PKI_PORT and delete the PKI directory so it is "
            "regenerated for the new port"
        ) from e
    logger.info("dev PKI serving on http://%s:%d/%s (tsa/tsa, ocsp/*, crls/*)", HOST, port, ARCH)
    return server


def _run_until(stop: threading.Event, server: BaseWSGIServer, app: _Guard) -> None:
    worker = threading.Thread(target=server.serve_forever, name="pki-http", daemon=True)
    worker.start()
    while not stop.wait(0.5):
        if not worker.is_alive():
            raise StackError("the PKI HTTP server thread died; see the log above")
    server.shutdown()  # stop accepting; requests already accepted run on
    deadline = time.monotonic() + SHUTDOWN_GRACE_S
    while app.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    server.server_close()
    logger.info("dev PKI service stopped")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _handler(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.pki_service", description=__doc__)
    parser.add_argument("--pki-dir", type=Path, required=True, help="e.g. var/pki")
    parser.add_argument("--port", type=int, required=True, help="loopback port, e.g. 18990")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # werkzeug logs one line per request at INFO: noise (and cost) during a nightly batch.
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.access_log else logging.WARNING)
    try:
        serve(args.pki_dir, args.port)
    except ArchiveError as e:
        print(f"pki_service: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
