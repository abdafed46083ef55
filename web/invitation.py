"""The page an invitation link opens when the app does not: who, where, when, how to go on.

The same URL is the link the app opens (universal and app links, web/well_known.py), so a
phone with the app skips this page; a phone without it learns where to get the app, and a
computer shows the link as a QR code to scan with the phone.
"""

from __future__ import annotations

from pathlib import Path

import segno
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from resolvers.invitations import MAX_TOKEN, InvitationState, view_invitation
from settings import Settings

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

# The reset page's policy: nothing but its own stylesheet; the QR code is inline SVG markup,
# which needs no source. No referrer: the URL carries the invitation token.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

# Over, or never was: a human page either way, and a status that says so to machines.
STATUS = {
    InvitationState.OPEN: 200,
    InvitationState.USED: 410,
    InvitationState.EXPIRED: 410,
    InvitationState.UNKNOWN: 404,
}


def invitation_link(settings: Settings, token: str) -> str:
    return f"{settings.public_url}/signup?invitation={token}"


def qr_svg(link: str) -> str:
    """The link as inline SVG: dark modules on a light square with the standard quiet zone."""
    code = segno.make(link, error="m", micro=False)
    svg: str = code.svg_inline(
        dark="#000", light="#fff", border=4, omitsize=True, svgclass="qr-code", title="QR code"
    )
    return svg


async def invitation_page(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    token = request.query_params.get("invitation", "").strip()[: MAX_TOKEN + 1]
    if not token:
        # /signup alone: where to get the app, nothing else.
        return _render(request, settings, {"state": "app"}, 200)
    view = await view_invitation(token)
    context: dict[str, object] = {"state": view.state.value}
    if view.state is InvitationState.OPEN:
        link = invitation_link(settings, token)
        context.update(invitation=view, link=link, qr=qr_svg(link))
    return _render(request, settings, context, STATUS[view.state])


def _render(
    request: Request, settings: Settings, context: dict[str, object], status: int
) -> Response:
    stores = {"app_store_url": settings.app_store_url, "play_store_url": settings.play_store_url}
    return templates.TemplateResponse(
        request, "invitation.html", {**stores, **context}, status_code=status, headers=HEADERS
    )
