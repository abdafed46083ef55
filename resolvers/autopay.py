"""Turning autopay off from the app: the agent's Stripe subscription is cancelled at once.

Stripe is called first, with no transaction open (a slow Stripe must not hold SQLite's one
connection); its answer is then recorded as the webhook would record it, so the
`customer.subscription.deleted` event that follows finds the subscription ended already and
changes nothing (one notice, not two)."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from core.errors import DomainError
from models.accounts import Account
from models.billing import BillingAccount
from models.enums import BillingState
from notify import outbox
from resolvers import stripe_api
from resolvers.billing import autopay_on, state_of
from resolvers.payments import OFF
from resolvers.stripe_webhooks import subscription_state
from settings import Settings

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
