"""Staff sign-in through the company's OpenID Connect provider: the start and the callback.

The provider sends the browser back with a cross-site top-level GET, on which the SameSite=Strict
session cookie is never sent: the sign-in's state, nonce and PKCE verifier travel instead in a
signed ten-minute cookie of their own, SameSite=Lax, confined to /console/oidc and spent by the
callback. The session it opens is the usual Strict one, reached through a page of this console
(a redirect would still count as part of the cross-site navigation, and go without it).
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from console import session
from console.auth import client_address
from console.identity_provider import Flow, IdentityProvider, ProviderError
from console.pages import templates
from resolvers import staff as staff_resolvers
from resolvers import staff_oidc
from settings import Settings

log = logging.getLogger("keybin.oidc")

FLOW_COOKIE = "keybin_console_oidc"
FLOW_LIFETIME = 600  # seconds to get through the provider's pages
NOT_THIS_BROWSER = (
    "This sign-in did not start in this browser, was already used, or took too long: start again."
)


def identity_provider(settings: Settings) -> IdentityProvider | None:
    return IdentityProvider(settings) if settings.oidc_configured else None


async def start(request: Request) -> Response:
    settings, provider = _configured(request)
    flow = Flow.new()
    try:
        url = await provider.authorization_url(flow)
    except ProviderError as error:
        log.warning("company sign-in out of reach: %s", error)
        message = f"{settings.oidc_name} cannot be reached right now: try again in a moment."
        return _refused(request, message, status_code=502)
    response = RedirectResponse(url, status_code=303)
    _set_flow(request, response, _seal(request, flow), FLOW_LIFETIME)
    return response


async def callback(request: Request) -> Response:
    settings, provider = _configured(request)
    flow = _unseal(request, request.cookies.get(FLOW_COOKIE, ""))
    params = request.query_params
    state = params.get("state", "")
    if flow is None or not hmac.compare_digest(state.encode(), flow.state.encode()):
        log.warning("company sign-in callback with no matching state from this browser")
        return _spent(request, _refused(request, NOT_THIS_BROWSER, status_code=400))
    if params.get("iss", settings.oidc_issuer) != settings.oidc_issuer:
        # RFC 9207: an answer from another provider the browser was sent to (a mix-up).
        log.warning("company sign-in callback from issuer %r", params["iss"])
        return _spent(request, _refused(request, NOT_THIS_BROWSER, status_code=400))
    if "error" in params or not params.get("code"):
        message = f"{settings.oidc_name} did not sign you in (cancelled or refused)."
        return _spent(request, _refused(request, message, status_code=401))
    try:
        claims = await provider.claims(params["code"], flow)
    except ProviderError as error:
        log.warning("company sign-in refused: %s", error)
        message = f"{settings.oidc_name} did not confirm who you are: start again."
        return _spent(request, _refused(request, message, status_code=401))
    rule = staff_oidc.RoleRule(
        settings.oidc_role_claim, settings.oidc_sysadmin_values, settings.oidc_support_values
    )
    host = urlsplit(settings.oidc_issuer).hostname or settings.oidc_issuer
    try:
        staff = await staff_oidc.sign_in(claims, rule, host, client_address(request))
    except staff_oidc.Refused as refused:
        return _spent(request, _refused(request, refused.message, status_code=403))
    # As at a password sign-in: a new token, and the one it replaces (when sent) ends.
    previous = session.current_token(request)
    if previous:
        await staff_resolvers.close_session(previous)
    session.begin(request, await staff_resolvers.open_session(staff, client_address(request)))
    page = _page(request, "oidc_signed_in.html", {"who": staff.name or staff.email})
    return _spent(request, page)


def _configured(request: Request) -> tuple[Settings, IdentityProvider]:
    provider = getattr(request.app.state, "identity_provider", None)
    if not isinstance(provider, IdentityProvider):
        raise HTTPException(404, "There is no company sign-in here.")
    return request.app.state.settings, provider


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """Rendered without the console's shared context: that would hand a visitor whose session
    cookie stayed behind (a cross-site arrival) a fresh token, signing them out."""
    base = str(request.scope.get("root_path", ""))
    html = templates.env.get_template(name).render(base=base, csrf_token="", **context)
    return HTMLResponse(html, status_code=status_code)


def _refused(request: Request, message: str, status_code: int) -> Response:
    return _page(request, "oidc_refused.html", {"error": message}, status_code)


def _spent(request: Request, response: Response) -> Response:
    """The callback's answer, whatever it is, ends the flow: this browser cannot come back."""
    _set_flow(request, response, "", 0)
    return response


def _set_flow(request: Request, response: Response, value: str, max_age: int) -> None:
    settings: Settings = request.app.state.settings
    response.set_cookie(
        FLOW_COOKIE,
        value,
        max_age=max_age,
        path=str(request.scope.get("root_path", "")) + "/oidc",
        secure=settings.production,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back, unlike Strict
    )


def _seal(request: Request, flow: Flow) -> str:
    fields = {"s": flow.state, "n": flow.nonce, "v": flow.code_verifier}
    body = json.dumps({**fields, "until": int(time.time()) + FLOW_LIFETIME}).encode()
    encoded = base64.urlsafe_b64encode(body).rstrip(b"=").decode()
    return f"{encoded}.{session.mac(request, 'oidc-flow', encoded)}"


def _unseal(request: Request, sealed: str) -> Flow | None:
    """The flow this server sealed for this browser, while it lasts; anything else is none."""
    encoded, _, signature = sealed.rpartition(".")
    expected = session.mac(request, "oidc-flow", encoded)
    if not encoded or not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    try:
        fields = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        if fields["until"] < time.time():
            return None
        return Flow(state=fields["s"], nonce=fields["n"], code_verifier=fields["v"])
    except (ValueError, KeyError, TypeError):
        return None
