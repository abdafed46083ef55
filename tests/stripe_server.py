"""Stripe on loopback: the parts of its API keybin calls (customers, Checkout sessions,
subscriptions), a Checkout page a payer pays with a test card, and webhooks signed exactly as
Stripe signs them (`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`), sent to keybin."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.live import eventually
from tests.smtp import free_port

SECRET_KEY = "sk_test_" + "k" * 24
WEBHOOK_SECRET = "whsec_" + "w" * 32
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"  # Stripe's test card that is always declined
_INDEX = re.compile(r"\[([^\]]*)\]")


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested objects and lists."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        head = key.split("[", 1)[0]
        path = [head, *_INDEX.findall(key)]
        node: Any = result
        for part, following in zip(path, path[1:], strict=False):
            container: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None:
                    node[index] = container
                node = node[index]
            else:
                node = node.setdefault(part, container)
        last = path[-1]
        if isinstance(node, list):
            index = int(last)
            while len(node) <= index:
                node.append(None)
            node[index] = value
        else:
            node[last] = value
    return result


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def _new(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


@dataclass
class Paid:
    """What paying one Checkout page made at Stripe, and the events it sends about it."""

    session: dict[str, Any]
    events: list[dict[str, Any]]
    payment_intent: str | None = None
    invoice: str | None = None
    subscription: dict[str, Any] | None = None
    charge: str | None = None


@dataclass
class StripeServer:
    secret_key: str = SECRET_KEY
    webhook_secret: str = WEBHOOK_SECRET
    webhook_url: str = ""  # keybin's /webhooks/stripe, set once keybin is served
    port: int = field(default_factory=free_port)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    refuse_next: int = 0  # answer this many API calls with 500, as an outage would
    paid: dict[str, Paid] = field(default_factory=dict)  # by session, once its page is paid
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The events cancelling a subscription makes (customer.subscription.deleted), not sent.
    cancellations: list[dict[str, Any]] = field(default_factory=list)
    # The events changing one makes (customer.subscription.updated), not sent.
    updates: list[dict[str, Any]] = field(default_factory=list)
    _idempotent: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/customers", self._create_customer, methods=["POST"]),
                Route("/v1/checkout/sessions", self._create_session, methods=["POST"]),
                Route("/v1/checkout/sessions/{id}", self._get_session, methods=["GET"]),
                Route("/v1/subscriptions/{id}", self._cancel_subscription, methods=["DELETE"]),
                Route("/v1/subscriptions/{id}", self._get_subscription, methods=["GET"]),
                Route("/v1/subscriptions/{id}", self._update_subscription, methods=["POST"]),
                Route("/pay/{id}", self._checkout_page, methods=["GET", "POST"]),
            ]
        )

    async def _authorized(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        body = parse_form((await request.body()).decode())
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append((request.method, request.url.path, body, headers))
        if headers.get("authorization") != f"Bearer {self.secret_key}":
            return body, _error(401, "Invalid API Key provided.", "invalid_request_error")
        if self.refuse_next > 0:
            self.refuse_next -= 1
            return body, _error(
                500, "An error occurred with our connection to Stripe.", "api_error"
            )
        return body, None

    def _replayed(self, request: Request) -> Response | None:
        """The answer already given to a request with this idempotency key, as Stripe does."""
        key = request.headers.get("idempotency-key")
        return JSONResponse(self._idempotent[key]) if key and key in self._idempotent else None

    def _remember(self, request: Request, answer: dict[str, Any]) -> None:
        key = request.headers.get("idempotency-key")
        if key:
            self._idempotent[key] = answer

    async def _create_customer(self, request: Request) -> Response:
        body, refused = await self._authorized(request)
        if refused is not None:
            return refused
        replayed = self._replayed(request)
        if replayed is not None:
            return replayed
        customer = {
            "id": _new("cus"),
            "object": "customer",
            "description": body.get("description"),
            "email": None,
            "metadata": body.get("metadata", {}),
        }
        self.customers[customer["id"]] = customer
        self._remember(request, customer)
        return JSONResponse(customer)

    async def _create_session(self, request: Request) -> Response:
        body, refused = await self._authorized(request)
        if refused is not None:
            return refused
        if body.get("customer") not in self.customers:
            return _error(400, f"No such customer: '{body.get('customer')}'")
        mode = body.get("mode")
        items = body.get("line_items") or []
        if mode not in {"payment", "subscription"} or not items:
            return _error(400, "mode and line_items are required")
        recurring = [i for i in items if "recurring" in i["price_data"]]
        if (mode == "subscription") != bool(recurring):
            return _error(400, "subscription mode needs exactly the recurring prices")
        anchor = (body.get("subscription_data") or {}).get("billing_cycle_anchor")
        if anchor is not None and int(anchor) <= time.time():
            return _error(400, "billing_cycle_anchor must be in the future")
        session_id = _new("cs")
        one_time = sum(int(i["price_data"]["unit_amount"]) for i in items if i not in recurring)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": mode,
            "url": f"{self.url}/pay/{session_id}",
            "customer": body["customer"],
            "client_reference_id": body.get("client_reference_id"),
            "metadata": body.get("metadata", {}),
            "line_items": items,
            "subscription_data": body.get("subscription_data"),
            "payment_intent_data": body.get("payment_intent_data"),
            # With the anchor later and no proration, only the one-time lines are due now.
            "amount_total": one_time,
            "currency": items[0]["price_data"]["currency"],
            "payment_status": "unpaid",
            "status": "open",
            "expires_at": int(time.time()) + 24 * 3600,
            "success_url": body.get("success_url"),
            "cancel_url": body.get("cancel_url"),
            "payment_intent": None,
            "invoice": None,
            "subscription": None,
        }
        self.sessions[session_id] = session
        return JSONResponse(session)

    async def _get_session(self, request: Request) -> Response:
        _, refused = await self._authorized(request)
        if refused is not None:
            return refused
        session = self.sessions.get(request.path_params["id"])
        return JSONResponse(session) if session else _error(404, "No such checkout.session")

    def _subscription(self, request: Request) -> dict[str, Any] | Response:
        """The subscription a path names, or Stripe's 404 for an unknown one."""
        subscription = self.subscriptions.get(request.path_params["id"])
        if subscription is None:
            return _error(404, f"No such subscription: '{request.path_params['id']}'")
        return subscription

    async def _cancel_subscription(self, request: Request) -> Response:
        """DELETE /v1/subscriptions/{id}: cancelled at once. Stripe answers an already
        cancelled one with an error unless the request repeats an idempotency key."""
        _, refused = await self._authorized(request)
        if refused is not None:
            return refused
        replayed = self._replayed(request)
        if replayed is not None:
            return replayed
        subscription = self._subscription(request)
        if isinstance(subscription, Response):
            return subscription
        if subscription["status"] == "canceled":
            return _error(400, "This subscription is already canceled.")
        subscription.update(status="canceled", canceled_at=int(time.time()))
        self.cancellations.append(self.event("customer.subscription.deleted", subscription))
        self._remember(request, subscription)
        return JSONResponse(subscription)

    async def _get_subscription(self, request: Request) -> Response:
        _, refused = await self._authorized(request)
        if refused is not None:
            return refused
        subscription = self._subscription(request)
        return subscription if isinstance(subscription, Response) else JSONResponse(subscription)

    async def _update_subscription(self, request: Request) -> Response:
        """POST /v1/subscriptions/{id} with `items` giving an item a new `price_data` (the
        item charges that from the next renewal), or `pause_collection` (what keybin changes;
        nothing else is)."""
        body, refused = await self._authorized(request)
        if refused is not None:
            return refused
        replayed = self._replayed(request)
        if replayed is not None:
            return replayed
        subscription = self._subscription(request)
        if isinstance(subscription, Response):
            return subscription
        if subscription["status"] == "canceled":
            return _error(400, "A canceled subscription can't be updated.")
        if "pause_collection" in body:  # "" unsets it, as Stripe's form encoding does
            subscription["pause_collection"] = body["pause_collection"] or None
        by_id = {item["id"]: item for item in subscription["items"]["data"]}
        for change in body.get("items") or []:
            item = by_id.get(change.get("id"))
            if item is None:
                return _error(400, f"No such subscription item: '{change.get('id')}'")
            data = change.get("price_data") or {}
            missing = {"currency", "product", "unit_amount"} - data.keys()
            if missing or (data.get("recurring") or {}).get("interval") != "month":
                return _error(400, "price_data needs currency, product, unit_amount, recurring")
            item["price"] = {
                "id": _new("price"),
                "object": "price",
                "currency": data["currency"],
                "product": data["product"],
                "recurring": {"interval": "month"},
                "unit_amount": int(data["unit_amount"]),
            }
        self.updates.append(self.event("customer.subscription.updated", subscription))
        self._remember(request, subscription)
        return JSONResponse(subscription)

    async def _checkout_page(self, request: Request) -> Response:
        """The payer's side: a page asking for a card; posting one pays (or is declined) and
        sends Stripe's events to keybin, signed."""
        session_id = request.path_params["id"]
        if session_id not in self.sessions:
            return HTMLResponse("<p>This payment page does not exist.</p>", status_code=404)
        if request.method == "GET":
            return HTMLResponse(f'<form method="post"><input name="card"></form>{session_id}')
        card = str((await request.form()).get("card", ""))
        paid = self.pay(session_id, card)
        self.paid[session_id] = paid
        for event in paid.events:
            await self.deliver(event)
        declined = card != GOOD_CARD
        return HTMLResponse(
            "declined" if declined else "paid", status_code=402 if declined else 200
        )

    def event(self, kind: str, obj: dict[str, Any], created: int | None = None) -> dict[str, Any]:
        return {
            "id": _new("evt"),
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()) if created is None else created,
            "livemode": False,
            "pending_webhooks": 1,
            "type": kind,
            "data": {"object": json.loads(json.dumps(obj))},
        }

    def pay(self, session_id: str, card: str) -> Paid:
        """The payer submits a card on the page: Stripe's objects and events, not yet sent."""
        session = self.sessions[session_id]
        customer = session["customer"]
        metadata = session["metadata"]
        if card != GOOD_CARD:
            intent = {
                "id": _new("pi"),
                "object": "payment_intent",
                "customer": customer,
                "amount": session["amount_total"],
                "metadata": (session.get("payment_intent_data") or {}).get("metadata", {}),
                "status": "requires_payment_method",
                "last_payment_error": {
                    "type": "card_error",
                    "code": "card_declined",
                    "message": "Your card was declined.",
                    "charge": _new("ch"),
                },
            }
            return Paid(session, [self.event("payment_intent.payment_failed", intent)])
        session.update(status="complete", payment_status="paid")
        charge = _new("ch")
        if session["mode"] == "payment":
            session["payment_intent"] = _new("pi")
            completed = self.event("checkout.session.completed", session)
            return Paid(
                session, [completed], payment_intent=session["payment_intent"], charge=charge
            )
        subscription = self.subscription(session)
        invoice = self.invoice(
            customer, subscription, session["amount_total"], "subscription_create", paid=True
        )
        session["subscription"] = subscription["id"]
        session["invoice"] = invoice["id"]
        events = [
            self.event("customer.subscription.created", subscription),
            self.event("invoice.paid", invoice),
            self.event("checkout.session.completed", session),
        ]
        del metadata  # the session's own, already in the events
        return Paid(
            session, events, invoice=invoice["id"], subscription=subscription, charge=charge
        )

    def subscription(self, session: dict[str, Any], status: str = "active") -> dict[str, Any]:
        data = session["subscription_data"] or {}
        recurring = next(i for i in session["line_items"] if "recurring" in i["price_data"])
        subscription = {
            "id": _new("sub"),
            "object": "subscription",
            "customer": session["customer"],
            "status": status,
            "metadata": data.get("metadata", {}),
            "billing_cycle_anchor": int(data["billing_cycle_anchor"]),
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": _new("si"),
                        "object": "subscription_item",
                        "price": {
                            "id": _new("price"),
                            "object": "price",
                            "currency": recurring["price_data"]["currency"],
                            # Checkout's product_data becomes a product of the subscription's.
                            "product": _new("prod"),
                            "recurring": {"interval": "month"},
                            "unit_amount": int(recurring["price_data"]["unit_amount"]),
                        },
                    }
                ],
            },
            "canceled_at": None,
            "pause_collection": None,
        }
        self.subscriptions[subscription["id"]] = subscription
        return subscription

    def invoice(
        self,
        customer: str,
        subscription: dict[str, Any] | None,
        amount: int,
        reason: str,
        paid: bool,
        period_start: int | None = None,
        attempt: int = 1,
    ) -> dict[str, Any]:
        """An invoice as the current API shapes it: the subscription under parent."""
        start = period_start if period_start is not None else int(time.time())
        parent = None
        if subscription is not None:
            parent = {
                "type": "subscription_details",
                "subscription_details": {
                    "subscription": subscription["id"],
                    "metadata": subscription["metadata"],
                },
            }
        return {
            "id": _new("in"),
            "object": "invoice",
            "customer": customer,
            "billing_reason": reason,
            "parent": parent,
            "amount_due": amount,
            "amount_paid": amount if paid else 0,
            "attempt_count": attempt,
            "status": "paid" if paid else "open",
            "metadata": {},
            "lines": {"data": [{"period": {"start": start, "end": start + 31 * 86400}}]},
        }

    def renewal(
        self, subscription: dict[str, Any], month_start: int, paid: bool = True, attempt: int = 1
    ) -> dict[str, Any]:
        """Autopay's monthly charge on the 1st: invoice.paid, or invoice.payment_failed."""
        amount = subscription["items"]["data"][0]["price"]["unit_amount"]
        invoice = self.invoice(
            subscription["customer"],
            subscription,
            amount,
            "subscription_cycle",
            paid,
            period_start=month_start,
            attempt=attempt,
        )
        return self.event("invoice.paid" if paid else "invoice.payment_failed", invoice)

    def refund(self, customer: str, charge: str, amount_refunded: int) -> dict[str, Any]:
        obj = {
            "id": charge,
            "object": "charge",
            "customer": customer,
            "amount_refunded": amount_refunded,
            "refunded": True,
            "metadata": {},
        }
        return self.event("charge.refunded", obj)

    async def deliver(
        self,
        event: dict[str, Any],
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        """POST the event to keybin as Stripe does; the keywords forge what an attacker could."""
        payload = body if body is not None else json.dumps(event).encode()
        headers = {"Content-Type": "application/json"}
        if signature != "":  # "": sent without the header at all
            headers["Stripe-Signature"] = signature or sign(
                payload, secret or self.webhook_secret, timestamp
            )
        async with httpx.AsyncClient() as client:
            return await client.post(self.webhook_url, content=payload, headers=headers)


@asynccontextmanager
async def stripe_on_loopback(server: StripeServer) -> AsyncIterator[StripeServer]:
    config = uvicorn.Config(
        server.app(), host="127.0.0.1", port=server.port, lifespan="off", log_level="warning"
    )
    runner = uvicorn.Server(config)
    task = asyncio.create_task(runner.serve())
    await eventually(lambda: runner.started)
    try:
        yield server
    finally:
        runner.should_exit = True
        await task


def billing_settings(server: StripeServer, **extra: Any) -> dict[str, Any]:
    """Settings overrides that turn billing on against this server."""
    return {
        "stripe_secret_key": server.secret_key,
        "stripe_webhook_secret": server.webhook_secret,
        "stripe_api_base": server.url,
        "billing_prices": (("*", 2500), ("Dayton REALTORS", 2200)),
        # The tests run billing's rounds themselves, when they mean to.
        "billing_round_seconds": 3600.0,
        **extra,
    }
