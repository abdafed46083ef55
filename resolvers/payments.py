"""Starting a payment: a Stripe Checkout page for the agent's balance, from the app (with
"pay every month", a Stripe subscription) or sent by support by SMS or email."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from tortoise.transactions import in_transaction

from core import clock
from core.errors import DomainError
from models.accounts import Account
from models.billing import BillingAccount, CheckoutSession, Invoice
from models.enums import AccountEventKind, BillingState, StaffAction
from notify import outbox
from resolvers import audit, events, stripe_api
from resolvers.billing import (
    autopay_on,
    billing_account,
    ledger,
    money,
    next_month,
    state_of,
    today,
)
from resolvers.billing_notices import day
from resolvers.events import Actor
from settings import Settings

# An open Checkout page is handed out again while it has this long left to live.
REUSE_MARGIN = timedelta(hours=1)
OFF = "Payments are not taken in the app: billing is off on this server."
NOT_BILLED = (
    "Your key subscription is not billed here. Please contact your Association or MLS office."
)


class LinkChannel(StrEnum):
    SMS = "SMS"
    EMAIL = "EMAIL"


@dataclass(frozen=True)
class StartedPayment:
    url: str
    amount_cents: int
    autopay: bool
    expires_at: datetime


def _nothing_due(settings: Settings, owed: int, autopay: bool) -> DomainError:
    text = f"Nothing is due: your balance is {money(max(owed, 0), settings.billing_currency)}"
    if autopay:
        text += ", and your bills are paid automatically every month"
    return DomainError("NOTHING_DUE", text + ".")


async def start_payment(
    settings: Settings, account: Account, autopay: bool, staff_id: int | None = None
) -> StartedPayment:
    """A Checkout page for the account's whole balance; with `autopay`, Stripe also saves the
    card and charges the monthly price from the first month not yet billed. Only ever the
    caller's own account: the account is the signed-in one, never an argument."""
    state = state_of(settings, account)
    if state == BillingState.OFF:
        raise DomainError("BILLING_OFF", OFF)
    known = await BillingAccount.get_or_none(account_id=account.id)
    owed = (await ledger(account.id)).owed
    price = settings.monthly_price(account.association)
    # Without a price there is no month to pay automatically; what is owed is still paid.
    monthly = autopay and price is not None and not autopay_on(known)
    if owed <= 0 and not monthly:
        if state == BillingState.NOT_BILLED:
            raise DomainError("BILLING_OFF", NOT_BILLED)
        raise _nothing_due(settings, owed, autopay_on(known))
    amount = max(owed, 0)
    reused = await _open_checkout(account.id, amount, monthly)
    if reused is not None:
        return reused
    billing = known or await billing_account(account.id)
    customer = billing.stripe_customer_id or await _customer(settings, account, billing)
    first_day = await first_unbilled_month(account.id) if monthly else None
    checkout = await stripe_api.create_checkout(
        settings,
        stripe_api.CheckoutRequest(
            account_id=account.id,
            customer_id=customer,
            balance_cents=amount,
            monthly_cents=price if monthly else None,
            first_autopay_day=first_day,
        ),
    )
    await CheckoutSession.create(
        id=checkout.id,
        account_id=account.id,
        amount_cents=amount,
        autopay=monthly,
        url=checkout.url,
        expires_at=checkout.expires_at,
        staff_id=staff_id,
    )
    return StartedPayment(checkout.url, amount, monthly, checkout.expires_at)


async def _open_checkout(account_id: int, amount: int, autopay: bool) -> StartedPayment | None:
    """A page made for the same payment that is still open: asking twice makes one page."""
    row = (
        await CheckoutSession.filter(
            account_id=account_id,
            amount_cents=amount,
            autopay=autopay,
            completed_at__isnull=True,
            expires_at__gt=clock.now() + REUSE_MARGIN,
        )
        .order_by("-created_at")
        .first()
    )
    if row is None:
        return None
    return StartedPayment(row.url, row.amount_cents, row.autopay, row.expires_at)


async def _customer(settings: Settings, account: Account, billing: BillingAccount) -> str:
    customer = await stripe_api.create_customer(settings, account.id, account.key_id or "")
    # The customer's idempotency key is the account's: a concurrent start got the same one.
    await BillingAccount.filter(id=billing.id, stripe_customer_id__isnull=True).update(
        stripe_customer_id=customer
    )
    return customer


async def first_unbilled_month(account_id: int) -> date:
    """Where autopay starts: the month after the last one billed, at the earliest next month."""
    latest = await Invoice.filter(account_id=account_id).order_by("-period_start").first()
    start = next_month(today())
    if latest is not None and latest.period_end > start:
        start = latest.period_end
    return start


def _sms_text(started: StartedPayment, account: Account, currency: str) -> str:
    return (
        f"keybin: pay your key subscription ({money(started.amount_cents, currency)}, Key ID "
        f"{account.key_id}) on Stripe's secure page: {started.url} (works until "
        f"{day(started.expires_at.date())})"
    )


async def send_payment_link(
    settings: Settings, account: Account, channel: LinkChannel, actor: Actor
) -> StartedPayment:
    """Support's phone flow: the caller gives their Key ID, support sends them a page for the
    balance by SMS or email, logged in the account event log and the staff audit trail."""
    if channel == LinkChannel.SMS and not account.phone:
        raise DomainError("INVALID_INPUT", "This agent has no cell phone number: send an email.")
    if channel == LinkChannel.EMAIL and not account.email:
        raise DomainError("INVALID_INPUT", "This agent has no email address: send an SMS.")
    started = await start_payment(settings, account, autopay=False, staff_id=actor.staff_id)
    currency = settings.billing_currency
    amount = money(started.amount_cents, currency)
    detail = f"{amount} by {channel.value.lower()}"
    async with in_transaction():
        if channel == LinkChannel.SMS:
            await outbox.sms(account.phone or "", _sms_text(started, account, currency), account.id)
        else:
            context = {
                "name": account.first_name or "there",
                "key_id": account.key_id or "",
                "amount": amount,
                "amount_due": started.amount_cents > 0,
                "autopay": started.autopay,
                "link": started.url,
                "expires": day(started.expires_at.date()),
            }
            await outbox.email(account.email or "", "payment_link", context, account.id)
        await events.record(account, AccountEventKind.PAYMENT_LINK_SENT, detail, actor)
        await audit.record_by(actor, StaffAction.PAYMENT_LINK_SENT, account.id, detail)
    outbox.wake()
    return started
