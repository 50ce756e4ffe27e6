"""``emr-archive portal``: serve the inspectors' web portal (portal/) with uvicorn.

Loopback by default: other machines reach it through a TLS-terminating proxy (README, "The
portal in production"). uvicorn's own access log is off because it prints full URLs; the
portal logs method, route template, status and time instead.
"""

from __future__ import annotations

import logging

import click

from infra.cli._command import Command
from infra.cli._ctx import retrieval_of, settings_of


@click.command("portal", cls=Command)
@click.option("--host", default=None, help="listen address (default: settings, 127.0.0.1)")
@click.option(
    "--port",
    type=click.IntRange(1024, 65535),
    default=None,
    help="listen port (default: settings, 14300)",
)
@click.pass_context
def portal_cmd(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the web portal: sign in, search, dossiers and exports, grants, audit log."""
    import uvicorn

    from portal.app import create_app

    settings = settings_of(ctx)
    # Checked here too (the app checks at start-up) so a broken chain is one clear line, not
    # uvicorn's lifespan traceback.
    retrieval_of(ctx).verify_chains()
    host, port = host or settings.portal.host, port or settings.portal.port
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    scheme = "https" if settings.portal.secure_cookies else "http"
    click.echo(f"portal on http://{host}:{port}/  (users reach it via {scheme}; Ctrl-C stops)")
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.portal.trusted_proxies,
        server_header=False,
        log_level="info",
    )
