"""Turning autopay off from the app (`stopAutopay`), against Stripe on loopback and a real
keybin server: the subscription is cancelled at Stripe, the bill says so at once, Stripe's
own event about it changes nothing more; and what an attacker or a double tap would try."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models.billing import BillingAccount
from tests.factories import GraphQLClient, make_contractor
from tests.live import Live
from tests.rows import table_counts
from tests.smtp import SmtpServer
from tests.stripe_server import GOOD_CARD, StripeServer, billing_settings
from tests.test_billing import bill, billed_agent, pay_on_page, start, titles
from tests.test_billing_status import mail_to

STOP = """
mutation { stopAutopay {
  billing { autopay balance }
  userErrors { code field message }
} }
"""


@pytest.fixture
def settings_overrides(stripe_server: StripeServer) -> dict[str, Any]:
    return billing_settings(stripe_server)


@pytest.fixture
async def stripe(stripe_server: StripeServer, live: Live) -> StripeServer:
    stripe_server.webhook_url = live.http_url.replace("/graphql", "/webhooks/stripe")
    return stripe_server


async def with_autopay(gql: GraphQLClient, stripe: StripeServer) -> tuple[str, dict[str, Any]]:
    """An agent who paid with "pay every month" ticked: the token and Stripe's subscription."""
    agent = await billed_agent()
    token = await gql.sign_in(agent.email or "")
    started = await start(gql, token, autopay=True)
    await pay_on_page(started["checkoutUrl"], GOOD_CARD)
    [paid] = stripe.paid.values()
    assert paid.subscription is not None and (await bill(gql, token))["autopay"] is True
    return token, paid.subscription


def cancels(stripe: StripeServer) -> list[str]:
    return [path for method, path, _, _ in stripe.requests if method == "DELETE"]


async def test_stopping_autopay_cancels_the_subscription_and_says_so_once(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given an agent paying every month
    token, subscription = await with_autopay(live_gql, stripe)
    # when the agent stops it in the app
    payload = (await live_gql(STOP, token=token))["stopAutopay"]
    # then Stripe's subscription is cancelled and the bill says autopay is off, at once
    assert payload == {"billing": {"autopay": False, "balance": 0}, "userErrors": []}
    assert cancels(stripe) == [f"/v1/subscriptions/{subscription['id']}"]
    assert stripe.subscriptions[subscription["id"]]["status"] == "canceled"
    stopped = "Automatic monthly payment has stopped"
    assert (await titles(live_gql, token)).count(stopped) == 1
    # and Stripe's own event about it, when it comes, changes nothing (one notice, not two)
    [deleted] = stripe.cancellations
    assert (await stripe.deliver(deleted)).status_code == 200
    assert (await titles(live_gql, token)).count(stopped) == 1
    assert (await bill(live_gql, token))["autopay"] is False
    # and a second tap is told there is nothing to stop, without calling Stripe again
    again = (await live_gql(STOP, token=token))["stopAutopay"]
    assert again["billing"] is None and again["userErrors"][0]["code"] == "AUTOPAY_OFF"
    assert len(cancels(stripe)) == 1


async def test_two_taps_at_once_cancel_once_and_tell_once(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    token, subscription = await with_autopay(live_gql, stripe)
    # when the agent taps twice at once
    first, second = await asyncio.gather(live_gql(STOP, token=token), live_gql(STOP, token=token))
    # then autopay is off, for both answers that did it, and it was told once
    outcomes = [first["stopAutopay"], second["stopAutopay"]]
    assert all(
        o["userErrors"] == [] or o["userErrors"][0]["code"] == "AUTOPAY_OFF" for o in outcomes
    )
    assert any(o["userErrors"] == [] for o in outcomes)
    assert stripe.subscriptions[subscription["id"]]["status"] == "canceled"
    assert (await bill(live_gql, token))["autopay"] is False
    titles_now = await titles(live_gql, token)
    assert titles_now.count("Automatic monthly payment has stopped") == 1


async def test_without_autopay_there_is_nothing_to_stop(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    payload = (await live_gql(STOP, token=token))["stopAutopay"]
    assert payload["billing"] is None
    assert payload["userErrors"][0]["code"] == "AUTOPAY_OFF"
    assert cancels(stripe) == []


async def test_stripe_not_answering_leaves_autopay_on(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given an agent paying every month, and Stripe failing every call for now
    token, subscription = await with_autopay(live_gql, stripe)
    stripe.refuse_next = 10
    before = await table_counts()
    # when the agent tries to stop it
    payload = (await live_gql(STOP, token=token))["stopAutopay"]
    # then the agent is told to try later, and nothing changed here or at Stripe
    assert payload["userErrors"][0]["code"] == "PAYMENT_UNAVAILABLE"
    assert await table_counts() == before
    assert stripe.subscriptions[subscription["id"]]["status"] == "active"
    stripe.refuse_next = 0
    assert (await bill(live_gql, token))["autopay"] is True


async def test_only_a_signed_in_agent_stops_only_their_own(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given an agent paying every month, and another signed-in agent and a contractor
    token, subscription = await with_autopay(live_gql, stripe)
    other = await billed_agent()
    other_token = await live_gql.sign_in(other.email or "")
    contractor = await make_contractor()
    contractor_token = await live_gql.sign_in(contractor.email or "")
    # when each of them, and someone not signed in, asks to stop autopay
    theirs = (await live_gql(STOP, token=other_token))["stopAutopay"]
    anonymous = await live_gql.raw(STOP)
    by_contractor = await live_gql.raw(STOP, token=contractor_token)
    # then the other agent has none to stop (the call names no account: only one's own),
    # the others are refused, and the first agent's autopay is untouched
    assert theirs["userErrors"][0]["code"] == "AUTOPAY_OFF"
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert by_contractor["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert cancels(stripe) == []
    assert stripe.subscriptions[subscription["id"]]["status"] == "active"
    assert (await bill(live_gql, token))["autopay"] is True


async def test_a_signed_out_token_cannot_stop_autopay(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    token, subscription = await with_autopay(live_gql, stripe)
    await live_gql("mutation { signOut { userErrors { code } } }", token=token)
    copied = await live_gql.raw(STOP, token=token)
    assert copied["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert cancels(stripe) == []
    assert await BillingAccount.filter(subscription_status="active").count() == 1
    assert stripe.subscriptions[subscription["id"]]["status"] == "active"


async def test_the_agent_reads_that_autopay_stopped_in_their_mail(
    live_gql: GraphQLClient, stripe: StripeServer, smtp: SmtpServer
) -> None:
    # given an agent paying every month
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    started = await start(live_gql, token, autopay=True)
    await pay_on_page(started["checkoutUrl"], GOOD_CARD)
    # when the agent stops it in the app
    assert (await live_gql(STOP, token=token))["stopAutopay"]["userErrors"] == []
    # then a mail tells them, in words, what happens to their bills now and how to pay
    body = await mail_to(smtp, agent.email or "", "Automatic monthly payment has stopped")
    assert "no longer paid automatically" in body
    assert "Pay in the app, or call support with your 9-digit Key ID." in body
