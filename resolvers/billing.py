"""An agent's bill: the monthly price, the balance, the due date, the invoices and payments.

The balance is worked out, never stored: what was billed, less what was paid, plus what was
refunded. Payments settle the oldest bills first, so the bills due before a day are all paid
exactly when they add up to no more than the net payments (one statement, any number of
accounts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from core import clock
from models import prepared
from models.accounts import Account
from models.billing import BillingAccount, Invoice, Payment
from models.enums import AccountKind, BillingState
from settings import Settings

# Stripe subscription statuses in which it goes on charging the card every month.
AUTOPAY_STATUSES = frozenset({"active", "trialing", "past_due"})
# Once a subscription reaches one of these it never charges again.
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
PAGE_LIMIT = 100

# Net payments of an account: payments less refunds (failures move no money).
NET_PAID = (
    'SELECT COALESCE(SUM(CASE "kind" WHEN \'PAYMENT\' THEN "amount_cents" '
    "WHEN 'REFUND' THEN -\"amount_cents\" ELSE 0 END), 0) "
    'FROM "billing_payment" WHERE "account_id" = {account}'
)
# What an account was billed with a due date before a day.
BILLED_BEFORE = (
    'SELECT COALESCE(SUM("amount_cents"), 0) FROM "billing_invoice" '
    'WHERE "account_id" = {account} AND "due_on" < ?'
)


def sql_day(connection: BaseDBAsyncClient, day: date) -> object:
    """A date as a raw statement's parameter: SQLite keeps dates as ISO text (and Python's
    own date adapter is deprecated), PostgreSQL as dates."""
    return day if connection.capabilities.dialect == "postgres" else day.isoformat()


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    """The first day of the month after `day`'s."""
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def today() -> date:
    return clock.now().date()  # UTC: bills are due on a UTC day


def money(cents: int, currency: str) -> str:
    """$25.00 for dollars, 25.00 EUR otherwise; a credit is -$5.00."""
    sign = "-" if cents < 0 else ""
    amount = f"{abs(cents) // 100:,}.{abs(cents) % 100:02d}"
    if currency == "usd":
        return f"{sign}${amount}"
    return f"{sign}{amount} {currency.upper()}"


def state_of(settings: Settings, account: Account) -> BillingState:
    if not settings.billing_configured or account.kind != AccountKind.AGENT:
        return BillingState.OFF
    if settings.monthly_price(account.association) is None:
        return BillingState.NOT_BILLED
    return BillingState.ON


def state_message(state: BillingState) -> str | None:
    if state == BillingState.OFF:
        return "Billing is off: this server takes no payments."
    if state == BillingState.NOT_BILLED:
        return (
            "No key subscription price is set for your association: please contact your "
            "Association or MLS office."
        )
    return None


def autopay_on(billing: BillingAccount | None) -> bool:
    return billing is not None and billing.subscription_status in AUTOPAY_STATUSES


async def billing_account(account_id: int) -> BillingAccount:
    """The agent's billing row, made on first need (two at once make one)."""
    found = await BillingAccount.get_or_none(account_id=account_id)
    if found is not None:
        return found
    try:
        return await BillingAccount.create(account_id=account_id)
    except IntegrityError:
        return await BillingAccount.get(account_id=account_id)


@dataclass(frozen=True)
class Ledger:
    billed: int  # every bill, or those due before the day asked about
    paid: int  # payments less refunds

    @property
    def owed(self) -> int:
        return self.billed - self.paid


async def ledger(account_id: int, due_before: date | None = None) -> Ledger:
    """The account's bills (all, or those due before a day) against its net payments."""
    connection = Tortoise.get_connection("default")
    billed = BILLED_BEFORE.format(account="?")
    params: list[object] = [account_id, sql_day(connection, due_before or date.max)]
    sql = f"SELECT ({billed}), ({NET_PAID.format(account='?')})"  # noqa: S608
    [(billed_cents, paid_cents)] = await prepared.fetch(connection, sql, [*params, account_id])
    return Ledger(int(billed_cents), int(paid_cents))


async def balance(account_id: int) -> int:
    return (await ledger(account_id)).owed


async def oldest_unpaid(account_id: int, paid: int) -> Invoice | None:
    """The first bill the net payments do not cover, oldest first."""
    covered = paid
    for invoice in await Invoice.filter(account_id=account_id).order_by("period_start"):
        covered -= invoice.amount_cents
        if covered < 0:
            return invoice
    return None


async def overdue_past_grace(settings: Settings, account_id: int) -> bool:
    """Whether a bill is unpaid past its due date and the grace days: PAST_DUE's reason."""
    cutoff = today() - timedelta(days=settings.billing_grace_days)
    return (await ledger(account_id, due_before=cutoff)).owed > 0


@dataclass(frozen=True)
class Bill:
    state: BillingState
    currency: str
    monthly_price: int | None
    balance: int
    due_on: date | None
    autopay: bool


async def bill_of(settings: Settings, account: Account) -> Bill:
    """What the agent owes and when; with billing off, nothing owed and no date."""
    state = state_of(settings, account)
    currency = settings.billing_currency
    if state == BillingState.OFF:
        return Bill(state, currency, None, 0, None, False)
    billing = await BillingAccount.get_or_none(account_id=account.id)
    totals = await ledger(account.id)
    return Bill(
        state=state,
        currency=currency,
        monthly_price=settings.monthly_price(account.association),
        balance=totals.owed,
        due_on=await due_on(account.id, totals, state),
        autopay=autopay_on(billing),
    )


async def due_on(account_id: int, totals: Ledger, state: BillingState) -> date | None:
    """The oldest unpaid bill's due date; all paid: the next bill's (the month after the last
    one billed, or next month); not billed and nothing owed: none."""
    if totals.owed > 0:
        unpaid = await oldest_unpaid(account_id, totals.paid)
        if unpaid is not None:
            return unpaid.due_on
    if state != BillingState.ON:
        return None
    latest = await Invoice.filter(account_id=account_id).order_by("-period_start").first()
    return latest.period_end if latest is not None else next_month(today())


async def invoices(account_id: int, limit: int, before_id: int | None = None) -> list[Invoice]:
    """Newest first, keyset-paged on id."""
    query = Invoice.filter(account_id=account_id)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(min(limit, PAGE_LIMIT + 1))


async def payments(account_id: int, limit: int, before_id: int | None = None) -> list[Payment]:
    """Payments, refunds and failed attempts, newest first, keyset-paged on id."""
    query = Payment.filter(account_id=account_id)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(min(limit, PAGE_LIMIT + 1))


async def paid_invoice_ids(account_id: int) -> set[int]:
    """The bills the net payments cover, oldest first."""
    covered = (await ledger(account_id)).paid
    paid: set[int] = set()
    for invoice in await Invoice.filter(account_id=account_id).order_by("period_start"):
        covered -= invoice.amount_cents
        if covered < 0:
            break
        paid.add(invoice.id)
    return paid


async def invoice_count(account_id: int) -> int:
    return await Invoice.filter(account_id=account_id).count()


async def payment_count(account_id: int) -> int:
    return await Payment.filter(account_id=account_id).count()
