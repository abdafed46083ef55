"""Paying the key subscription: a Stripe Checkout page for the signed-in agent's balance,
and turning its automatic monthly payment off."""

from __future__ import annotations

from datetime import datetime

import strawberry

from core.errors import DomainError
from models.enums import AccountKind
from resolvers.autopay import stop_autopay
from resolvers.payments import start_payment
from schema.billing import Billing, agent_billing
from schema.context import Info
from schema.errors import UserError, forbidden, user_errors


@strawberry.input
class StartPaymentInput:
    autopay: bool = strawberry.field(
        default=False,
        description="Pay every month: Stripe saves the card and charges the monthly price on "
        "the 1st, from the first month not yet billed.",
    )


@strawberry.type
class StartPaymentPayload:
    checkout_url: str | None = strawberry.field(
        default=None, description="Stripe's payment page: open it in the browser."
    )
    amount: int | None = strawberry.field(
        default=None, description="What the page charges now, in cents of the bill's currency."
    )
    expires_at: datetime | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class StopAutopayPayload:
    billing: Billing | None = strawberry.field(
        default=None, description="The bill once autopay is off."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class BillingMutation:
    @strawberry.mutation(
        description="A payment page for the signed-in agent's whole balance (never anyone "
        "else's), optionally setting up the automatic monthly payment."
    )
    async def start_payment(self, info: Info, input: StartPaymentInput) -> StartPaymentPayload:
        account = info.context.require_account()
        if account.kind != AccountKind.AGENT:
            raise forbidden()
        try:
            # Each page is a call to Stripe: counted like the other per-account attempts.
            await info.context.rate_limit("startPayment", account=str(account.id))
            started = await start_payment(info.context.settings, account, input.autopay)
        except DomainError as error:
            return StartPaymentPayload(user_errors=user_errors(error))
        return StartPaymentPayload(
            checkout_url=started.url, amount=started.amount_cents, expires_at=started.expires_at
        )

    @strawberry.mutation(
        description="Stop paying the signed-in agent's key subscription automatically: the "
        "saved card is charged no more (Stripe's subscription is cancelled at once). What is "
        "owed stays owed; later bills are paid in the app."
    )
    async def stop_autopay(self, info: Info) -> StopAutopayPayload:
        account = info.context.require_account()
        if account.kind != AccountKind.AGENT:
            raise forbidden()
        try:
            # A call to Stripe: counted like the other per-account attempts.
            await info.context.rate_limit("stopAutopay", account=str(account.id))
            await stop_autopay(info.context.settings, account)
        except DomainError as error:
            return StopAutopayPayload(user_errors=user_errors(error))
        return StopAutopayPayload(billing=await agent_billing(info, account.id))
