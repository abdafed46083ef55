"""Stripe's webhooks (`POST /webhooks/stripe`) and the page its Checkout returns to.

Only an event Stripe signed is read: the library checks the `Stripe-Signature` header (an
HMAC-SHA256 of the timestamp and the body under the endpoint's secret, at most five minutes
old) before anything is parsed; anything else is refused with 400 and changes nothing."""

from __future__ import annotations

import logging

import stripe
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from resolvers import stripe_api
from resolvers.stripe_webhooks import Busy, handle
from web.reset import HEADERS, templates

log = logging.getLogger("keybin.stripe")

# Stripe's events are a few kilobytes; anything far larger is not one.
MAX_BODY = 512 * 1024


async def stripe_webhook(request: Request) -> Response:
    settings = request.app.state.settings
    if not settings.billing_configured:
        return JSONResponse({"error": "billing is off"}, status_code=404)
    body = await _body(request)
    if body is None:
        return JSONResponse({"error": "too large"}, status_code=413)
    try:
        event = stripe_api.verified_event(settings, body, request.headers.get("stripe-signature"))
    except stripe.SignatureVerificationError as error:
        log.warning("Stripe webhook refused: %s", error.user_message or error)
        return JSONResponse({"error": "bad signature"}, status_code=400)
    except (ValueError, UnicodeDecodeError):
        return JSONResponse({"error": "not an event"}, status_code=400)
    try:
        outcome = await handle(settings, event)
    except ValueError:
        return JSONResponse({"error": "not an event"}, status_code=400)
    except Busy:
        # Stripe sends it again later; by then the other event's payment is there.
        return JSONResponse({"error": "busy, send again"}, status_code=409)
    return JSONResponse({"received": True, "outcome": outcome})


async def _body(request: Request) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def checkout_return(request: Request) -> Response:
    """Where Stripe's page sends the payer back: the webhook, not this page, records money."""
    paid = request.query_params.get("outcome") == "paid"
    return templates.TemplateResponse(
        request, "billing_return.html", {"paid": paid}, headers=HEADERS
    )
