"""The console's cookies: a random token naming a session row, and a one-page flash message.

The token grants nothing by itself: the row (resolvers/staff.py) is the session, so signing
out, disabling, a password change or a timeout ends it for every copy of the cookie. A visitor
who is not signed in carries a token too, one with no row: the login form's CSRF token is made
from it (console/csrf.py). Endpoints say what should change; `SessionCookies` writes it on
the response, with the same flags every time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.security import new_token
from resolvers.staff import SESSION_LIFETIME

COOKIE = "keybin_console"
FLASH_COOKIE = "keybin_console_flash"
_JAR = "console_cookies"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")


@dataclass
class Jar:
    """The cookie changes one request asks for."""

    token: str | None = None  # a new token to hand out (sign-in, sign-out, first visit)
    flash: str | None = None  # signed message for the next page
    flash_shown: bool = False


def _jar(request: Request) -> Jar:
    jar = getattr(request.state, _JAR, None)
    if not isinstance(jar, Jar):
        raise RuntimeError("the console's routes run behind SessionCookies")
    return jar


def mac(request: Request, purpose: str, value: str) -> str:
    """HMAC-SHA256 under the server's secret key, base64url: unforgeable without it."""
    key = request.app.state.settings.secret_key.encode()
    digest = hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def current_token(request: Request) -> str | None:
    """The token this request carries (or was just given); anything else is no token."""
    jar = _jar(request)
    if jar.token is not None:
        return jar.token
    sent = request.cookies.get(COOKIE, "")
    return sent if _TOKEN.fullmatch(sent) else None


def token(request: Request) -> str:
    """The visitor's token, handing out a fresh one (with no session) when there is none."""
    value = current_token(request)
    if value is None:
        value = _jar(request).token = new_token()
    return value


def begin(request: Request, session_token: str) -> None:
    """The cookie now names a new session: nothing from before it carries over."""
    _jar(request).token = session_token


def end(request: Request) -> None:
    """Signed out: a fresh token with no session replaces the old one."""
    _jar(request).token = new_token()


def flash(request: Request, message: str) -> None:
    _jar(request).flash = message


def pop_flash(request: Request) -> str | None:
    """The message left for this page, shown once; only one this server signed counts."""
    sent = request.cookies.get(FLASH_COOKIE, "")
    if not sent:
        return None
    _jar(request).flash_shown = True
    encoded, _, signature = sent.rpartition(".")
    if not hmac.compare_digest(signature, mac(request, "flash", encoded)):
        return None
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except ValueError:
        return None


def _cookie(name: str, value: str, path: str, max_age: int, secure: bool) -> str:
    attributes = [f"{name}={value}", f"Path={path}", f"Max-Age={max_age}", "HttpOnly"]
    return "; ".join([*attributes, "SameSite=Strict", *(["Secure"] if secure else [])])


class SessionCookies:
    """Writes the cookies a console request changed: HttpOnly, SameSite=Strict, confined to
    the console's path, and Secure when `secure` (production, behind TLS)."""

    def __init__(self, app: ASGIApp, *, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        jar = Jar()
        scope.setdefault("state", {})[_JAR] = jar
        path = scope.get("root_path") or "/"
        lifetime = int(SESSION_LIFETIME.total_seconds())

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if jar.token is not None:
                    headers.append(
                        "set-cookie", _cookie(COOKIE, jar.token, path, lifetime, self.secure)
                    )
                if jar.flash is not None:
                    encoded = base64.urlsafe_b64encode(jar.flash.encode()).rstrip(b"=").decode()
                    signed = f"{encoded}.{mac(Request(scope), 'flash', encoded)}"
                    headers.append(
                        "set-cookie", _cookie(FLASH_COOKIE, signed, path, 300, self.secure)
                    )
                elif jar.flash_shown:
                    headers.append("set-cookie", _cookie(FLASH_COOKIE, "", path, 0, self.secure))
            await send(message)

        await self.app(scope, receive, send_with_cookies)
