"""Billing against Stripe on loopback (tests/stripe_server.py) and a real keybin server: the
bill, paying through Checkout (once, or every month), and Stripe's signed webhooks as they
come, replayed, forged, stale, out of order or twice at once; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from models.accounts import Account
from models.billing import BillingAccount, Invoice, Payment, StripeEvent
from models.enums import AccountKind
from resolvers.billing import next_month, today
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
)
from tests.live import Live
from tests.rows import rows_mentioning, table_counts
from tests.stripe_server import (
    DECLINED_CARD,
    GOOD_CARD,
    StripeServer,
    billing_settings,
    sign,
)

BILLING = """
{ me { ... on Agent { billing {
  state message currency monthlyPrice balance dueOn autopay
  invoices { totalCount edges { node { periodStart periodEnd amount dueOn paid } } }
  payments { totalCount edges { node { kind method amount currency reason } } }
} } } }
"""
START = """
mutation($autopay: Boolean!) {
  startPayment(input: {autopay: $autopay}) {
    checkoutUrl amount expiresAt userErrors { code field message }
  }
}
"""
MESSAGES = "{ me { messages(first: 10) { edges { node { kind title body } } } } }"


@pytest.fixture
def settings_overrides(stripe_server: StripeServer) -> dict[str, Any]:
    return billing_settings(stripe_server)


@pytest.fixture
async def stripe(stripe_server: StripeServer, live: Live) -> AsyncIterator[StripeServer]:
    """Stripe on loopback, sending its webhooks to the keybin server under test."""
    stripe_server.webhook_url = live.http_url.replace("/graphql", "/webhooks/stripe")
    yield stripe_server


async def billed_agent(amount: int = 2500, **fields: Any) -> Account:
    """An agent owing one month, due on the first of this month."""
    agent = await make_agent(**fields)
    start = today().replace(day=1)
    await Invoice.create(
        account_id=agent.id,
        period_start=start,
        period_end=next_month(start),
        amount_cents=amount,
        currency="usd",
        due_on=start,
    )
    return agent


async def bill(gql: GraphQLClient, token: str) -> dict[str, Any]:
    data: dict[str, Any] = (await gql(BILLING, token=token))["me"]["billing"]
    return data


async def titles(gql: GraphQLClient, token: str) -> list[str]:
    edges = (await gql(MESSAGES, token=token))["me"]["messages"]["edges"]
    return [edge["node"]["title"] for edge in edges]


async def start(gql: GraphQLClient, token: str, autopay: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = (await gql(START, {"autopay": autopay}, token=token))["startPayment"]
    return payload


async def pay_on_page(url: str, card: str) -> httpx.Response:
    """The agent's browser: opens Stripe's page and pays with a card."""
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(url)).status_code == 200
        return await browser.post(url, data={"card": card})


async def test_a_checkout_paid_clears_the_balance_and_says_so(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given an agent owing this month's $25.00
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    before = await bill(live_gql, token)
    assert (before["state"], before["balance"], before["monthlyPrice"]) == ("ON", 2500, 2500)
    assert before["dueOn"] == today().replace(day=1).isoformat()
    # when the agent starts a payment and pays on Stripe's page with a card
    started = await start(live_gql, token)
    assert started["userErrors"] == [] and started["amount"] == 2500
    page = await pay_on_page(started["checkoutUrl"], GOOD_CARD)
    # then the balance is paid, the payment is listed and the Message Center says so
    assert page.status_code == 200
    after = await bill(live_gql, token)
    assert after["balance"] == 0
    assert after["dueOn"] == next_month(today()).isoformat()
    assert after["invoices"]["edges"][0]["node"]["paid"] is True
    assert after["payments"]["edges"] == [
        {
            "node": {
                "kind": "PAYMENT",
                "method": "CHECKOUT",
                "amount": 2500,
                "currency": "usd",
                "reason": None,
            }
        }
    ]
    assert "Payment received: $25.00" in await titles(live_gql, token)
    # and Stripe was given the account and Key ID only, keybin no card data at all
    [customer] = stripe.customers.values()
    assert customer["metadata"] == {"keybin_account": str(agent.id), "key_id": agent.key_id}
    assert customer["email"] is None
    assert await rows_mentioning(GOOD_CARD) == []


async def test_asking_twice_gives_the_same_page(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    # when
    first, second = await start(live_gql, token), await start(live_gql, token)
    # then one customer and one page at Stripe
    assert first["checkoutUrl"] == second["checkoutUrl"]
    assert len(stripe.customers) == 1 and len(stripe.sessions) == 1


async def test_autopay_is_set_up_at_checkout_and_renews_every_month(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given an agent owing this month
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    # when the agent pays and ticks "pay every month"
    started = await start(live_gql, token, autopay=True)
    [session] = stripe.sessions.values()
    assert session["mode"] == "subscription"
    first_day = next_month(today())
    anchor = int(session["subscription_data"]["billing_cycle_anchor"])
    assert datetime.fromtimestamp(anchor, UTC).date() == first_day
    assert session["subscription_data"]["metadata"] == {"keybin_account": str(agent.id)}
    await pay_on_page(started["checkoutUrl"], GOOD_CARD)
    # then the balance is paid once (checkout and invoice.paid tell of the same payment)
    paid = await bill(live_gql, token)
    assert (paid["balance"], paid["autopay"], paid["payments"]["totalCount"]) == (0, True, 1)
    assert "Automatic monthly payment is on" in await titles(live_gql, token)
    # when Stripe renews the subscription on the 1st of next month
    subscription = stripe.paid[session["id"]].subscription
    assert subscription is not None
    renewal = stripe.renewal(subscription, month_start=anchor)
    assert (await stripe.deliver(renewal)).status_code == 200
    # then next month is billed and paid by autopay
    renewed = await bill(live_gql, token)
    assert renewed["balance"] == 0 and renewed["invoices"]["totalCount"] == 2
    newest = renewed["invoices"]["edges"][0]["node"]
    assert (newest["periodStart"], newest["amount"], newest["paid"]) == (
        first_day.isoformat(),
        2500,
        True,
    )
    assert renewed["payments"]["edges"][0]["node"]["method"] == "AUTOPAY"


async def test_a_declined_card_is_recorded_and_told(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    started = await start(live_gql, token)
    # when the card is declined on Stripe's page
    page = await pay_on_page(started["checkoutUrl"], DECLINED_CARD)
    # then nothing is paid, the failure is listed with Stripe's reason and told
    assert page.status_code == 402
    after = await bill(live_gql, token)
    assert after["balance"] == 2500
    [failed] = after["payments"]["edges"]
    assert failed["node"]["kind"] == "FAILED"
    assert failed["node"]["reason"] == "Your card was declined."
    assert "Payment failed" in await titles(live_gql, token)


async def test_an_autopay_renewal_declined_bills_the_month_and_mails_the_agent(
    live_gql: GraphQLClient, stripe: StripeServer, smtp: Any
) -> None:
    # given an agent paying by autopay
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    started = await start(live_gql, token, autopay=True)
    [session] = stripe.sessions.values()
    paid = stripe.pay(session["id"], GOOD_CARD)
    for event in paid.events:
        await stripe.deliver(event)
    assert paid.subscription is not None
    # when next month's charge is declined
    anchor = int(session["subscription_data"]["billing_cycle_anchor"])
    declined = stripe.renewal(paid.subscription, month_start=anchor, paid=False)
    assert (await stripe.deliver(declined)).status_code == 200
    # then next month is owed, the failure is told in the app and by mail
    after = await bill(live_gql, token)
    assert after["balance"] == 2500 and after["autopay"] is True
    assert after["dueOn"] == next_month(today()).isoformat()
    assert "Payment failed" in await titles(live_gql, token)
    mails = await smtp.wait_for(1)
    assert any(m["Subject"] == "Payment failed" and m["To"] == agent.email for m in mails)
    assert started["checkoutUrl"]


async def test_a_replayed_webhook_is_recorded_once(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given a payment's events, delivered once
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    await start(live_gql, token)
    [session] = stripe.sessions.values()
    [completed] = stripe.pay(session["id"], GOOD_CARD).events
    assert (await stripe.deliver(completed)).json()["outcome"] == "payment of 2500 recorded"
    before = await table_counts()
    # when Stripe (or an attacker who kept it) sends the same signed event again
    again = await stripe.deliver(completed)
    # then nothing more is recorded
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert await table_counts() == before
    assert (await bill(live_gql, token))["balance"] == 0


@pytest.mark.parametrize(
    "forgery",
    ["wrong secret", "edited body", "no signature", "old timestamp", "future timestamp", "v0 only"],
)
async def test_a_webhook_not_signed_by_stripe_now_is_refused_and_changes_nothing(
    live_gql: GraphQLClient, stripe: StripeServer, forgery: str
) -> None:
    # given a payment's event, as Stripe would send it
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    await start(live_gql, token)
    [session] = stripe.sessions.values()
    [completed] = stripe.pay(session["id"], GOOD_CARD).events
    payload = json.dumps(completed).encode()
    now = int(time.time())
    forged = {
        "wrong secret": {"secret": "whsec_" + "x" * 32},
        "edited body": {
            "body": payload.replace(b'"amount_total": 2500', b'"amount_total": 250000')
        },
        "no signature": {"signature": ""},
        "old timestamp": {"timestamp": now - 600},
        "future timestamp": {"timestamp": now + 600},
        "v0 only": {"signature": sign(payload).replace("v1=", "v0=")},
    }[forgery]
    if forgery == "edited body":
        forged["signature"] = sign(payload)
    before = await table_counts()
    # when
    response = await stripe.deliver(completed, **forged)
    # then
    assert response.status_code == 400
    assert await table_counts() == before
    assert (await bill(live_gql, token))["balance"] == 2500


async def test_invoice_paid_before_checkout_completed_records_one_payment(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given an autopay checkout paid at Stripe
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    await start(live_gql, token, autopay=True)
    [session] = stripe.sessions.values()
    created, invoice_paid, completed = stripe.pay(session["id"], GOOD_CARD).events
    # when the events arrive in the reverse order
    for event in (invoice_paid, completed, created):
        assert (await stripe.deliver(event)).status_code == 200
    # then one payment, and autopay on
    after = await bill(live_gql, token)
    assert (after["balance"], after["autopay"], after["payments"]["totalCount"]) == (0, True, 1)


async def test_a_subscription_deleted_before_its_creation_arrives_stays_deleted(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given an autopay checkout paid at Stripe, then the subscription cancelled
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    await start(live_gql, token, autopay=True)
    [session] = stripe.sessions.values()
    paid = stripe.pay(session["id"], GOOD_CARD)
    created, invoice_paid, completed = paid.events
    assert paid.subscription is not None
    deleted = stripe.event(
        "customer.subscription.deleted",
        {**paid.subscription, "status": "canceled"},
        created=created["created"] + 60,
    )
    # when the deletion comes first and the rest after it
    for event in (deleted, invoice_paid, completed, created):
        assert (await stripe.deliver(event)).status_code == 200
    # then the payment counts and autopay is off
    after = await bill(live_gql, token)
    assert (after["balance"], after["autopay"]) == (0, False)
    assert "Automatic monthly payment is on" not in await titles(live_gql, token)
    billing = await BillingAccount.get(account_id=agent.id)
    assert billing.subscription_status == "canceled"


async def test_events_of_the_same_second_never_move_a_subscription_back_in_its_life(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given an autopay checkout paid at Stripe
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    await start(live_gql, token, autopay=True)
    [session] = stripe.sessions.values()
    paid = stripe.pay(session["id"], GOOD_CARD)
    assert paid.subscription is not None
    second = paid.events[0]["created"]
    # when Stripe's "active" and its earlier "incomplete", stamped in the same second (its
    # clock counts whole seconds), arrive the wrong way round
    active = stripe.event(
        "customer.subscription.updated", {**paid.subscription, "status": "active"}, second
    )
    incomplete = stripe.event(
        "customer.subscription.created", {**paid.subscription, "status": "incomplete"}, second
    )
    for event in (*paid.events, active, incomplete):
        assert (await stripe.deliver(event)).status_code == 200
    # then autopay is on, and the agent was never told it stopped
    assert (await bill(live_gql, token))["autopay"] is True
    assert (await BillingAccount.get(account_id=agent.id)).subscription_status == "active"
    assert "Automatic monthly payment has stopped" not in await titles(live_gql, token)


async def test_a_refund_puts_the_amount_back_on_the_balance_once(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given a paid balance
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    started = await start(live_gql, token)
    await pay_on_page(started["checkoutUrl"], GOOD_CARD)
    [customer] = stripe.customers
    # when $10.00, then the whole $25.00 is refunded, and the first event arrives last
    partial = stripe.refund(customer, "ch_test_1", 1000)
    whole = stripe.refund(customer, "ch_test_1", 2500)
    for event in (whole, partial, whole):
        assert (await stripe.deliver(event)).status_code == 200
    # then the balance owes $25.00 again, told once per amount refunded
    after = await bill(live_gql, token)
    assert after["balance"] == 2500
    refunds = [e["node"] for e in after["payments"]["edges"] if e["node"]["kind"] == "REFUND"]
    assert [r["amount"] for r in refunds] == [2500]
    assert (await titles(live_gql, token)).count("Refund: $25.00") == 1


async def test_two_identical_webhooks_at_once_record_once(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    await start(live_gql, token)
    [session] = stripe.sessions.values()
    [completed] = stripe.pay(session["id"], GOOD_CARD).events
    # when Stripe's retry crosses its first delivery
    responses = await asyncio.gather(*(stripe.deliver(completed) for _ in range(4)))
    # then every delivery is answered 200 and the payment is there once
    assert [r.status_code for r in responses] == [200] * 4
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert outcomes == ["duplicate"] * 3 + ["payment of 2500 recorded"]
    assert await Payment.filter(account_id=agent.id).count() == 1
    assert (await titles(live_gql, token)).count("Payment received: $25.00") == 1


async def test_start_payment_only_ever_bills_the_caller(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given two agents owing different amounts
    alice = await billed_agent(2500)
    bob = await billed_agent(9900)
    token = await live_gql.sign_in(bob.email or "")
    # when Bob starts a payment, whatever he adds to the input
    body = await live_gql.raw(
        f'mutation {{ startPayment(input: {{autopay: false, accountId: "{alice.id}"}}) '
        "{ checkoutUrl } }",
        token=token,
    )
    payload = await start(live_gql, token)
    # then an extra argument is refused, and the page is his and for his balance
    assert "unknown field 'accountId'" in body["errors"][0]["message"]
    assert payload["amount"] == 9900
    [session] = stripe.sessions.values()
    assert session["metadata"] == {"keybin_account": str(bob.id)}
    assert session["client_reference_id"] == str(bob.id)
    assert (
        await BillingAccount.filter(account_id=alice.id, stripe_customer_id__isnull=False).count()
        == 0
    )


async def test_contractors_and_anonymous_callers_cannot_start_a_payment(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given
    contractor = await make_contractor()
    token = await live_gql.sign_in(contractor.email or "")
    before = await table_counts()
    # when
    as_contractor = await live_gql.raw(START, {"autopay": False}, token=token)
    anonymous = await live_gql.raw(START, {"autopay": False})
    reading = await live_gql.raw("{ me { ... on Agent { billing { balance } } } }", token=token)
    # then
    assert as_contractor["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert reading == {"data": {"me": {}}}
    assert await table_counts() == before
    assert stripe.requests == []


async def test_a_webhook_naming_another_account_than_its_customer_is_ignored(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given Alice is a customer, and Bob owes money
    alice = await billed_agent()
    bob = await billed_agent()
    token = await live_gql.sign_in(alice.email or "")
    await start(live_gql, token, autopay=True)
    [session] = stripe.sessions.values()
    paid = stripe.pay(session["id"], GOOD_CARD)
    _, invoice_paid, completed = paid.events
    # when events about Alice's customer and checkout name Bob in their metadata
    named_bob = {"keybin_account": str(bob.id)}
    invoice_paid["data"]["object"]["parent"]["subscription_details"]["metadata"] = named_bob
    completed["data"]["object"]["metadata"] = named_bob
    completed["data"]["object"]["client_reference_id"] = str(bob.id)
    responses = [await stripe.deliver(e) for e in (invoice_paid, completed)]
    # then they are answered (Stripe must not retry them) and nothing is paid for anyone
    assert [r.json()["outcome"] for r in responses] == [
        "ignored: the account it names is not the customer's",
        "ignored: the account it names is not the checkout's",
    ]
    assert await Payment.all().count() == 0
    assert await StripeEvent.filter(account_id__isnull=False).count() == 0
    bob_token = await live_gql.sign_in(bob.email or "")
    assert (await bill(live_gql, bob_token))["balance"] == 2500


async def test_an_associations_own_price_applies_and_nothing_owed_is_nothing_to_pay(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given prices for "*" and Dayton, and an agent of Dayton who owes nothing
    agent = await make_agent(association="Dayton REALTORS")
    token = await live_gql.sign_in(agent.email or "")
    # when
    billing = await bill(live_gql, token)
    payload = await start(live_gql, token)
    # then
    assert (billing["monthlyPrice"], billing["balance"]) == (2200, 0)
    assert payload["checkoutUrl"] is None
    assert payload["userErrors"] == [
        {"code": "NOTHING_DUE", "field": None, "message": "Nothing is due: your balance is $0.00."}
    ]
    assert stripe.requests == []


async def test_nobody_else_reads_an_agents_bill(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given a contractor granted access by an agent who owes money
    agent = await billed_agent()
    listing = await make_listing(agent)
    contractor = await make_contractor()
    await make_grant(agent, listing, await make_lockbox(agent, listing), contractor)
    token = await live_gql.sign_in(contractor.email or "")
    # when the contractor reaches the agent through the grant
    body = await live_gql.raw(
        "{ me { ... on Contractor { grants { edges { node { grantedBy { firstName "
        "billing { balance } } } } } } } }",
        token=token,
    )
    # then the bill is refused, the name is not
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert "2500" not in str(body["data"])


class TestAnAssociationWithoutAPrice:
    @pytest.fixture
    def settings_overrides(self, stripe_server: StripeServer) -> dict[str, Any]:
        return billing_settings(stripe_server, billing_prices=(("Dayton REALTORS", 2200),))

    async def test_its_agents_are_not_billed_and_told_whom_to_ask(
        self, live_gql: GraphQLClient, stripe: StripeServer
    ) -> None:
        # given an agent of an association with no price, owing from an earlier price list,
        # and one owing nothing
        agent = await billed_agent(association="Cincinnati Area Board")
        token = await live_gql.sign_in(agent.email or "")
        other = await make_agent(association="Cincinnati Area Board")
        other_token = await live_gql.sign_in(other.email or "")
        # when
        billing = await bill(live_gql, token)
        paying = await start(live_gql, token, autopay=True)
        payload = await start(live_gql, other_token)
        # then what is owed can still be paid (once: no month to pay automatically)
        assert (paying["amount"], paying["userErrors"]) == (2500, [])
        [session] = stripe.sessions.values()
        assert session["mode"] == "payment"
        assert (billing["state"], billing["monthlyPrice"], billing["balance"]) == (
            "NOT_BILLED",
            None,
            2500,
        )
        assert billing["message"] == (
            "No key subscription price is set for your association: please contact your "
            "Association or MLS office."
        )
        assert [e["code"] for e in payload["userErrors"]] == ["BILLING_OFF"]
        assert agent.kind == AccountKind.AGENT


async def test_stripe_not_answering_is_a_user_error_and_nothing_is_kept(
    live_gql: GraphQLClient, stripe: StripeServer
) -> None:
    # given Stripe failing every call (the library retries twice)
    agent = await billed_agent()
    token = await live_gql.sign_in(agent.email or "")
    stripe.refuse_next = 10
    # when
    payload = await start(live_gql, token)
    # then
    assert payload["userErrors"][0]["code"] == "PAYMENT_UNAVAILABLE"
    assert await BillingAccount.filter(stripe_customer_id__isnull=False).count() == 0
