"""Stripe's API through its official library: an agent's customer, Checkout pages, ending
autopay, and keeping autopay's monthly amount at the association's price.

Calls are made with no database transaction open (a slow Stripe must not hold SQLite's one
connection); the library retries with an idempotency key of its own, and a customer's key is
the account's, so two payments started at once make one customer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import stripe

from core import clock
from core.errors import DomainError
from resolvers.billing import ENDED_STATUSES
from settings import Settings

log = logging.getLogger("keybin.stripe")

# Seconds for one call to Stripe (connecting included); the library retries twice.
TIMEOUT = 20.0
RETRIES = 2
# The metadata key naming the keybin account on every object keybin makes at Stripe.
ACCOUNT_KEY = "keybin_account"
UNAVAILABLE = "Payments cannot be taken right now. Please try again in a few minutes."


@dataclass(frozen=True)
class Checkout:
    id: str
    url: str
    expires_at: datetime


class _Httpx(stripe.HTTPXClient):
    """The library's httpx client, handing the form body over as `content`: it passes text
    as `data`, which httpx deprecates (a warning at every call)."""

    def _get_request_args_kwargs(  # type: ignore[no-untyped-def]
        self, method: str, url: str, headers: Any, post_data: Any
    ):
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        kwargs["content"] = kwargs.pop("data", None) or None
        return args, kwargs


@asynccontextmanager
async def _client(settings: Settings) -> AsyncIterator[stripe.StripeClient]:
    # httpx's async client, made and closed per use: the event loop of a request owns it.
    http = _Httpx(timeout=TIMEOUT)
    try:
        yield stripe.StripeClient(
            settings.stripe_secret_key,
            base_addresses={"api": settings.stripe_api_base},
            http_client=http,
            max_network_retries=RETRIES,
        )
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]


def _refused(error: stripe.StripeError) -> DomainError:
    log.warning("Stripe refused or did not answer: %s", error)
    return DomainError("PAYMENT_UNAVAILABLE", UNAVAILABLE)


async def create_customer(settings: Settings, account_id: int, key_id: str) -> str:
    """A Stripe customer for the agent, named by account and Key ID only (no email, no
    phone: Checkout asks the payer for what a receipt needs)."""
    try:
        async with _client(settings) as client:
            customer = await client.v1.customers.create_async(
                params={
                    "description": f"Key ID {key_id}",
                    "metadata": {ACCOUNT_KEY: str(account_id), "key_id": key_id},
                },
                options={"idempotency_key": f"keybin-customer-{account_id}"},
            )
    except stripe.StripeError as error:
        raise _refused(error) from error
    return str(customer.id)


def _line(settings: Settings, name: str, cents: int, monthly: bool) -> dict[str, Any]:
    price: dict[str, Any] = {
        "currency": settings.billing_currency,
        "unit_amount": cents,
        "product_data": {"name": name},
    }
    if monthly:
        price["recurring"] = {"interval": "month"}
    return {"quantity": 1, "price_data": price}


def _midnight(day: date) -> int:
    return int(datetime.combine(day, time(), tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class CheckoutRequest:
    account_id: int
    customer_id: str
    balance_cents: int
    # Autopay: the monthly price, and the first day Stripe bills it (the month after the
    # last one keybin has billed; the balance is paid now, with the card being saved).
    monthly_cents: int | None
    first_autopay_day: date | None


async def create_checkout(settings: Settings, request: CheckoutRequest) -> Checkout:
    metadata = {ACCOUNT_KEY: str(request.account_id)}
    lines = []
    if request.balance_cents > 0:
        lines.append(_line(settings, "Key subscription: balance due", request.balance_cents, False))
    params: dict[str, Any] = {
        "customer": request.customer_id,
        "client_reference_id": str(request.account_id),
        "metadata": metadata,
        "success_url": f"{settings.public_url}/billing/return?outcome=paid",
        "cancel_url": f"{settings.public_url}/billing/return?outcome=cancelled",
    }
    if request.monthly_cents is not None and request.first_autopay_day is not None:
        lines.append(_line(settings, "Key subscription, every month", request.monthly_cents, True))
        params["mode"] = "subscription"
        params["subscription_data"] = {
            "metadata": metadata,
            # Every month on the first, starting with the first month not yet billed.
            "billing_cycle_anchor": _midnight(request.first_autopay_day),
            "proration_behavior": "none",
        }
    else:
        params["mode"] = "payment"
        params["payment_intent_data"] = {"metadata": metadata}
    params["line_items"] = lines
    try:
        async with _client(settings) as client:
            session = await client.v1.checkout.sessions.create_async(params=params)  # type: ignore[arg-type]
    except stripe.StripeError as error:
        raise _refused(error) from error
    if not session.url:
        raise DomainError("PAYMENT_UNAVAILABLE", UNAVAILABLE)
    return Checkout(
        id=str(session.id),
        url=str(session.url),
        expires_at=datetime.fromtimestamp(int(session.expires_at), UTC),
    )


@dataclass(frozen=True)
class Cancelled:
    status: str
    at: datetime  # Stripe's time of the cancellation


async def cancel_subscription(settings: Settings, subscription_id: str) -> Cancelled:
    """End a subscription at once: Stripe charges it no more. Cancelling one already
    cancelled answers the same (one idempotency key per subscription)."""
    try:
        async with _client(settings) as client:
            cancelled = await client.v1.subscriptions.cancel_async(
                subscription_id, options={"idempotency_key": f"keybin-cancel-{subscription_id}"}
            )
    except stripe.StripeError as error:
        raise _refused(error) from error
    when = cancelled.canceled_at
    at = datetime.fromtimestamp(int(when), UTC) if when else clock.now()
    return Cancelled(status=str(cancelled.status), at=at)


@dataclass(frozen=True)
class Charging:
    """What an autopay subscription charges every month, as Stripe said before keybin
    changed it, and whether its charging was paused; or that it has ended (`ended`: its
    status), which keybin was not told (a webhook missed) and so did not change."""

    monthly_cents: int
    paused: bool
    ended: str | None = None


async def keep_subscription_at(
    settings: Settings, subscription_id: str, cents: int | None
) -> Charging:
    """Bring the subscription to charging `cents` every month from its next renewal on, or
    to charging nothing (None: its collection paused, every invoice voided) until a price
    comes back. A new price is a new monthly price of the same product for its one item,
    nothing prorated (the month under way was billed at the old price); what is right
    already is only read, and one that has ended is left as it is. Returns what it was."""
    try:
        async with _client(settings) as client:
            subscription = await client.v1.subscriptions.retrieve_async(subscription_id)
            item = subscription["items"].data[0]
            was = Charging(int(item.price.unit_amount or 0), bool(subscription.pause_collection))
            if (status := str(subscription.status)) in ENDED_STATUSES:
                return Charging(was.monthly_cents, was.paused, ended=status)
            if cents is not None and was.monthly_cents != cents:
                price_data: Any = {
                    "currency": settings.billing_currency,
                    "product": str(item.price.product),
                    "recurring": {"interval": "month"},
                    "unit_amount": cents,
                }
                # Keyed by the price it replaces: two rounds at once make one new price, and
                # a later change back and forth is a new request (each makes a new price).
                await client.v1.subscriptions.update_async(
                    subscription_id,
                    params={
                        "items": [{"id": item.id, "price_data": price_data}],
                        "proration_behavior": "none",
                    },
                    options={"idempotency_key": f"keybin-price-{item.price.id}-{cents}"},
                )
            if was.paused == (cents is not None):
                # Pausing or resuming twice ends the same: the library's own key is enough.
                pause: Any = {"behavior": "void"} if cents is None else ""
                await client.v1.subscriptions.update_async(
                    subscription_id, params={"pause_collection": pause}
                )
    except stripe.StripeError as error:
        raise _refused(error) from error
    return was


def verified_event(settings: Settings, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event Stripe signed, as plain data; raises stripe.SignatureVerificationError for a
    missing, wrong or stale signature (older than the library's five minutes, or as far in
    the future) and ValueError for a body that is not an event."""
    text = payload.decode("utf-8")
    event = stripe.Webhook.construct_event(
        text, signature, settings.stripe_webhook_secret, api_key=settings.stripe_secret_key
    )
    # The library bounds a signature's age only one way: one dated ahead would be good for
    # as long as it is ahead, a recording replayable all that time. Real time (not the
    # clock tests move), as the library's own check reads it.
    latest = datetime.now(UTC).timestamp() + stripe.Webhook.DEFAULT_TOLERANCE
    if _signed_at(signature or "") > latest:
        error = stripe.SignatureVerificationError  # the library's class has no annotations
        raise error("Timestamp in the future", signature, text)  # type: ignore[no-untyped-call]
    data: dict[str, Any] = event.to_dict()
    return data


def _signed_at(header: str) -> int:
    """The time a verified Stripe-Signature header gives (its first `t=`, as the library
    reads it)."""
    for part in header.split(","):
        name, _, value = part.partition("=")
        if name.strip() == "t":
            return int(value)
    return 0
