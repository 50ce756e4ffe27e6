"""The inspectors' web portal: a small FastAPI application with server-rendered pages.

``create_app(settings)`` wires it; ``emr-archive portal`` serves it on loopback (TLS is the
proxy's job in production: README, "The portal in production"). Pages: sign in, search, a
dossier page with its export button, grants for records officers, the audit log for auditors
(:mod:`portal.routes`). Every records-facing request goes through :class:`retrieval.Retrieval`,
which decides and audits; the portal adds sessions, CSRF protection, security headers
(:mod:`portal.guard`) and two languages.

Errors answer with the right status and a page saying what to do (:mod:`portal.handlers`): 401
(not signed in, or the session is no longer valid: audited by ``authenticate``), 403 (role or
grant does not allow it: audited), 400 (a request the archive cannot answer), 429 (too many
failed sign-ins), 503 (the store is unreachable). Nothing a page or the access log shows carries
a patient's name or id: the log names routes, not paths.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from portal import exports, handlers
from portal.guard import guard
from portal.routes import ROUTERS
from portal.settings import PortalAppSettings as Settings
from portal.throttle import PasswordChecks
from portal.web import Portal
from retrieval import Retrieval
from retrieval.service.refusals import RefusalTally

log = logging.getLogger("emr_archive.portal")


def create_app(
    settings: Settings,
    *,
    retrieval: Retrieval | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    refusal_window: timedelta = timedelta(minutes=1),
    password_checks: PasswordChecks | None = None,
) -> FastAPI:
    """The portal application. ``retrieval``, ``clock``, ``refusal_window`` (how long refused
    sign-ins are counted before their audit events are written) and ``password_checks`` (how
    many run at once and wait) are for tests and the benchmark."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        portal = Portal(settings, retrieval or exports.open_retrieval(settings), clock)
        portal.password_checks = password_checks or portal.password_checks
        portal.retrieval.verify_chains()  # never serve grants from a forged or cut register
        portal.retrieval.refusals = RefusalTally(window=refusal_window)
        swept = exports.sweep(exports.export_dir(settings))
        if swept:
            log.warning("removed %d export(s) left by an earlier portal process", swept)
        portal.pool = exports.open_pool(settings)
        app.state.portal = portal
        writer = asyncio.create_task(_write_refusals(portal, refusal_window))
        try:
            yield
        finally:
            writer.cancel()
            portal.pool.shutdown(wait=True, cancel_futures=True)
            try:
                # The open window's refusals: nothing counted is lost at shutdown.
                await run_in_threadpool(portal.retrieval.write_refusals, clock(), closing=True)
            finally:
                portal.retrieval.index.close()

    app = FastAPI(
        title="emr-archive portal",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    static = Path(str(resources.files("portal").joinpath("static")))
    app.mount("/static", StaticFiles(directory=static), name="static")
    app.middleware("http")(guard(settings))
    handlers.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


async def _write_refusals(portal: Portal, window: timedelta) -> None:
    """Write each window of refused sign-ins soon after it ends; a store that refuses keeps
    them counted for the next try (logged, and the portal's 503s say so to users)."""
    tick = min(window.total_seconds() / 4, 5.0)
    while True:
        await asyncio.sleep(tick)
        try:
            await run_in_threadpool(portal.retrieval.write_refusals, portal.clock())
        except Exception as e:  # noqa: BLE001 - kept and retried: say so, and keep going
            log.error(
                "refused sign-ins not written yet (kept for the next try): %s", type(e).__name__
            )
