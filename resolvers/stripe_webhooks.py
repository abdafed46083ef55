"""Stripe's webhook events: payments, failures, refunds and subscription changes, each applied
once, with its effects and the agent's message in the transaction that records it.

The event's row is written first: a replay finds it, and the same event delivered twice at
once is one insert that wins and one that fails (on PostgreSQL the second waits for the first
to commit). Events are applied by what they say, not by when they arrive: a payment is keyed
by Stripe's id of the money (two events about one payment record it once), a subscription's
state by Stripe's event time, and a cancelled subscription stays cancelled."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.accounts import Account
from models.billing import BillingAccount, CheckoutSession, Invoice, Payment, StripeEvent
from models.enums import AccountEventKind, PaymentKind, PaymentMethod
from notify import outbox
from resolvers import billing_notices, events
from resolvers.billing import (
    AUTOPAY_STATUSES,
    ENDED_STATUSES,
    autopay_on,
    balance,
    money,
    month_start,
    next_month,
)
from resolvers.billing_status import reactivate_if_paid
from resolvers.stripe_api import ACCOUNT_KEY
from settings import Settings

log = logging.getLogger("keybin.stripe")


class Busy(Exception):
    """Another event about the same payment was being recorded at the same moment: Stripe
    is asked to send this one again (it will then find the payment and change nothing)."""


class _Seen(Exception):
    pass


@dataclass(frozen=True)
class Incoming:
    id: str
    type: str
    at: datetime  # when Stripe created the event
    obj: dict[str, Any]


@dataclass(frozen=True)
class Effect:
    outcome: str
    account_id: int | None = None


Handler = Callable[[Settings, Incoming], Awaitable[Effect]]


def _parse(event: dict[str, Any]) -> Incoming:
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    event_id, created = event.get("id"), event.get("created")
    if not isinstance(event_id, str) or not event_id or not isinstance(obj, dict):
        raise ValueError("not a Stripe event")
    if not isinstance(created, int):
        raise ValueError("an event without its time")
    return Incoming(event_id, str(event.get("type", "")), datetime.fromtimestamp(created, UTC), obj)


async def handle(settings: Settings, event: dict[str, Any]) -> str:
    """Apply one verified event; returns what it did ("duplicate" for one already handled)."""
    incoming = _parse(event)
    if await StripeEvent.exists(id=incoming.id):
        return "duplicate"
    handler = HANDLERS.get(incoming.type)
    try:
        async with in_transaction():
            try:
                await StripeEvent.create(id=incoming.id, type=incoming.type[:100], outcome="")
            except IntegrityError as error:
                raise _Seen from error
            if handler is None:
                effect = Effect("ignored: not an event keybin uses")
            else:
                effect = await handler(settings, incoming)
            await StripeEvent.filter(id=incoming.id).update(
                outcome=effect.outcome[:200], account_id=effect.account_id
            )
    except _Seen:
        return "duplicate"
    except IntegrityError as error:
        raise Busy from error
    outbox.wake()
    log.info("Stripe event %s (%s): %s", incoming.id, incoming.type, effect.outcome)
    return effect.outcome


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _id(value: Any) -> str | None:
    """An id field, given as the id or as the expanded object."""
    if isinstance(value, dict):
        return _text(value.get("id"))
    return _text(value)


def _path(obj: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)  # type: ignore[assignment]
    return obj


def _named(metadata: Any) -> str | None:
    return _text(metadata.get(ACCOUNT_KEY)) if isinstance(metadata, dict) else None


def _agrees(account_id: int, *metadatas: Any) -> bool:
    """Whatever names an account names this one (an object may name none)."""
    return all(_named(m) in (None, str(account_id)) for m in metadatas)


async def _live(account_id: int) -> Account | None:
    return await Account.get_or_none(id=account_id, deleted_at__isnull=True)


async def _by_customer(obj: dict[str, Any]) -> tuple[Account, BillingAccount] | None:
    customer = _id(obj.get("customer"))
    if customer is None:
        return None
    billing = await BillingAccount.get_or_none(stripe_customer_id=customer)
    if billing is None:
        return None
    account = await _live(billing.account_id)  # type: ignore[attr-defined]
    return (account, billing) if account is not None else None


IGNORED_CUSTOMER = Effect("ignored: a customer keybin does not know")
IGNORED_MISMATCH = "ignored: the account it names is not the customer's"


async def _paid(
    settings: Settings,
    account: Account,
    incoming: Incoming,
    amount: int,
    reference: str,
    method: PaymentMethod,
) -> Effect:
    """A payment recorded once per reference, with its message; PAST_DUE lifted when it
    leaves nothing overdue."""
    if await Payment.exists(reference=reference):
        return Effect("already recorded", account.id)
    currency = settings.billing_currency
    await Payment.create(
        account_id=account.id,
        kind=PaymentKind.PAYMENT,
        method=method,
        amount_cents=amount,
        currency=currency,
        reference=reference,
        occurred_at=incoming.at,
    )
    reactivated = await reactivate_if_paid(settings, account)
    owed = await balance(account.id)
    detail = f"{money(amount, currency)} ({method.value.lower()})"
    await events.record(account, AccountEventKind.PAYMENT_RECEIVED, detail)
    await billing_notices.tell(
        account, billing_notices.payment_received(amount, currency, owed, reactivated)
    )
    return Effect(f"payment of {amount} recorded", account.id)


async def _failed(
    settings: Settings,
    account: Account,
    incoming: Incoming,
    amount: int,
    reference: str,
    reason: str,
    method: PaymentMethod,
) -> Effect:
    if await Payment.exists(reference=reference):
        return Effect("already recorded", account.id)
    currency = settings.billing_currency
    await Payment.create(
        account_id=account.id,
        kind=PaymentKind.FAILED,
        method=method,
        amount_cents=amount,
        currency=currency,
        reference=reference,
        occurred_at=incoming.at,
        detail=reason[:200],
    )
    detail = f"{money(amount, currency)} ({method.value.lower()}): {reason or 'declined'}"
    await events.record(account, AccountEventKind.PAYMENT_FAILED, detail)
    notice = billing_notices.payment_failed(
        amount, currency, reason, autopay=method == PaymentMethod.AUTOPAY
    )
    await billing_notices.tell(account, notice)
    return Effect(f"failed payment of {amount} recorded", account.id)


async def checkout_completed(settings: Settings, incoming: Incoming) -> Effect:
    obj = incoming.obj
    session_id = _text(obj.get("id"))
    row = await CheckoutSession.get_or_none(id=session_id) if session_id else None
    if row is None:
        return Effect("ignored: a checkout keybin did not make")
    account_id = row.account_id  # type: ignore[attr-defined]
    named = {_named(obj.get("metadata")), _text(obj.get("client_reference_id"))}
    if named != {str(account_id)}:
        return Effect("ignored: the account it names is not the checkout's")
    account = await _live(account_id)
    if account is None:
        return Effect("ignored: the account was deleted")
    await CheckoutSession.filter(id=row.id, completed_at__isnull=True).update(
        completed_at=incoming.at
    )
    paid = obj.get("payment_status") == "paid"
    subscription = _id(obj.get("subscription"))
    if subscription and (paid or obj.get("payment_status") == "no_payment_required"):
        billing = await BillingAccount.get(account_id=account.id)
        await subscription_state(account, billing, subscription, "active", incoming.at)
    amount = int(obj.get("amount_total") or 0)
    # One reference per payment, whichever event tells of it first: the subscription's first
    # invoice (invoice.paid names it too) or the payment intent.
    reference = _id(obj.get("invoice")) or _id(obj.get("payment_intent"))
    if not paid or amount <= 0 or reference is None:
        return Effect("checkout completed, no payment taken", account.id)
    method = PaymentMethod.CHECKOUT
    return await _paid(settings, account, incoming, amount, reference, method)


async def checkout_failed(settings: Settings, incoming: Incoming) -> Effect:
    """A delayed payment method (a bank debit) that did not go through after all."""
    obj = incoming.obj
    row = await CheckoutSession.get_or_none(id=_text(obj.get("id")) or "")
    if row is None:
        return Effect("ignored: a checkout keybin did not make")
    account = await _live(row.account_id)  # type: ignore[attr-defined]
    if account is None or _named(obj.get("metadata")) != str(account.id):
        return Effect("ignored: the account it names is not the checkout's")
    amount = int(obj.get("amount_total") or 0)
    reference = f"{row.id}:failed"
    return await _failed(settings, account, incoming, amount, reference, "", PaymentMethod.CHECKOUT)


def _invoice_subscription(obj: dict[str, Any]) -> tuple[str | None, Any]:
    """The subscription an invoice bills and its metadata (where the current API puts them,
    else where earlier ones did)."""
    details = _path(obj, "parent", "subscription_details")
    if isinstance(details, dict):
        return _id(details.get("subscription")), details.get("metadata")
    return _id(obj.get("subscription")), _path(obj, "subscription_details", "metadata")


def _service_month(obj: dict[str, Any], fallback: datetime) -> date:
    """The month a renewal pays for: its subscription line's period (the invoice's own
    period_start and period_end are the month before)."""
    lines = _path(obj, "lines", "data")
    for line in lines if isinstance(lines, list) else []:
        start = _path(line, "period", "start")
        if isinstance(start, int):
            # Half a day in: an anchor a few hours either side of midnight is the same month.
            return month_start((datetime.fromtimestamp(start, UTC) + timedelta(hours=12)).date())
    return month_start(fallback.date())


async def _bill_renewal(settings: Settings, account: Account, incoming: Incoming) -> None:
    """Autopay's month, billed by Stripe: keybin's bill for it, made once."""
    obj = incoming.obj
    invoice_id = _text(obj.get("id"))
    if obj.get("billing_reason") != "subscription_cycle" or invoice_id is None:
        return
    if await Invoice.exists(stripe_invoice_id=invoice_id):
        return
    period = _service_month(obj, incoming.at)
    existing = await Invoice.get_or_none(account_id=account.id, period_start=period)
    if existing is not None:
        if existing.stripe_invoice_id is None:
            await Invoice.filter(id=existing.id).update(stripe_invoice_id=invoice_id)
        return
    await Invoice.create(
        account_id=account.id,
        period_start=period,
        period_end=next_month(period),
        amount_cents=int(obj.get("amount_due") or obj.get("total") or 0),
        currency=settings.billing_currency,
        due_on=period,
        stripe_invoice_id=invoice_id,
        # The payment's (or the failure's) message says what this bill is: no reminder.
        reminded_at=incoming.at,
    )


async def _invoice_account(
    incoming: Incoming,
) -> tuple[Account, BillingAccount, str | None] | Effect:
    found = await _by_customer(incoming.obj)
    if found is None:
        return IGNORED_CUSTOMER
    account, billing = found
    subscription, metadata = _invoice_subscription(incoming.obj)
    if not _agrees(account.id, metadata, incoming.obj.get("metadata")):
        return Effect(IGNORED_MISMATCH)
    return account, billing, subscription


async def invoice_paid(settings: Settings, incoming: Incoming) -> Effect:
    found = await _invoice_account(incoming)
    if isinstance(found, Effect):
        return found
    account, _, subscription = found
    await _bill_renewal(settings, account, incoming)
    amount = int(incoming.obj.get("amount_paid") or 0)
    invoice_id = _text(incoming.obj.get("id"))
    if amount <= 0 or invoice_id is None:
        return Effect("invoice paid, no money moved", account.id)
    method = PaymentMethod.AUTOPAY if subscription else PaymentMethod.CHECKOUT
    return await _paid(settings, account, incoming, amount, invoice_id, method)


async def invoice_failed(settings: Settings, incoming: Incoming) -> Effect:
    found = await _invoice_account(incoming)
    if isinstance(found, Effect):
        return found
    account, _, subscription = found
    await _bill_renewal(settings, account, incoming)
    obj = incoming.obj
    amount = int(obj.get("amount_due") or 0)
    # One row per attempt: Stripe retries a renewal, and each refusal is told.
    reference = f"{_text(obj.get('id'))}:attempt:{obj.get('attempt_count') or 1}"
    method = PaymentMethod.AUTOPAY if subscription else PaymentMethod.CHECKOUT
    return await _failed(settings, account, incoming, amount, reference, "", method)


async def payment_intent_failed(settings: Settings, incoming: Incoming) -> Effect:
    """A card refused on a Checkout page (the payer sees it there and may try another)."""
    obj = incoming.obj
    named = _named(obj.get("metadata"))
    if named is None:
        return Effect("ignored: not a keybin payment")
    found = await _by_customer(obj)
    if found is None:
        return IGNORED_CUSTOMER
    account = found[0]
    if named != str(account.id):
        return Effect(IGNORED_MISMATCH)
    found_error = obj.get("last_payment_error")
    error: dict[str, Any] = found_error if isinstance(found_error, dict) else {}
    reason = _text(error.get("message")) or ""
    attempt = _id(error.get("charge")) or incoming.id
    reference = f"{_text(obj.get('id'))}:{attempt}"
    amount = int(obj.get("amount") or 0)
    return await _failed(
        settings, account, incoming, amount, reference, reason, PaymentMethod.CHECKOUT
    )


async def charge_refunded(settings: Settings, incoming: Incoming) -> Effect:
    """Refunds of a charge, recorded as its running total: events arriving in any order, or
    again, leave the total Stripe last reported as the largest."""
    obj = incoming.obj
    found = await _by_customer(obj)
    if found is None:
        return IGNORED_CUSTOMER
    account = found[0]
    if not _agrees(account.id, obj.get("metadata")):
        return Effect(IGNORED_MISMATCH)
    charge = _text(obj.get("id"))
    total = int(obj.get("amount_refunded") or 0)
    if charge is None or total <= 0:
        return Effect("no refund in it", account.id)
    reference = f"{charge}:refunded"
    existing = await Payment.get_or_none(reference=reference)
    already = existing.amount_cents if existing is not None else 0
    if total <= already:
        return Effect("already recorded", account.id)
    currency = settings.billing_currency
    if existing is None:
        await Payment.create(
            account_id=account.id,
            kind=PaymentKind.REFUND,
            method=PaymentMethod.CHECKOUT,
            amount_cents=total,
            currency=currency,
            reference=reference,
            occurred_at=incoming.at,
        )
    else:
        await Payment.filter(id=existing.id).update(amount_cents=total, occurred_at=incoming.at)
    refund = total - already
    await events.record(account, AccountEventKind.PAYMENT_REFUNDED, money(refund, currency))
    notice = billing_notices.refunded(refund, currency, await balance(account.id))
    await billing_notices.tell(account, notice)
    return Effect(f"refund of {refund} recorded", account.id)


async def subscription_changed(settings: Settings, incoming: Incoming) -> Effect:
    obj = incoming.obj
    found = await _by_customer(obj)
    if found is None:
        return IGNORED_CUSTOMER
    account, billing = found
    # keybin's subscriptions name their account; another one is not autopay for keybin.
    if _named(obj.get("metadata")) != str(account.id):
        return Effect(IGNORED_MISMATCH)
    subscription = _text(obj.get("id"))
    if subscription is None:
        return Effect("ignored: no subscription in it")
    status = "canceled" if incoming.type.endswith(".deleted") else str(obj.get("status", ""))
    anchor = obj.get("billing_cycle_anchor")
    first_day = datetime.fromtimestamp(anchor, UTC).date() if isinstance(anchor, int) else None
    outcome = await subscription_state(
        account, billing, subscription, status, incoming.at, first_day, _monthly(obj)
    )
    return Effect(outcome, account.id)


def _monthly(subscription: dict[str, Any]) -> int | None:
    """What a subscription charges every month: its one item's price (keybin makes them so)."""
    items = _path(subscription, "items", "data")
    if not isinstance(items, list) or len(items) != 1:
        return None
    amount = _path(items[0], "price", "unit_amount")
    return amount if isinstance(amount, int) else None


# How far on in its life a subscription with this status is (the ended ones never come back).
_LIFE = {
    "incomplete": 0,
    "trialing": 1,
    "active": 1,
    "past_due": 2,
    "unpaid": 3,
    **dict.fromkeys(ENDED_STATUSES, 4),
}


async def subscription_state(
    account: Account,
    billing: BillingAccount,
    subscription: str,
    status: str,
    at: datetime,
    first_day: date | None = None,
    monthly_cents: int | None = None,
) -> str:
    """The subscription's state as Stripe's newest word about it (an event, or its answer
    to keybin cancelling it, as of `at`) says; an ended one never comes back, and an older
    event about another subscription does not replace it. `monthly_cents`: what it charges
    every month, when the word says. Inside the caller's transaction."""
    known_at = billing.subscription_changed_at
    older = known_at is not None and at < known_at
    if billing.subscription_id == subscription and at == known_at:
        # Stripe stamps events in whole seconds and does not order them: within one second,
        # a subscription only goes on in its life (incomplete, then active, then past due).
        now, before = _LIFE.get(status), _LIFE.get(billing.subscription_status or "")
        older = now is not None and before is not None and now < before
    if billing.subscription_id == subscription:
        if billing.subscription_status in ENDED_STATUSES:
            return "ignored: that subscription has ended"
        if older:
            return "ignored: older than what is known"
    elif (
        billing.subscription_id is not None
        and autopay_on(billing)
        and (older or status in ENDED_STATUSES)
    ):
        return "ignored: not the current subscription"
    was_on = autopay_on(billing)
    changes: dict[str, Any] = {
        "subscription_id": subscription,
        "subscription_status": status,
        "subscription_changed_at": at,
    }
    if monthly_cents is not None or billing.subscription_id != subscription:
        # Another subscription's amount is not this one's: unknown until Stripe says.
        changes["subscription_price_cents"] = monthly_cents
        billing.subscription_price_cents = monthly_cents
    if billing.subscription_id != subscription:
        changes["subscription_paused"] = billing.subscription_paused = False
    await BillingAccount.filter(id=billing.id).update(**changes)
    billing.subscription_id, billing.subscription_status = subscription, status
    billing.subscription_changed_at = at
    now_on = status in AUTOPAY_STATUSES
    if now_on and not was_on:
        await events.record(account, AccountEventKind.AUTOPAY_STARTED, subscription)
        await billing_notices.tell(account, billing_notices.autopay_started(first_day))
    elif was_on and not now_on:
        await events.record(account, AccountEventKind.AUTOPAY_ENDED, f"{subscription}: {status}")
        await billing_notices.tell(account, billing_notices.autopay_ended())
    return f"subscription {status}"


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": checkout_completed,
    "checkout.session.async_payment_succeeded": checkout_completed,
    "checkout.session.async_payment_failed": checkout_failed,
    "invoice.paid": invoice_paid,
    "invoice.payment_failed": invoice_failed,
    "payment_intent.payment_failed": payment_intent_failed,
    "charge.refunded": charge_refunded,
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_changed,
}
