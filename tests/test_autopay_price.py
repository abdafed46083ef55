"""Autopay follows the association's price: when BILLING_PRICES changes, billing's round sets
each autopay subscription charging another amount to the new price at Stripe (loopback, a
real HTTP server), pauses one whose association has no price any more and resumes it when
a price comes back, and tells the agent, by message and mail; the next renewal bills the new
amount. What a second instance, an outage or another association's agent would meet."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models.accounts import Account
from models.billing import BillingAccount
from resolvers.billing import next_month, today
from resolvers.billing_schedule import run_round
from settings import Settings
from tests.factories import GraphQLClient
from tests.live import Live
from tests.smtp import SmtpServer
from tests.stripe_server import GOOD_CARD, StripeServer, billing_settings
from tests.test_billing import bill, billed_agent, pay_on_page, start, titles
from tests.test_billing_status import mail_to

CHANGED = "Your automatic monthly payment is now $30.00"


@pytest.fixture
def settings_overrides(stripe_server: StripeServer) -> dict[str, Any]:
    return billing_settings(stripe_server)


@pytest.fixture
async def stripe(stripe_server: StripeServer, live: Live) -> StripeServer:
    stripe_server.webhook_url = live.http_url.replace("/graphql", "/webhooks/stripe")
    return stripe_server


def priced(settings: Settings, everyone: int) -> Settings:
    """The same settings with the "*" price changed (Dayton REALTORS keeps its own)."""
    prices = tuple(
        (name, everyone if name == "*" else cents) for name, cents in settings.billing_prices
    )
    return settings.with_(billing_prices=prices)


async def with_autopay(
    gql: GraphQLClient, stripe: StripeServer, **fields: Any
) -> tuple[Account, str, dict[str, Any]]:
    """An agent who paid with "pay every month" ticked: the account, token and subscription."""
    agent = await billed_agent(**fields)
    token = await gql.sign_in(agent.email or "")
    started = await start(gql, token, autopay=True)
    await pay_on_page(started["checkoutUrl"], GOOD_CARD)
    [subscription] = [
        paid.subscription
        for paid in stripe.paid.values()
        if paid.subscription
        and paid.subscription["customer"] == paid.session["customer"]
        and paid.session["client_reference_id"] == str(agent.id)
    ]
    return agent, token, subscription


def subscription_calls(stripe: StripeServer, method: str) -> list[dict[str, Any]]:
    return [
        body
        for sent, path, body, _ in stripe.requests
        if sent == method and path.startswith("/v1/subscriptions/")
    ]


def monthly(subscription: dict[str, Any]) -> int:
    amount: int = subscription["items"]["data"][0]["price"]["unit_amount"]
    return amount


async def stored_price(agent: Account) -> int | None:
    billing = await BillingAccount.get(account_id=agent.id)
    return billing.subscription_price_cents


async def test_a_new_price_reaches_autopay_at_stripe_and_the_agent_is_told(
    live_gql: GraphQLClient, stripe: StripeServer, app_settings: Settings, smtp: SmtpServer
) -> None:
    # given an agent paying $25.00 every month (what Stripe's event said is kept)
    agent, token, subscription = await with_autopay(live_gql, stripe)
    assert await stored_price(agent) == monthly(subscription) == 2500
    [item] = subscription["items"]["data"]
    product = item["price"]["product"]
    # and a round with the price unchanged asks Stripe nothing
    assert (await run_round(app_settings)).repriced == 0
    assert subscription_calls(stripe, "GET") == subscription_calls(stripe, "POST") == []
    # when the price becomes $30.00 and billing's round runs
    raised = priced(app_settings, 3000)
    assert (await run_round(raised)).repriced == 1
    # then the subscription's item charges $30.00 a month for the same product, from the
    # next renewal (nothing prorated)
    [update] = subscription_calls(stripe, "POST")
    assert update["proration_behavior"] == "none"
    [changed] = update["items"]
    assert changed["id"] == item["id"]
    assert changed["price_data"] == {
        "currency": "usd",
        "product": product,
        "recurring": {"interval": "month"},
        "unit_amount": "3000",
    }
    assert monthly(stripe.subscriptions[subscription["id"]]) == 3000
    assert await stored_price(agent) == 3000
    # and the agent reads it in the app and in a mail, once
    assert (await titles(live_gql, token)).count(CHANGED) == 1
    body = await mail_to(smtp, agent.email or "", CHANGED)
    assert "now $30.00 a month (it was $25.00)" in body
    assert "turn off automatic payment in the app" in body
    # when the round runs again, and Stripe's own event about the change arrives
    assert (await run_round(raised)).repriced == 0
    [updated] = stripe.updates
    assert (await stripe.deliver(updated)).status_code == 200
    # then nothing more happens: one change at Stripe, one notice, the price kept
    assert len(subscription_calls(stripe, "POST")) == 1
    assert (await titles(live_gql, token)).count(CHANGED) == 1
    assert await stored_price(agent) == 3000
    # and the next renewal bills the new amount
    first_day = next_month(today())
    anchor = subscription["billing_cycle_anchor"]
    renewal = stripe.renewal(stripe.subscriptions[subscription["id"]], month_start=anchor)
    assert (await stripe.deliver(renewal)).status_code == 200
    newest = (await bill(live_gql, token))["invoices"]["edges"][0]["node"]
    assert (newest["periodStart"], newest["amount"], newest["paid"]) == (
        first_day.isoformat(),
        3000,
        True,
    )


async def test_only_the_agents_whose_price_changed_are_repriced(
    live_gql: GraphQLClient, stripe: StripeServer, app_settings: Settings
) -> None:
    # given two agents paying every month, one of an association with a price of its own
    agent, token, subscription = await with_autopay(live_gql, stripe)
    dayton, dayton_token, dayton_subscription = await with_autopay(
        live_gql, stripe, association="Dayton REALTORS"
    )
    assert monthly(dayton_subscription) == 2200
    # when only the "*" price changes
    assert (await run_round(priced(app_settings, 3000))).repriced == 1
    # then only the first agent's subscription changed, and only that agent was told
    assert monthly(stripe.subscriptions[subscription["id"]]) == 3000
    assert monthly(stripe.subscriptions[dayton_subscription["id"]]) == 2200
    assert len(subscription_calls(stripe, "POST")) == 1
    assert CHANGED in await titles(live_gql, token)
    assert not [t for t in await titles(live_gql, dayton_token) if "monthly payment is now" in t]
    assert await stored_price(dayton) == 2200


async def test_stripe_not_answering_keeps_the_old_amount_until_it_does(
    live_gql: GraphQLClient, stripe: StripeServer, app_settings: Settings
) -> None:
    # given an agent paying every month, a new price, and Stripe failing every call for now
    agent, token, subscription = await with_autopay(live_gql, stripe)
    raised = priced(app_settings, 3000)
    stripe.refuse_next = 10
    # when billing's round runs
    assert (await run_round(raised)).repriced == 0
    # then nothing changed, here or at Stripe, and the agent was told nothing
    assert await stored_price(agent) == 2500
    assert monthly(stripe.subscriptions[subscription["id"]]) == 2500
    assert CHANGED not in await titles(live_gql, token)
    # and once Stripe answers, the next round does it
    stripe.refuse_next = 0
    assert (await run_round(raised)).repriced == 1
    assert monthly(stripe.subscriptions[subscription["id"]]) == 3000
    assert (await titles(live_gql, token)).count(CHANGED) == 1


async def test_two_rounds_at_once_change_it_once_and_tell_once(
    live_gql: GraphQLClient, stripe: StripeServer, app_settings: Settings
) -> None:
    # given an agent paying every month and a new price
    agent, token, subscription = await with_autopay(live_gql, stripe)
    raised = priced(app_settings, 3000)
    # when two instances run billing's round at the same moment
    first, second = await asyncio.gather(run_round(raised), run_round(raised))
    # then the subscription changed once at Stripe and the agent was told once
    assert first.repriced + second.repriced == 1
    assert len(stripe.updates) == 1
    assert monthly(stripe.subscriptions[subscription["id"]]) == 3000
    assert (await titles(live_gql, token)).count(CHANGED) == 1
    assert await stored_price(agent) == 3000


async def test_an_amount_not_known_yet_is_read_from_stripe_once(
    live_gql: GraphQLClient, stripe: StripeServer, app_settings: Settings
) -> None:
    # given a subscription whose amount keybin does not know (one started before it kept it)
    agent, token, subscription = await with_autopay(live_gql, stripe)
    await BillingAccount.filter(account_id=agent.id).update(subscription_price_cents=None)
    # when billing's round runs with the price unchanged
    assert (await run_round(app_settings)).repriced == 0
    # then Stripe was read, not changed; the amount is kept and the agent told nothing
    assert len(subscription_calls(stripe, "GET")) == 1
    assert subscription_calls(stripe, "POST") == []
    assert await stored_price(agent) == 2500
    assert not [t for t in await titles(live_gql, token) if "monthly payment is now" in t]
    # and the next round asks Stripe nothing
    assert (await run_round(app_settings)).repriced == 0
    assert len(subscription_calls(stripe, "GET")) == 1


async def test_a_stopped_autopay_is_not_repriced(
    live_gql: GraphQLClient, stripe: StripeServer, app_settings: Settings
) -> None:
    # given an agent who stopped paying every month
    agent, token, subscription = await with_autopay(live_gql, stripe)
    stopped = await live_gql("mutation { stopAutopay { userErrors { code } } }", token=token)
    assert stopped["stopAutopay"]["userErrors"] == []
    # when the price changes
    assert (await run_round(priced(app_settings, 3000))).repriced == 0
    # then the cancelled subscription is left alone
    assert subscription_calls(stripe, "POST") == []
    assert CHANGED not in await titles(live_gql, token)
    del agent


async def test_autopay_ended_at_stripe_with_its_event_lost_is_ended_here_and_told(
    live_gql: GraphQLClient, stripe: StripeServer, app_settings: Settings, smtp: SmtpServer
) -> None:
    # given an agent paying every month whose subscription was cancelled at Stripe (in its
    # dashboard), the webhook telling keybin lost, and then a new price
    agent, token, subscription = await with_autopay(live_gql, stripe)
    stripe.subscriptions[subscription["id"]].update(status="canceled", canceled_at=1)
    assert (await bill(live_gql, token))["autopay"] is True
    # when billing's round runs
    assert (await run_round(priced(app_settings, 3000))).repriced == 1
    # then the ended subscription was read, not changed, and autopay is off here too
    assert subscription_calls(stripe, "POST") == []
    assert (await bill(live_gql, token))["autopay"] is False
    billing = await BillingAccount.get(account_id=agent.id)
    assert billing.subscription_status == "canceled"
    # and the agent was told the bills are theirs to pay again, by message and mail
    stopped = "Automatic monthly payment has stopped"
    assert (await titles(live_gql, token)).count(stopped) == 1
    assert "Your bills will appear in the app each month" in await mail_to(
        smtp, agent.email or "", stopped
    )
    assert CHANGED not in await titles(live_gql, token)
    # and the next round asks Stripe nothing more
    reads = len(subscription_calls(stripe, "GET"))
    assert (await run_round(priced(app_settings, 3000))).repriced == 0
    assert len(subscription_calls(stripe, "GET")) == reads


PAUSED = "Automatic monthly payment is paused"


def unpriced(settings: Settings) -> Settings:
    """Only Dayton REALTORS keeps a price: every other association has none."""
    return settings.with_(
        billing_prices=tuple((n, c) for n, c in settings.billing_prices if n != "*")
    )


async def test_an_association_left_without_a_price_pauses_autopay_until_one_comes_back(
    live_gql: GraphQLClient, stripe: StripeServer, app_settings: Settings, smtp: SmtpServer
) -> None:
    # given an agent paying $25.00 every month, and another of Dayton REALTORS
    agent, token, subscription = await with_autopay(live_gql, stripe)
    dayton, dayton_token, dayton_subscription = await with_autopay(
        live_gql, stripe, association="Dayton REALTORS"
    )
    at_stripe = stripe.subscriptions[subscription["id"]]
    # when the first agent's association is left without a price
    assert (await run_round(unpriced(app_settings))).repriced == 1
    # then Stripe charges that subscription nothing (its invoices voided), and the agent
    # reads why, in the app and in a mail; the Dayton agent's is untouched
    assert at_stripe["pause_collection"] == {"behavior": "void"}
    assert monthly(at_stripe) == 2500
    assert stripe.subscriptions[dayton_subscription["id"]]["pause_collection"] is None
    assert (await titles(live_gql, token)).count(PAUSED) == 1
    body = await mail_to(smtp, agent.email or "", PAUSED)
    assert "no key subscription price at the moment, so nothing is charged" in body
    assert PAUSED not in await titles(live_gql, dayton_token)
    # and another round changes nothing more
    calls = len(stripe.requests)
    assert (await run_round(unpriced(app_settings))).repriced == 0
    assert len([r for r in stripe.requests[calls:] if r[0] == "POST"]) == 0
    # when a price comes back, another than before
    assert (await run_round(priced(app_settings, 3000))).repriced == 1
    # then the subscription charges again, the new price, and the agent is told once
    assert at_stripe["pause_collection"] is None
    assert monthly(at_stripe) == 3000
    resumed = "Automatic monthly payment resumes at $30.00"
    assert (await titles(live_gql, token)).count(resumed) == 1
    assert CHANGED not in await titles(live_gql, token)
    billing = await BillingAccount.get(account_id=agent.id)
    assert (billing.subscription_paused, billing.subscription_price_cents) == (False, 3000)
    del dayton


async def test_a_paused_autopay_can_still_be_stopped(
    live_gql: GraphQLClient, stripe: StripeServer, app_settings: Settings
) -> None:
    # given an agent whose autopay was paused for want of a price
    agent, token, subscription = await with_autopay(live_gql, stripe)
    assert (await run_round(unpriced(app_settings))).repriced == 1
    # when the agent stops it in the app
    stopped = await live_gql("mutation { stopAutopay { userErrors { code } } }", token=token)
    # then it is cancelled at Stripe, and a price coming back does not start it again
    assert stopped["stopAutopay"]["userErrors"] == []
    assert stripe.subscriptions[subscription["id"]]["status"] == "canceled"
    assert (await run_round(app_settings)).repriced == 0
    assert stripe.subscriptions[subscription["id"]]["pause_collection"] == {"behavior": "void"}
    assert not [
        t
        for t in await titles(live_gql, token)
        if t.startswith("Automatic monthly payment resumes")
    ]
    del agent
