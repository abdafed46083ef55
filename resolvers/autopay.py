"""Autopay from keybin's side: turning it off from the app, and keeping what it charges at
the association's price.

Stripe is called first, with no transaction open (a slow Stripe must not hold SQLite's one
connection); its answer is then recorded under a lock on the billing row, as the webhook
would record it, so the event that follows (`customer.subscription.deleted` or `.updated`)
finds it done and changes nothing (one notice, not two)."""

from __future__ import annotations

import logging

from tortoise import Tortoise
from tortoise.transactions import in_transaction

from core.errors import DomainError
from models import prepared
from models.accounts import Account
from models.billing import BillingAccount
from models.enums import BillingState
from notify import outbox
from resolvers import billing_notices, stripe_api
from resolvers.billing import AUTOPAY_STATUSES, autopay_on, state_of
from resolvers.payments import OFF
from resolvers.stripe_webhooks import subscription_state
from settings import Settings

log = logging.getLogger("keybin.billing")

NOT_ON = "Automatic monthly payment is not on: there is nothing to stop."


async def stop_autopay(settings: Settings, account: Account) -> None:
    """Cancel the signed-in agent's own autopay (never anyone else's: the account is the
    caller's). The bills already made stay owed; later months are billed in the app."""
    if state_of(settings, account) == BillingState.OFF:
        raise DomainError("BILLING_OFF", OFF)
    known = await BillingAccount.get_or_none(account_id=account.id)
    if known is None or not autopay_on(known) or known.subscription_id is None:
        raise DomainError("AUTOPAY_OFF", NOT_ON)
    subscription = known.subscription_id
    cancelled = await stripe_api.cancel_subscription(settings, subscription)
    async with in_transaction():
        # Read again under a lock: a webhook or a second tap may have got here first.
        billing = await BillingAccount.select_for_update().get(id=known.id)
        await subscription_state(account, billing, subscription, cancelled.status, cancelled.at)
    outbox.wake()


BATCH = 100
# Batches one round works through at most; the next round goes on where it stopped.
MAX_BATCHES = 50


def _priced_sql(settings: Settings) -> tuple[str, list[object]]:
    """An account's monthly price in SQL, as Settings.monthly_price says: its association's,
    else the "*" price, else NULL."""
    named = list(settings.billing_prices)
    whens = " ".join("WHEN ? THEN CAST(? AS INTEGER)" for name, _ in named if name != "*")
    params: list[object] = [p for name, cents in named if name != "*" for p in (name, cents)]
    params.append(dict(named).get("*"))
    if not whens:
        return "CAST(? AS INTEGER)", params
    return f'CASE a."association" {whens} ELSE CAST(? AS INTEGER) END', params


async def reprice_autopay(settings: Settings) -> int:
    """Every autopay subscription charging other than its association's price now (a price
    changed since it started, or an amount not known yet) is set to that price at Stripe,
    and the agent told of a change by message and mail. A Stripe that does not answer leaves
    it as it was, for the next round. Returns how many agents were told."""
    price, price_params = _priced_sql(settings)
    statuses = ", ".join(f"'{status}'" for status in sorted(AUTOPAY_STATUSES))
    sql = (
        'SELECT a."id" FROM "account" a JOIN "billing_account" b ON b."account_id" = a."id" '  # noqa: S608
        'WHERE a."kind" = \'AGENT\' AND a."deleted_at" IS NULL '
        f'AND b."subscription_id" IS NOT NULL AND b."subscription_status" IN ({statuses}) '
        f"AND ({price}) IS NOT NULL "
        f'AND (b."subscription_price_cents" IS NULL OR b."subscription_price_cents" <> ({price})) '
        'AND a."id" > ? ORDER BY a."id" LIMIT ?'
    )
    connection = Tortoise.get_connection("default")
    told = 0
    after = 0
    for _ in range(MAX_BATCHES):
        params = [*price_params, *price_params, after, BATCH]
        ids = [int(row[0]) for row in await prepared.fetch(connection, sql, params)]
        if not ids:
            break
        after = ids[-1]
        for account in await Account.filter(id__in=ids):
            told += await _reprice(settings, account)
    if told:
        outbox.wake()
    return told


async def _reprice(settings: Settings, account: Account) -> int:
    price = settings.monthly_price(account.association)
    known = await BillingAccount.get_or_none(account_id=account.id)
    if price is None or known is None or known.subscription_id is None:
        return 0
    subscription = known.subscription_id
    try:
        repriced = await stripe_api.set_subscription_price(settings, subscription, price)
    except DomainError:
        log.warning("autopay of account %s stays at its amount until Stripe answers", account.id)
        return 0
    async with in_transaction():
        # Read again under a lock: another instance's round, or a webhook, may have been first.
        billing = await BillingAccount.select_for_update().get(id=known.id)
        if (
            billing.subscription_id != subscription
            or not autopay_on(billing)
            or billing.subscription_price_cents == price
        ):
            return 0
        await BillingAccount.filter(id=billing.id).update(subscription_price_cents=price)
        if repriced.before == price:
            return 0  # it charged that already: nothing changes for the agent
        notice = billing_notices.autopay_price_changed(
            repriced.before, price, settings.billing_currency
        )
        await billing_notices.tell(account, notice)
    return 1
