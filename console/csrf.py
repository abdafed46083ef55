"""CSRF protection: a token derived from the session cookie, required on every unsafe request."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from console import session

HEADER = "x-csrf-token"
FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

Endpoint = Callable[[Request], Awaitable[Response]]


def token(request: Request) -> str:
    """The visitor's token (forms render it; htmx sends it as a header): an HMAC of the
    cookie's session token, so it is stored nowhere, changes at every sign-in and sign-out,
    and cannot be made by anyone who has neither the cookie nor the server's key."""
    return session.mac(request, "csrf", session.token(request))


async def check(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    current = session.current_token(request)
    sent = request.headers.get(HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(FIELD)
        sent = field if isinstance(field, str) else None
    expected = session.mac(request, "csrf", current) if current else ""
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(403, "The form has expired or did not come from this console.")


def protect(endpoint: Endpoint) -> Endpoint:
    """Refuse an unsafe request without the session's token, before the endpoint runs."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        await check(request)
        return await endpoint(request)

    return wrapper
