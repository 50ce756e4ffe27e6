"""The portal's pages, one router per area: signing in, records (search, dossier, export),
grants, and the audit log. Each route declares what it needs (``PortalDep``, ``CurrentUser``
from :mod:`portal.deps`); the service behind them decides who may and audits."""

from fastapi import APIRouter

from portal.routes import audit, grants, records, signin

ROUTERS: tuple[APIRouter, ...] = (signin.router, records.router, grants.router, audit.router)

__all__ = ["ROUTERS"]
