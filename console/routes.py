"""Console pages: search, an account's sections and the staff actions on it, staff admin."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from console import session
from console.auth import actor, client_address, staff_required, url
from console.htmx import is_htmx, redirect, trigger
from console.pages import render
from models.accounts import Account
from models.enums import AccountKind, StaffAction, StaffRole
from resolvers import audit, clock, deletion, profile, support
from resolvers import staff as staff_resolvers
from resolvers.auth import remove_device as remove_device_of
from resolvers.errors import DomainError

# The client event that makes the event-log section reload itself after a staff action.
ACCOUNT_CHANGED = "accountChanged"


async def _account(request: Request) -> Account:
    account = await support.live_account(request.path_params["account_id"])
    if account is None:
        raise HTTPException(404, "No such account (it may have been deleted).")
    return account


def _before(request: Request) -> int | None:
    value = request.query_params.get("before", "")
    return int(value) if value.isdigit() and len(value) < 12 else None


async def account_context(
    account: Account, before: int | None = None, **extra: Any
) -> dict[str, Any]:
    """Everything the account page shows; `extra` opens an editor or reveals answers."""
    context: dict[str, Any] = {
        "account": account,
        "is_agent": account.kind == AccountKind.AGENT,
        "devices": await support.devices(account.id),
        "accesses_used": await support.accesses_used(account.id),
        "log": await support.event_log(account.id, before),
        "grant_status": support.grant_status,
        "editing_email": False,
        "email_error": None,
        "email_value": account.email or "",
        "answers": None,
    }
    if account.kind == AccountKind.AGENT:
        context["listings"] = await support.listings(account.id)
        context["lockboxes"] = await support.lockboxes(account.id)
        context["grants_given"] = await support.grants_given(account.id)
    else:
        context["questions"] = await support.security_questions(account.id)
        context["grants_received"] = await support.grants_received(account.id)
    context.update(extra)
    return context


@staff_required()
async def home(request: Request) -> Response:
    return await search(request)


@staff_required()
async def search(request: Request) -> Response:
    text = request.query_params.get("q", "")
    result = await support.search_accounts(text)
    await audit.record_search(request.state.staff, text, client_address(request))
    context = {"result": result, "searched": len(text.strip()) >= 2}
    return render(request, "search.html", context, fragment="_results.html")


@staff_required()
async def account_page(request: Request) -> Response:
    account = await _account(request)
    # Only whole-page loads are views: the sections' htmx refreshes reach other routes.
    await audit.record_look(
        StaffAction.ACCOUNT_VIEWED,
        request.state.staff,
        account_id=account.id,
        client_address=client_address(request),
    )
    return render(request, "account.html", await account_context(account, _before(request)))


@staff_required()
async def event_log(request: Request) -> Response:
    account = await _account(request)
    if not is_htmx(request):
        before = _before(request)
        query = f"?before={before}" if before else ""
        return redirect(request, url(request, f"/accounts/{account.id}{query}#events"))
    log = await support.event_log(account.id, _before(request))
    return render(request, "_events.html", {"account": account, "log": log})


def _contractor(account: Account) -> None:
    if account.kind != AccountKind.CONTRACTOR:
        raise HTTPException(404, "Only a contractor's email is edited here.")


@staff_required()
async def email_row(request: Request) -> Response:
    account = await _account(request)
    if not is_htmx(request):
        return redirect(request, url(request, f"/accounts/{account.id}"))
    return render(request, "_email_row.html", {"account": account, "editing_email": False})


@staff_required()
async def email_edit(request: Request) -> Response:
    account = await _account(request)
    _contractor(account)
    context = await account_context(account, editing_email=True)
    return render(request, "account.html", context, fragment="_email_row.html")


@staff_required()
async def email_save(request: Request) -> Response:
    account = await _account(request)
    _contractor(account)
    form = await request.form()
    new_email = str(form.get("email", ""))[:300]
    try:
        await profile.change_email_by_staff(
            request.app.state.settings, account.id, new_email, actor(request)
        )
    except DomainError as error:
        context = await account_context(
            account, editing_email=True, email_error=error.message, email_value=new_email
        )
        return render(request, "account.html", context, fragment="_email_row.html", status_code=422)
    if not is_htmx(request):
        session.flash(request, "Email changed.")
        return redirect(request, url(request, f"/accounts/{account.id}"))
    account = await _account(request)
    response = render(request, "_email_row.html", {"account": account, "editing_email": False})
    return trigger(response, ACCOUNT_CHANGED)


@staff_required()
async def reveal_answers(request: Request) -> Response:
    account = await _account(request)
    _contractor(account)
    settings = request.app.state.settings
    answers = await support.reveal_security_answers(settings.secret_key, account, actor(request))
    context = await account_context(account, answers=answers)
    response = render(request, "account.html", context, fragment="_security.html")
    return trigger(response, ACCOUNT_CHANGED)


@staff_required()
async def remove_device(request: Request) -> Response:
    account = await _account(request)
    try:
        await remove_device_of(account, request.path_params["device_id"], actor(request))
    except DomainError as error:
        raise HTTPException(404, error.message) from error
    if not is_htmx(request):
        session.flash(request, "Device registration removed.")
        return redirect(request, url(request, f"/accounts/{account.id}#devices"))
    devices = await support.devices(account.id)
    response = render(request, "_devices.html", {"account": account, "devices": devices})
    return trigger(response, ACCOUNT_CHANGED)


@staff_required()
async def delete_confirm(request: Request) -> Response:
    account = await _account(request)
    _contractor(account)
    return render(request, "delete.html", {"account": account, "error": None})


@staff_required()
async def delete_account(request: Request) -> Response:
    account = await _account(request)
    _contractor(account)
    form = await request.form()
    if form.get("confirm") != "yes":
        context = {"account": account, "error": "Tick the box to confirm the deletion."}
        return render(request, "delete.html", context, status_code=422)
    await deletion.delete_account(account.id, actor(request))
    # The flash rides in a cookie the staff member's browser can read: it names no one.
    session.flash(request, "Account deleted.")
    return redirect(request, url(request, "/"))


@staff_required(StaffRole.SYSADMIN)
async def staff_list(request: Request) -> Response:
    members = await staff_resolvers.list_staff()
    return render(request, "staff.html", {"members": members, "now": clock.now()})


@staff_required(StaffRole.SYSADMIN)
async def staff_set_disabled(request: Request) -> Response:
    action = request.path_params["action"]
    if action not in {"disable", "enable"}:
        raise HTTPException(404, "No such action.")
    disabled = action == "disable"
    try:
        target = await staff_resolvers.set_disabled(
            request.path_params["staff_id"], disabled, request.state.staff, client_address(request)
        )
    except DomainError as error:
        raise HTTPException(404 if error.code == "NOT_FOUND" else 422, error.message) from error
    session.flash(
        request, f"{target.name or target.email} {'disabled' if disabled else 'enabled'}."
    )
    return redirect(request, url(request, "/staff"))
