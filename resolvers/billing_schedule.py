"""Billing's periodic work, a round a minute beside the outbox dispatcher: each month's bill
(with its reminder) a few days before the 1st, a notice the day after an unpaid due date,
PAST_DUE once the grace days are over, and autopay's amount kept at the association's price
(resolvers/autopay_price.py). Every step is claimed by a write committed with its
messages and mails (a unique bill per month, a reminder's time, a status that must still be
ACTIVE), so several instances, or a restart, never do one twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError, OperationalError
from tortoise.transactions import in_transaction

from core import clock
from models import prepared
from models.accounts import Account
from models.billing import BillingAccount, Invoice
from models.enums import AccountStatus
from notify import outbox, sessions
from notify.tasks import stop_task
from resolvers import autopay_price, billing_notices
from resolvers.billing import (
    AUTOPAY_STATUSES,
    BILLED_BEFORE,
    NET_PAID,
    ledger,
    month_start,
    next_month,
    sql_day,
    today,
)
from resolvers.billing_status import make_past_due, reactivate_if_paid
from settings import Settings

log = logging.getLogger("keybin.billing")

BATCH = 100
# Batches one round works through at most; the next round goes on where it stopped.
MAX_BATCHES = 50


@dataclass
class Round:
    enrolled: int = 0
    billed: int = 0
    overdue_notices: int = 0
    made_past_due: int = 0
    made_active: int = 0
    repriced: int = 0


async def run_round(settings: Settings) -> Round:
    done = Round()
    if not settings.billing_configured:
        return done
    done.enrolled = await enroll_agents()
    done.billed = await issue_bills(settings)
    done.overdue_notices = await send_overdue_notices(settings)
    done.made_past_due = await pause_overdue_accounts(settings)
    done.made_active = await reactivate_paid_accounts(settings)
    done.repriced = await autopay_price.keep_autopay_at_price(settings)
    if (
        done.billed
        or done.overdue_notices
        or done.made_past_due
        or done.made_active
        or done.repriced
    ):
        outbox.wake()
    return done


def _connection() -> BaseDBAsyncClient:
    return Tortoise.get_connection("default")


async def _ids(sql: str, params: list[object]) -> list[int]:
    return [int(row[0]) for row in await prepared.fetch(_connection(), sql, params)]


AGENTS = '"kind" = \'AGENT\' AND "deleted_at" IS NULL'


async def enroll_agents() -> int:
    """A billing row for every agent without one: billing starts with the first month that
    begins after it (nobody is billed for a month already under way)."""
    enrolled = 0
    for _ in range(MAX_BATCHES):
        ids = await _ids(
            f'SELECT "id" FROM "account" WHERE {AGENTS} AND NOT EXISTS '  # noqa: S608
            '(SELECT 1 FROM "billing_account" b WHERE b."account_id" = "account"."id") '
            'ORDER BY "id" LIMIT ?',
            [BATCH],
        )
        if not ids:
            break
        await BillingAccount.bulk_create(
            [BillingAccount(account_id=account_id) for account_id in ids], ignore_conflicts=True
        )
        enrolled += len(ids)
    return enrolled


def _priced(settings: Settings) -> tuple[str, list[object]]:
    """The condition on an account's association for it to have a price."""
    named = [association for association, _ in settings.billing_prices]
    if "*" in named:
        return "", []
    return f' AND "association" IN ({prepared.placeholders(len(named))})', list(named)


def _midnight(connection: BaseDBAsyncClient, day: date) -> object:
    """Midnight UTC starting a day, compared with a stored time (SQLite keeps ISO text, which
    sorts after the bare date from midnight on)."""
    if connection.capabilities.dialect == "postgres":
        return datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    return day.isoformat()


async def issue_bills(settings: Settings) -> int:
    """The bill for the month starting within the reminder days, for every billed ACTIVE or
    PAST_DUE agent not paying by autopay (Stripe bills those), with its reminder."""
    period = month_start(today() + timedelta(days=settings.billing_reminder_days))
    connection = _connection()
    association, association_params = _priced(settings)
    statuses = ", ".join(f"'{status}'" for status in sorted(AUTOPAY_STATUSES))
    sql = (
        f'SELECT "id" FROM "account" WHERE {AGENTS} '  # noqa: S608
        "AND \"status\" IN ('ACTIVE', 'PAST_DUE')"
        f"{association} "
        'AND NOT EXISTS (SELECT 1 FROM "billing_invoice" i '
        'WHERE i."account_id" = "account"."id" AND i."period_start" = ?) '
        'AND EXISTS (SELECT 1 FROM "billing_account" b WHERE b."account_id" = "account"."id" '
        f'AND b."created_at" < ? AND (b."subscription_status" IS NULL '
        f'OR b."subscription_status" NOT IN ({statuses}))) '
        'ORDER BY "id" LIMIT ?'
    )
    params = [*association_params, sql_day(connection, period), _midnight(connection, period)]
    billed = 0
    for _ in range(MAX_BATCHES):
        ids = await _ids(sql, [*params, BATCH])
        if not ids:
            break
        for account in await Account.filter(id__in=ids):
            billed += await _bill(settings, account, period)
    return billed


async def _bill(settings: Settings, account: Account, period: date) -> int:
    price = settings.monthly_price(account.association)
    if price is None:
        return 0
    currency = settings.billing_currency
    try:
        async with in_transaction():
            await Invoice.create(
                account_id=account.id,
                period_start=period,
                period_end=next_month(period),
                amount_cents=price,
                currency=currency,
                due_on=period,
                reminded_at=clock.now(),
            )
            await billing_notices.tell(
                account, billing_notices.bill_issued(price, currency, period)
            )
    except IntegrityError:
        return 0  # billed meanwhile by another instance
    return 1


async def send_overdue_notices(settings: Settings) -> int:
    """The day after a due date, one look at each bill: still unpaid, the agent is told how
    long is left before the account is past due."""
    sent = 0
    for _ in range(MAX_BATCHES):
        due = await Invoice.filter(due_on__lt=today(), overdue_checked_at__isnull=True).limit(BATCH)
        if not due:
            break
        for invoice in due:
            sent += await _overdue_notice(settings, invoice)
    return sent


async def _overdue_notice(settings: Settings, invoice: Invoice) -> int:
    account_id: int = invoice.account_id  # type: ignore[attr-defined]
    async with in_transaction():
        claimed = await Invoice.filter(id=invoice.id, overdue_checked_at__isnull=True).update(
            overdue_checked_at=clock.now()
        )
        if not claimed:
            return 0
        account = await Account.get_or_none(
            id=account_id, deleted_at__isnull=True, status=AccountStatus.ACTIVE
        )
        owed = (await ledger(account_id, due_before=invoice.due_on + timedelta(days=1))).owed
        if account is None or owed <= 0:
            return 0
        notice = billing_notices.overdue(
            owed, settings.billing_currency, invoice.due_on, settings.billing_grace_days
        )
        await billing_notices.tell(account, notice)
    return 1


async def pause_overdue_accounts(settings: Settings) -> int:
    """ACTIVE agents with a bill unpaid past its due date and the grace days become PAST_DUE;
    their live subscriptions close at commit, on every instance."""
    connection = _connection()
    cutoff = today() - timedelta(days=settings.billing_grace_days)
    billed = BILLED_BEFORE.format(account='"account"."id"')
    paid = NET_PAID.format(account='"account"."id"')
    sql = (
        f'SELECT "id" FROM "account" WHERE {AGENTS} AND "status" = \'ACTIVE\' '  # noqa: S608
        f'AND ({billed}) > ({paid}) ORDER BY "id" LIMIT ?'
    )
    paused = 0
    seen: set[int] = set()
    for _ in range(MAX_BATCHES):
        ids = [i for i in await _ids(sql, [sql_day(connection, cutoff), BATCH]) if i not in seen]
        if not ids:
            break
        seen.update(ids)
        for account in await Account.filter(id__in=ids):
            async with sessions.ending() as ending:
                paused += await make_past_due(settings, account, ending)
    return paused


async def reactivate_paid_accounts(settings: Settings) -> int:
    """Accounts billing made PAST_DUE with nothing overdue any more (a payment's own event
    does this at once; this catches a change of the grace days)."""
    reactivated = 0
    for billing in await BillingAccount.filter(made_past_due=True).limit(BATCH):
        account = await Account.get_or_none(id=billing.account_id)  # type: ignore[attr-defined]
        if account is None:
            continue
        async with in_transaction():
            if await reactivate_if_paid(settings, account):
                await billing_notices.tell(account, billing_notices.active_again())
                reactivated += 1
    return reactivated


class BillingScheduler:
    """Runs run_round every BILLING_ROUND_SECONDS while billing is configured, the first one
    an interval after start (nothing in billing is urgent to the second)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.interval = settings.billing_round_seconds
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def run_once(self) -> Round:
        return await run_round(self.settings)

    def start(self) -> None:
        if self.settings.billing_configured:
            self._task = asyncio.create_task(self._run(), name="billing")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task, self._stopping)
            self._task = None

    async def _run(self) -> None:
        while not await self._stopped_within(self.interval):
            try:
                await self.run_once()
            # The database busy or gone for a moment: the next round picks the work up.
            except (OSError, OperationalError) as error:
                log.warning("billing round failed: %s", error)

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return self._stopping.is_set()
