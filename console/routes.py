"""Console pages: search, an account's sections and the staff actions on it, staff admin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from console import billing_pages, params, session
from console.auth import actor, client_address, staff_required, url
from console.htmx import is_htmx, redirect, trigger
from console.pages import render
from core import clock
from core.errors import DomainError
from models.enums import AccountKind, StaffAction, StaffRole
from resolvers import audit, deletion, grant_status, profile, support
from resolvers import staff as staff_resolvers
from resolvers.auth import remove_device as remove_device_of

if TYPE_CHECKING:
    from models.accounts import Account
    from models.staff import Staff

# The client event that makes the event-log section reload itself after a staff action.
ACCOUNT_CHANGED = "accountChanged"
ALREADY_REMOVED = "That device was already removed."


async def _account(request: Request) -> Account:
    account = await support.live_account(request.path_params["account_id"])
    if account is None:
        raise HTTPException(404, "No such account (it may have been deleted).")
    return account


def _before(request: Request, name: str = "before") -> int | None:
    # A position that is not an event id starts the log at its newest page.
    return params.number(request.query_params.get(name, ""))


async def _log_context(account: Account, before: int | None) -> dict[str, Any]:
    return {
        "log": await support.event_log(account.id, before),
        "time_zone": await support.account_time_zone(account),
    }


async def account_context(
    account: Account, before: int | None = None, **extra: Any
) -> dict[str, Any]:
    """Everything the account page shows; `extra` opens an editor or reveals answers."""
    context: dict[str, Any] = {
        "account": account,
        "is_agent": account.kind == AccountKind.AGENT,
        "devices": await support.devices(account.id),
        "accesses_used": await support.accesses_used(account.id),
        **await _log_context(account, before),
        "grant_status": grant_status.status_of,
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
    context = {"result": result, "searched": len(text.strip()) >= 2, "focus_search": True}
    return render(request, "search.html", context, fragment="_results.html")


async def render_account(
    request: Request,
    account: Account,
    page: str,
    context: dict[str, Any],
    *,
    fragment: str | None = None,
    status_code: int = 200,
) -> Response:
    """A page that shows the account's personal data, or a section of it for an htmx swap.
    A whole page shown is a view in the trail, whichever route drew it; a section swapped
    into a page already shown is not a view again."""
    if fragment is None or not is_htmx(request):
        await audit.record_look(
            StaffAction.ACCOUNT_VIEWED,
            request.state.staff,
            account_id=account.id,
            client_address=client_address(request),
        )
    return render(request, page, context, fragment=fragment, status_code=status_code)


@staff_required()
async def account_page(request: Request) -> Response:
    account = await _account(request)
    # The event log's page is in the address (events_before), so Back and a reload keep it.
    before = _before(request, "events_before")
    context = await account_context(account, before)
    if account.kind == AccountKind.AGENT:
        settings = request.app.state.settings
        context["billing"] = await billing_pages.section(settings, account)
    return await render_account(request, account, "account.html", context)


@staff_required()
async def event_log(request: Request) -> Response:
    account = await _account(request)
    before = _before(request)
    if not is_htmx(request):
        query = f"?events_before={before}" if before else ""
        return redirect(request, url(request, f"/accounts/{account.id}{query}#events"))
    context = {"account": account, **await _log_context(account, before)}
    return render(request, "_events.html", context)


def _contractor(account: Account) -> None:
    if account.kind != AccountKind.CONTRACTOR:
        raise HTTPException(404, "Only a contractor's email is edited here.")


@staff_required()
async def email_row(request: Request) -> Response:
    account = await _account(request)
    if not is_htmx(request):
        return redirect(request, url(request, f"/accounts/{account.id}"))
    context = {"account": account, "editing_email": False, "announce": "Email edit cancelled."}
    return render(request, "_email_row.html", context)


@staff_required()
async def email_edit(request: Request) -> Response:
    account = await _account(request)
    _contractor(account)
    context = await account_context(account, editing_email=True)
    return await render_account(
        request, account, "account.html", context, fragment="_email_row.html"
    )


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
        return await render_account(
            request, account, "account.html", context, fragment="_email_row.html", status_code=422
        )
    if not is_htmx(request):
        session.flash(request, "Email changed.")
        return redirect(request, url(request, f"/accounts/{account.id}"))
    account = await _account(request)
    context = {"account": account, "editing_email": False, "announce": "Email changed."}
    response = render(request, "_email_row.html", context)
    return trigger(response, ACCOUNT_CHANGED)


@staff_required()
async def reveal_answers(request: Request) -> Response:
    account = await _account(request)
    _contractor(account)
    settings = request.app.state.settings
    answers = await support.reveal_security_answers(settings.secret_key, account, actor(request))
    context = await account_context(account, answers=answers)
    response = await render_account(
        request, account, "account.html", context, fragment="_security.html"
    )
    return trigger(response, ACCOUNT_CHANGED)


@staff_required()
async def remove_device(request: Request) -> Response:
    account = await _account(request)
    try:
        await remove_device_of(account, request.path_params["device_id"], actor(request))
    except DomainError as error:
        if error.code != "NOT_FOUND":
            raise HTTPException(422, error.message) from error
        # Removed meanwhile (another tab, the user, a colleague): show the list as it is now.
        message, changed = ALREADY_REMOVED, False
    else:
        message, changed = "Device registration removed.", True
    if not is_htmx(request):
        session.flash(request, message)
        return redirect(request, url(request, f"/accounts/{account.id}#devices"))
    devices = await support.devices(account.id)
    context = {"account": account, "devices": devices, "announce": message}
    response = render(request, "_devices.html", context)
    return trigger(response, ACCOUNT_CHANGED) if changed else response


@staff_required()
async def delete_confirm(request: Request) -> Response:
    account = await _account(request)
    _contractor(account)
    return await render_account(
        request, account, "delete.html", {"account": account, "error": None}
    )


@staff_required()
async def delete_account(request: Request) -> Response:
    account = await _account(request)
    _contractor(account)
    form = await request.form()
    if form.get("confirm") != "yes":
        context = {"account": account, "error": "Tick the box to confirm the deletion."}
        return await render_account(request, account, "delete.html", context, status_code=422)
    await deletion.delete_account(account.id, actor(request))
    # The flash rides in a cookie the staff member's browser can read: it names no one.
    session.flash(request, "Account deleted.")
    return redirect(request, url(request, "/"))


@staff_required(StaffRole.SYSADMIN)
async def staff_list(request: Request) -> Response:
    members = await staff_resolvers.list_staff()
    return render(request, "staff.html", {"members": members, "now": clock.now()})


async def _staff_member(request: Request) -> Staff:
    target = await staff_resolvers.staff_member(request.path_params["staff_id"])
    if target is None:
        raise HTTPException(404, "No such staff member.")
    return target


async def _disable_confirmation(request: Request) -> Response:
    """Disabling signs the member out at once: it is asked for first, with or without JS."""
    return render(request, "staff_disable.html", {"member": await _staff_member(request)})


@staff_required(StaffRole.SYSADMIN)
async def staff_disable_confirm(request: Request) -> Response:
    return await _disable_confirmation(request)


@staff_required(StaffRole.SYSADMIN)
async def staff_set_disabled(request: Request) -> Response:
    action = request.path_params["action"]
    if action not in {"disable", "enable"}:
        raise HTTPException(404, "No such action.")
    disabled = action == "disable"
    if disabled and (await request.form()).get("confirm") != "yes":
        return await _disable_confirmation(request)
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
