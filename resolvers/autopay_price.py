"""Autopay charges the association's price: when BILLING_PRICES changes, billing's round
brings each autopay subscription at Stripe to the new price, or pauses its charging while the
agent's association has no price (an agent without a price is not billed) and resumes it when
one comes back, and tells the agent each time, by message and mail.

Stripe is called first, with no transaction open (a slow Stripe must not hold SQLite's one
connection); what it did is then recorded under a lock on the billing row, so two instances'
rounds at once change it once and tell once. A Stripe that does not answer leaves everything
as it was, for the next round."""

from __future__ import annotations

import logging

from tortoise import Tortoise
from tortoise.transactions import in_transaction

from core import clock
from core.errors import DomainError
from models import prepared
from models.accounts import Account
from models.billing import BillingAccount
from resolvers import billing_notices, stripe_api
from resolvers.billing import AUTOPAY_STATUSES, autopay_on
from resolvers.stripe_webhooks import subscription_state
from settings import Settings

log = logging.getLogger("keybin.billing")

BATCH = 100
# Batches one round works through at most; the next round goes on where it stopped.
MAX_BATCHES = 50


def _price_sql(settings: Settings) -> tuple[str, list[object]]:
    """An account's monthly price in SQL, as Settings.monthly_price says: its association's,
    else the "*" price, else NULL."""
    named = list(settings.billing_prices)
    whens = " ".join("WHEN ? THEN CAST(? AS INTEGER)" for name, _ in named if name != "*")
    params: list[object] = [p for name, cents in named if name != "*" for p in (name, cents)]
    params.append(dict(named).get("*"))
    if not whens:
        return "CAST(? AS INTEGER)", params
    return f'CASE a."association" {whens} ELSE CAST(? AS INTEGER) END', params


async def keep_autopay_at_price(settings: Settings) -> int:
    """Every autopay subscription whose charging is not what its association's price says
    now (another amount, an amount not known yet, paused with a price or charging without
    one) is brought to it at Stripe. Returns how many agents were told."""
    price, price_params = _price_sql(settings)
    statuses = ", ".join(f"'{status}'" for status in sorted(AUTOPAY_STATUSES))
    sql = (
        'SELECT a."id" FROM "account" a JOIN "billing_account" b ON b."account_id" = a."id" '  # noqa: S608
        'WHERE a."kind" = \'AGENT\' AND a."deleted_at" IS NULL '
        f'AND b."subscription_id" IS NOT NULL AND b."subscription_status" IN ({statuses}) '
        f'AND (({price}) IS NULL AND NOT b."subscription_paused" '
        f'OR ({price}) IS NOT NULL AND (b."subscription_paused" '
        f'OR b."subscription_price_cents" IS NULL OR b."subscription_price_cents" <> ({price}))) '
        'AND a."id" > ? ORDER BY a."id" LIMIT ?'
    )
    connection = Tortoise.get_connection("default")
    told = 0
    after = 0
    for _ in range(MAX_BATCHES):
        params = [*price_params, *price_params, *price_params, after, BATCH]
        ids = [int(row[0]) for row in await prepared.fetch(connection, sql, params)]
        if not ids:
            break
        after = ids[-1]
        for account in await Account.filter(id__in=ids):
            told += await _keep(settings, account)
    return told


async def _keep(settings: Settings, account: Account) -> int:
    price = settings.monthly_price(account.association)
    known = await BillingAccount.get_or_none(account_id=account.id)
    if known is None or known.subscription_id is None:
        return 0
    subscription = known.subscription_id
    try:
        was = await stripe_api.keep_subscription_at(settings, subscription, price)
    except DomainError:
        log.warning("autopay of account %s stays as it is until Stripe answers", account.id)
        return 0
    async with in_transaction():
        # Read again under a lock: another instance's round, or a webhook, may have been first.
        billing = await BillingAccount.select_for_update().get(id=known.id)
        if billing.subscription_id != subscription or not autopay_on(billing):
            return 0
        if was.ended is not None:
            # Ended at Stripe, and its event never came: Stripe's answer now is its newest word.
            # Autopay is off and the agent told, so the bills go back to being paid by hand.
            await subscription_state(account, billing, subscription, was.ended, clock.now())
            return 1
        currency = settings.billing_currency
        notice: billing_notices.Notice | None
        if price is None:
            if billing.subscription_paused:
                return 0
            changes: dict[str, object] = {"subscription_paused": True}
            notice = billing_notices.autopay_paused()
        else:
            if not billing.subscription_paused and billing.subscription_price_cents == price:
                return 0
            changes = {"subscription_price_cents": price, "subscription_paused": False}
            if billing.subscription_paused:
                notice = billing_notices.autopay_resumed(price, currency)
            elif was.monthly_cents != price:
                notice = billing_notices.autopay_price_changed(was.monthly_cents, price, currency)
            else:
                notice = None  # it charged that already: nothing changes for the agent
        await BillingAccount.filter(id=billing.id).update(**changes)
        if notice is None:
            return 0
        await billing_notices.tell(account, notice)
    return 1
