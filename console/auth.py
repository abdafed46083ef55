"""Staff sign-in for the console: the session, login with TOTP, forced password change, sign out."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from console import csrf
from console.htmx import redirect
from console.pages import render
from models.enums import StaffRole
from models.staff import Staff
from resolvers import staff as staff_resolvers
from resolvers.errors import DomainError
from resolvers.events import Actor

Endpoint = Callable[[Request], Awaitable[Response]]


def url(request: Request, path: str) -> str:
    return str(request.scope.get("root_path", "")) + path


def actor(request: Request) -> Actor:
    """The signed-in staff member as the actor the account event log records."""
    staff: Staff = request.state.staff
    client = request.client.host if request.client else None
    return Actor(staff_id=staff.id, staff_name=staff.name or staff.email, client_address=client)


async def session_staff(request: Request) -> Staff | None:
    staff_id = request.session.get("staff_id")
    if not isinstance(staff_id, int):
        return None
    staff = await Staff.get_or_none(id=staff_id)
    # The fingerprint ends sessions opened before a password change; disabling ends all.
    if staff is None or staff.disabled:
        return None
    if request.session.get("fp") != staff_resolvers.password_fingerprint(staff):
        return None
    return staff


def staff_required(
    role: StaffRole | None = None, *, allow_password_change: bool = False
) -> Callable[[Endpoint], Endpoint]:
    """Only signed-in staff (of the role, when given) reach the endpoint; others go to login."""

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            staff = await session_staff(request)
            if staff is None:
                request.session.pop("staff_id", None)
                return redirect(request, url(request, "/login"))
            request.state.staff = staff
            if staff.must_change_password and not allow_password_change:
                return redirect(request, url(request, "/password"))
            if role is not None and staff.role != role:
                raise HTTPException(403, "This page is for system administrators.")
            return await endpoint(request)

        return wrapper

    return decorate


async def login_page(request: Request) -> Response:
    if await session_staff(request) is not None:
        return redirect(request, url(request, "/"))
    return render(request, "login.html", {"error": None, "email": ""})


async def login(request: Request) -> Response:
    form = await request.form()
    email, password, code = (
        str(form.get(name, ""))[:256] for name in ("email", "password", "code")
    )
    try:
        staff = await staff_resolvers.login(email, password, code)
    except DomainError as error:
        context = {"error": error.message, "email": email}
        return render(request, "login.html", context, status_code=401)
    # A fresh session on sign-in: nothing set before it (fixation) carries over.
    request.session.clear()
    request.session["staff_id"] = staff.id
    request.session["fp"] = staff_resolvers.password_fingerprint(staff)
    csrf.rotate(request)
    return redirect(request, url(request, "/password" if staff.must_change_password else "/"))


@staff_required(allow_password_change=True)
async def password_page(request: Request) -> Response:
    return render(request, "password.html", {"error": None})


@staff_required(allow_password_change=True)
async def change_password(request: Request) -> Response:
    staff: Staff = request.state.staff
    form = await request.form()
    new, confirmation = (str(form.get(name, ""))[:256] for name in ("password", "confirmation"))
    try:
        await staff_resolvers.change_password(staff, new, confirmation)
    except DomainError as error:
        return render(request, "password.html", {"error": error.message}, status_code=422)
    request.session["fp"] = staff_resolvers.password_fingerprint(staff)
    request.session["flash"] = "Password changed."
    return redirect(request, url(request, "/"))


async def logout(request: Request) -> Response:
    request.session.clear()
    csrf.rotate(request)
    return redirect(request, url(request, "/login"))
