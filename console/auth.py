"""Staff sign-in for the console: the session, login with TOTP, password change, sign out."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from console import session
from console.htmx import redirect
from console.pages import render
from core.errors import DomainError
from models.enums import StaffRole
from resolvers import staff as staff_resolvers
from resolvers.events import Actor
from resolvers.ratelimit import RateLimiter

if TYPE_CHECKING:
    from models.staff import ConsoleSession, Staff

Endpoint = Callable[[Request], Awaitable[Response]]


def url(request: Request, path: str) -> str:
    return str(request.scope.get("root_path", "")) + path


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def actor(request: Request) -> Actor:
    """The signed-in staff member as the actor the account event log records."""
    staff: Staff = request.state.staff
    name = staff.name or staff.email
    return Actor(staff_id=staff.id, staff_name=name, client_address=client_address(request))


async def current_session(request: Request) -> ConsoleSession | None:
    """The live session the cookie names; an ended, expired or unknown token is none."""
    token = session.current_token(request)
    return await staff_resolvers.session_of(token) if token else None


def staff_required(
    role: StaffRole | None = None, *, allow_password_change: bool = False
) -> Callable[[Endpoint], Endpoint]:
    """Only signed-in staff (of the role, when given) reach the endpoint; others go to login."""

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            current = await current_session(request)
            if current is None:
                return redirect(request, url(request, "/login"))
            staff = current.staff
            request.state.staff = staff
            if staff.must_change_password and not allow_password_change:
                return redirect(request, url(request, "/password"))
            if role is not None and staff.role != role:
                raise HTTPException(403, "This page is for system administrators.")
            return await endpoint(request)

        return wrapper

    return decorate


async def login_page(request: Request) -> Response:
    if await current_session(request) is not None:
        return redirect(request, url(request, "/"))
    return render(request, "login.html", {"error": None, "email": ""})


async def login(request: Request) -> Response:
    form = await request.form()
    email, password, code = (
        str(form.get(name, ""))[:256] for name in ("email", "password", "code")
    )
    try:
        # Counted before anything is checked: a refused attempt costs no password hash.
        limiter: RateLimiter = request.app.state.limiter
        await limiter.hit("console_login", client_address(request), login=email)
        secret_key = request.app.state.settings.secret_key
        staff = await staff_resolvers.login(
            email, password, code, client_address(request), secret_key=secret_key
        )
    except DomainError as error:
        context = {"error": error.message, "email": email}
        status = 429 if error.code == "TOO_MANY_ATTEMPTS" else 401
        return render(request, "login.html", context, status_code=status)
    # A new token on sign-in (nothing set before it carries over); the one it replaces ends.
    previous = session.current_token(request)
    if previous:
        await staff_resolvers.close_session(previous)
    session.begin(request, await staff_resolvers.open_session(staff, client_address(request)))
    return redirect(request, url(request, "/password" if staff.must_change_password else "/"))


def _password_page(request: Request, errors: dict[str, str], status_code: int = 200) -> Response:
    return render(request, "password.html", {"errors": errors}, status_code=status_code)


@staff_required(allow_password_change=True)
async def password_page(request: Request) -> Response:
    return _password_page(request, {})


@staff_required(allow_password_change=True)
async def change_password(request: Request) -> Response:
    staff: Staff = request.state.staff
    form = await request.form()
    current, new, confirmation = (
        str(form.get(name, ""))[:256] for name in ("current", "password", "confirmation")
    )
    try:
        token = await staff_resolvers.change_password(
            staff, current, new, confirmation, client_address(request)
        )
    except DomainError as error:
        if error.code == "ACCOUNT_LOCKED":
            session.flash(request, error.message)
            return redirect(request, url(request, "/login"))
        field = error.field[-1] if error.field else "form"
        return _password_page(request, {field: error.message}, status_code=422)
    # Every session from before has ended, this browser's too: it goes on with a new token.
    session.begin(request, token)
    session.flash(request, "Password changed.")
    return redirect(request, url(request, "/"))


async def logout(request: Request) -> Response:
    token = session.current_token(request)
    if token:
        await staff_resolvers.sign_out(token, client_address(request))
    session.end(request)
    return redirect(request, url(request, "/login"))
