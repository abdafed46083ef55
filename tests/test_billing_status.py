"""The account status follows the money: a month billed and reminded before the 1st, told
when the due date passes, PAST_DUE after the grace days (keys and grants refused, live
subscriptions closed), ACTIVE again the moment Stripe's payment arrives; and billing off says
so everywhere. Against a real server and Stripe on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from core import clock
from core.ids import to_global_id
from importers.members import import_members
from importers.report import ImportReport
from models.accounts import Account
from models.billing import Invoice
from models.enums import AccountStatus
from models.messages import Message
from resolvers.billing import next_month, today
from resolvers.billing_schedule import run_round
from settings import Settings
from tests.factories import GraphQLClient, make_agent, make_listing, make_lockbox
from tests.live import Live, subscribed
from tests.smtp import SmtpServer, text_body
from tests.stripe_server import GOOD_CARD, StripeServer, billing_settings
from tests.test_account_status import GRANT
from tests.test_billing import BILLING, pay_on_page, start
from tests.test_session_end import NOT_ACTIVE, closed_with, roster

ME = "{ me { status } }"
START_NOW = "mutation { startPayment(input: {}) { checkoutUrl userErrors { code field message } } }"
RESUME = "subscription($after: ID) { messageAdded(after: $after) { kind title body } }"
SEED_ADVICE = (
    "Your account is past due. Please contact your Association or MLS office to find out why "
    "and what is needed to activate it."
)


@pytest.fixture
def settings_overrides(stripe_server: StripeServer) -> dict[str, Any]:
    return billing_settings(stripe_server, billing_grace_days=7, billing_reminder_days=5)


@pytest.fixture
async def stripe(stripe_server: StripeServer, live: Live) -> AsyncIterator[StripeServer]:
    stripe_server.webhook_url = live.http_url.replace("/graphql", "/webhooks/stripe")
    yield stripe_server


def travel_to(day: date) -> None:
    """Noon (UTC) of that day, on keybin's clock."""
    target = datetime.combine(day, time(12), tzinfo=UTC)
    clock.travel((target - clock.now()).total_seconds())


def grant_input(listing_id: int) -> dict[str, Any]:
    starts = clock.now() + timedelta(hours=1)
    return {
        "input": {
            "listingId": to_global_id("Listing", listing_id),
            "granteeEmail": "painter@example.com",
            "startsAt": starts.isoformat(),
            "endsAt": (starts + timedelta(hours=2)).isoformat(),
            "pin": "1234",
        }
    }


async def mail_to(smtp: SmtpServer, address: str, subject: str) -> str:
    for _ in range(500):
        for mail in smtp.inbox:
            if mail["To"] == address and mail["Subject"] == subject:
                return text_body(mail)
        await asyncio.sleep(0.01)
    raise AssertionError(f"no mail {subject!r} to {address}: {[m['Subject'] for m in smtp.inbox]}")


async def test_an_unpaid_month_makes_the_agent_past_due_and_a_payment_active_at_once(
    live: Live,
    live_gql: GraphQLClient,
    stripe: StripeServer,
    app_settings: Settings,
    smtp: SmtpServer,
) -> None:
    # given an active agent with a lockbox on a listing, enrolled in billing today
    agent = await make_agent()
    listing = await make_listing(agent)
    await make_lockbox(agent, listing)
    assert (await run_round(app_settings)).billed == 0  # nobody pays for a month under way
    due = next_month(today())
    # when the reminder days before the 1st come
    travel_to(due - timedelta(days=4))
    assert (await run_round(app_settings)).billed == 1
    # then the bill is in the app and in the mail
    token = await live_gql.sign_in(agent.email or "")
    billing = (await live_gql(BILLING, token=token))["me"]["billing"]
    assert (billing["balance"], billing["dueOn"]) == (2500, due.isoformat())
    subject = f"Your key subscription bill: $25.00 due {due:%B} {due.day}, {due.year}"
    assert "Pay in the app, or call support with your 9-digit Key ID." in await mail_to(
        smtp, agent.email or "", subject
    )
    # when the due date passes unpaid
    travel_to(due + timedelta(days=1))
    assert (await run_round(app_settings)).overdue_notices == 1
    # then the agent is told how long is left
    body = await mail_to(smtp, agent.email or "", "Payment overdue: $25.00")
    last_day = due + timedelta(days=7)
    assert f"Please pay by {last_day:%B} {last_day.day}, {last_day.year}" in body
    # when the grace days are over, with the app subscribed
    travel_to(due + timedelta(days=8))
    async with subscribed(live, token) as ws:
        await live.wait_for_subscribers(1)
        done = await run_round(app_settings)
        # then the account is PAST_DUE and its live subscription closes
        assert await closed_with(ws) == NOT_ACTIVE
    assert done.made_past_due == 1
    assert (await live_gql(ME, token=token))["me"]["status"] == "PAST_DUE"
    refused = (await live_gql(GRANT, grant_input(listing.id), token=token))["grantAccess"]
    assert refused["userErrors"] == [
        {"code": "ACCOUNT_NOT_ACTIVE", "field": None, "message": SEED_ADVICE}
    ]
    await mail_to(smtp, agent.email or "", "Your account is past due")
    last_message = await Message.filter(account_id=agent.id).order_by("-id").first()
    assert last_message is not None
    # when the agent pays on Stripe's page
    started = await start(live_gql, token)
    await pay_on_page(started["checkoutUrl"], GOOD_CARD)
    # then the account is ACTIVE at once: a new subscription is accepted and resumes with
    # the payment's message, and the grant goes through
    assert (await live_gql(ME, token=token))["me"]["status"] == "ACTIVE"
    after = {"after": to_global_id("Message", last_message.id)}
    async with subscribed(live, token, RESUME, after) as ws:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
    received = frame["payload"]["data"]["messageAdded"]
    assert received["title"] == "Payment received: $25.00"
    assert received["body"].endswith("Your account is active again.")
    granted = (await live_gql(GRANT, grant_input(listing.id), token=token))["grantAccess"]
    assert granted["userErrors"] == [] and granted["grant"]["id"]


async def test_a_status_the_association_set_is_left_alone_whatever_is_paid(
    live_gql: GraphQLClient, stripe: StripeServer, app_settings: Settings
) -> None:
    # given an agent the roster made PAST_DUE and one it SUSPENDED, both owing an old month
    roster_past_due = await make_agent(status=AccountStatus.PAST_DUE)
    suspended = await make_agent(status=AccountStatus.SUSPENDED)
    old = today().replace(day=1) - timedelta(days=62)
    for agent in (roster_past_due, suspended):
        await Invoice.create(
            account_id=agent.id,
            period_start=old.replace(day=1),
            period_end=next_month(old),
            amount_cents=2500,
            currency="usd",
            due_on=old.replace(day=1),
        )
    # when billing runs, and the first pays
    await run_round(app_settings)
    token = await live_gql.sign_in(roster_past_due.email or "")
    started = await start(live_gql, token)
    await pay_on_page(started["checkoutUrl"], GOOD_CARD)
    await run_round(app_settings)
    # then billing took nothing and gives nothing back: the association's statuses stay
    statuses = dict(
        await Account.filter(id__in=[roster_past_due.id, suspended.id]).values_list("id", "status")
    )
    assert statuses == {
        roster_past_due.id: AccountStatus.PAST_DUE,
        suspended.id: AccountStatus.SUSPENDED,
    }
    assert (await live_gql(BILLING, token=token))["me"]["billing"]["balance"] == 0


async def test_two_instances_running_the_round_at_once_bill_and_remind_once(
    stripe: StripeServer, app_settings: Settings
) -> None:
    # given agents enrolled today, and the reminder days before next month come
    agents = [await make_agent() for _ in range(3)]
    await run_round(app_settings)
    travel_to(next_month(today()) - timedelta(days=2))
    # when two instances run their round together
    rounds = await asyncio.gather(run_round(app_settings), run_round(app_settings))
    # then each agent has one bill and one message about it
    assert sum(r.billed for r in rounds) == 3
    for agent in agents:
        assert await Invoice.filter(account_id=agent.id).count() == 1
        assert await Message.filter(account_id=agent.id).count() == 1


async def test_an_agent_paying_by_autopay_is_not_billed_by_keybin(
    live_gql: GraphQLClient, stripe: StripeServer, app_settings: Settings
) -> None:
    # given an enrolled agent who set up autopay (with nothing owed yet)
    agent = await make_agent()
    await run_round(app_settings)
    token = await live_gql.sign_in(agent.email or "")
    started = await start(live_gql, token, autopay=True)
    assert started["userErrors"] == [] and started["amount"] == 0
    await pay_on_page(started["checkoutUrl"], GOOD_CARD)
    # when next month's reminder days come
    travel_to(next_month(today()) - timedelta(days=2))
    # then Stripe, not keybin, bills it
    assert (await run_round(app_settings)).billed == 0
    billing = (await live_gql(BILLING, token=await live_gql.sign_in(agent.email or "")))["me"]
    assert billing["billing"]["autopay"] is True


class TestBillingOff:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {}

    async def test_the_bill_payments_webhooks_and_rounds_say_billing_is_off(
        self, gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette, app_settings: Settings
    ) -> None:
        # given a server without Stripe's settings
        agent = await make_agent()
        token = await gql.sign_in(agent.email or "")
        # when
        billing = (await gql(BILLING, token=token))["me"]["billing"]
        payment = (await gql(START_NOW, token=token))["startPayment"]
        webhook = await http.post("/webhooks/stripe", content=b"{}")
        done = await run_round(app_settings)
        # then
        assert billing == {
            "state": "OFF",
            "message": "Billing is off: this server takes no payments.",
            "currency": "usd",
            "monthlyPrice": None,
            "balance": 0,
            "dueOn": None,
            "autopay": False,
            "invoices": {"totalCount": 0, "edges": []},
            "payments": {"totalCount": 0, "edges": []},
        }
        assert payment["userErrors"] == [
            {
                "code": "BILLING_OFF",
                "field": None,
                "message": "Payments are not taken in the app: billing is off on this server.",
            }
        ]
        assert webhook.status_code == 404
        assert (done.enrolled, done.billed) == (0, 0)
        assert app.state.billing_scheduler._task is None


async def test_the_roster_saying_active_does_not_lift_what_billing_made_past_due(
    live: Live, stripe: StripeServer, app_settings: Settings, tmp_path: Path
) -> None:
    # given an agent billing made PAST_DUE (a month unpaid past the grace days), and one the
    # association's roster made PAST_DUE, owing nothing
    unpaid = await make_agent()
    await make_lockbox(unpaid, await make_listing(unpaid))
    await run_round(app_settings)
    due = next_month(today())
    travel_to(due - timedelta(days=4))
    await run_round(app_settings)
    travel_to(due + timedelta(days=8))
    assert (await run_round(app_settings)).made_past_due == 1
    roster_made = await make_agent(status=AccountStatus.PAST_DUE)
    members = tmp_path / "members.json"

    async def statuses() -> dict[int, AccountStatus]:
        ids = [unpaid.id, roster_made.id]
        return dict(await Account.filter(id__in=ids).values_list("id", "status"))

    # when the roster says both are active
    members.write_text(json.dumps(rows((unpaid, "Active"), (roster_made, "Active"))))
    await import_members(members, ImportReport())
    # then the association's own PAST_DUE is lifted, billing's is not: the roster pays no bill
    assert await statuses() == {
        unpaid.id: AccountStatus.PAST_DUE,
        roster_made.id: AccountStatus.ACTIVE,
    }
    # when the roster suspends the unpaid agent, that status applies
    members.write_text(json.dumps(rows((unpaid, "Suspended"))))
    await import_members(members, ImportReport())
    assert (await statuses())[unpaid.id] == AccountStatus.SUSPENDED


def rows(*members: tuple[Account, str]) -> dict[str, Any]:
    return {"value": [roster(agent, status)["value"][0] for agent, status in members]}
