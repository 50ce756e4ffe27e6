"""The FastAPI dependencies every route declares: the portal's state and the signed-in caller.

``PortalDep`` is the application's :class:`~portal.web.Portal`; ``CurrentUser`` the caller of a
page that needs a session (no session: :class:`~portal.errors.NotSignedInError`, which sends a
browser to the sign-in page; a dead token: ``AuthenticationError``, audited by the archive);
``OptionalUser`` the caller if there is a live session, else None (for the home page's redirect).
Both user dependencies run in a worker thread: authenticating waits on the retrieval lock.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from archive.core.errors import ArchiveError
from portal.web import Caller, Portal


def get_portal(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


PortalDep = Annotated[Portal, Depends(get_portal)]


def current_user(request: Request, portal: PortalDep) -> Caller:
    return portal.caller(request)


def optional_user(request: Request, portal: PortalDep) -> Caller | None:
    try:
        return portal.caller(request)
    except ArchiveError:  # no session, a dead one (audited) or too many failures
        return None


CurrentUser = Annotated[Caller, Depends(current_user)]
OptionalUser = Annotated[Caller | None, Depends(optional_user)]
