"""CSRF protection: one token per session, required on every unsafe request."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

HEADER = "x-csrf-token"
FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

Endpoint = Callable[[Request], Awaitable[Response]]


def token(request: Request) -> str:
    """The session's token, made on first use (forms render it; htmx sends it as a header)."""
    value = request.session.get("csrf")
    if not isinstance(value, str) or not value:
        value = secrets.token_urlsafe(32)
        request.session["csrf"] = value
    return value


def rotate(request: Request) -> None:
    request.session["csrf"] = secrets.token_urlsafe(32)


async def check(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    sent = request.headers.get(HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(FIELD)
        sent = field if isinstance(field, str) else None
    valid = isinstance(expected, str) and bool(sent)
    if not valid or not secrets.compare_digest(str(sent).encode(), str(expected).encode()):
        raise HTTPException(403, "The form has expired or did not come from this console.")


def protect(endpoint: Endpoint) -> Endpoint:
    """Refuse an unsafe request without the session's token, before the endpoint runs."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        await check(request)
        return await endpoint(request)

    return wrapper
