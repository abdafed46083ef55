"""The agent page's Billing section: the balance read out to a caller who gave their Key ID,
and a payment link sent to them by SMS or email (the seed's pay-by-phone flow)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from console import session
from console.auth import actor, staff_required, url
from console.htmx import is_htmx, redirect, trigger
from console.pages import render
from core.errors import DomainError
from models.enums import AccountKind, BillingState
from resolvers import billing, support
from resolvers.payments import LinkChannel, send_payment_link
from settings import Settings

if TYPE_CHECKING:
    from models.accounts import Account
    from models.billing import Invoice, Payment

SHOWN = 6  # the latest bills and payments; the app lists them all
ACCOUNT_CHANGED = "accountChanged"  # the event log reloads itself (console/routes.py)


@dataclass(frozen=True)
class Section:
    state: BillingState
    message: str | None
    bill: billing.Bill | None = None
    invoices: list[Invoice] = field(default_factory=list)
    paid: set[int] = field(default_factory=set)
    payments: list[Payment] = field(default_factory=list)

    def money(self, cents: int) -> str:
        return billing.money(cents, self.bill.currency if self.bill else "usd")


async def section(settings: Settings, account: Account) -> Section:
    state = billing.state_of(settings, account)
    if state == BillingState.OFF:
        return Section(state, "Billing is off on this server: no Stripe configuration.")
    bill = await billing.bill_of(settings, account)
    message = None
    if state == BillingState.NOT_BILLED:
        message = f"No price is set for {account.association or 'this agent’s association'}."
    return Section(
        state=state,
        message=message,
        bill=bill,
        invoices=await billing.invoices(account.id, SHOWN),
        paid=await billing.paid_invoice_ids(account.id),
        payments=await billing.payments(account.id, SHOWN),
    )


async def billing_context(settings: Settings, account: Account, **extra: Any) -> dict[str, Any]:
    return {"account": account, "billing": await section(settings, account), **extra}


async def _agent(request: Request) -> Account:
    account = await support.live_account(request.path_params["account_id"])
    if account is None or account.kind != AccountKind.AGENT:
        raise HTTPException(404, "No such agent (the account may have been deleted).")
    return account


@staff_required()
async def send_link(request: Request) -> Response:
    """SUPPORT and SYSADMIN alike, as for every account action; logged in both trails."""
    account = await _agent(request)
    settings: Settings = request.app.state.settings
    channel = str((await request.form()).get("channel", ""))
    try:
        if channel not in LinkChannel.__members__:
            raise DomainError("INVALID_INPUT", "Choose SMS or email.")
        started = await send_payment_link(settings, account, LinkChannel(channel), actor(request))
    except DomainError as error:
        context = await billing_context(settings, account, link_error=error.message)
        return render(request, "_billing.html", context, status_code=422)
    amount = billing.money(started.amount_cents, settings.billing_currency)
    where = "by SMS" if channel == LinkChannel.SMS else "by email"
    announce = f"Payment link for {amount} sent {where}."
    if not is_htmx(request):
        session.flash(request, announce)
        return redirect(request, url(request, f"/accounts/{account.id}#billing"))
    context = await billing_context(settings, account, announce=announce)
    return trigger(render(request, "_billing.html", context), ACCOUNT_CHANGED)
