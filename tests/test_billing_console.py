"""The console's Billing section: support finds the caller by Key ID, reads the balance out
and sends a payment link by SMS or email (both trails record it); CSRF, roles and billing off.
The SMS gateway, the mail relay, Stripe and keybin are real servers on loopback."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from models.accounts import AccountEvent
from models.billing import CheckoutSession
from models.staff import StaffAudit
from tests.factories import GraphQLClient, make_contractor
from tests.live import Live
from tests.rows import table_counts
from tests.sms_gateway import SmsGateway
from tests.smtp import SmtpServer, text_body
from tests.stripe_server import GOOD_CARD, StripeServer, billing_settings
from tests.test_billing import BILLING, billed_agent, pay_on_page
from tests.test_console_http import HX, csrf_of, signed_in

LINK = re.compile(r"http://127\.0\.0\.1:\d+/pay/cs_test_\w+")


@pytest.fixture
def settings_overrides(stripe_server: StripeServer, sms: SmsGateway) -> dict[str, Any]:
    return {
        **billing_settings(stripe_server),
        "sms_backend": "http",
        "sms_http_url": sms.url,
    }


@pytest.fixture
async def stripe(stripe_server: StripeServer, live: Live) -> AsyncIterator[StripeServer]:
    stripe_server.webhook_url = live.http_url.replace("/graphql", "/webhooks/stripe")
    yield stripe_server


async def test_support_reads_the_balance_and_texts_a_link_the_agent_pays_with(
    http: httpx.AsyncClient,
    live_gql: GraphQLClient,
    stripe: StripeServer,
    sms: SmsGateway,
) -> None:
    # given an agent owing $25.00 who calls support with their Key ID
    agent = await billed_agent(phone="+15135550142")
    staff = await signed_in(http)
    found = await http.get("/console/search", params={"q": agent.key_id})
    assert f"/console/accounts/{agent.id}" in found.text
    # when support opens the agent's page
    page = await http.get(f"/console/accounts/{agent.id}")
    # then the balance is there, with the form to send a link
    assert page.status_code == 200
    assert '<strong id="billing-balance">$25.00</strong>' in page.text
    assert "Send a payment link for $25.00" in page.text
    # when support sends it by SMS
    response = await http.post(
        f"/console/accounts/{agent.id}/payment-link",
        data={"channel": "SMS", "csrf_token": csrf_of(page.text)},
        headers=HX,
    )
    # then the section says so, the agent's phone gets the link, and both trails record it
    assert response.status_code == 200
    assert 'data-announce="Payment link for $25.00 sent by SMS."' in response.text
    [text] = await sms.wait_for("+15135550142")
    assert f"Key ID {agent.key_id}" in text.body
    match = LINK.search(text.body)
    assert match is not None
    [event] = await AccountEvent.filter(account_id=agent.id, kind="PAYMENT_LINK_SENT")
    assert (event.staff_id, event.detail) == (staff.staff.id, "$25.00 by sms")
    [line] = await StaffAudit.filter(action="PAYMENT_LINK_SENT")
    assert (line.staff_id, line.account_id) == (staff.staff.id, agent.id)
    [checkout] = await CheckoutSession.filter(account_id=agent.id)
    assert checkout.staff_id == staff.staff.id
    # when the agent pays on the page the SMS opened
    await pay_on_page(match.group(0), GOOD_CARD)
    # then the balance is paid, in the console and in the app
    page = await http.get(f"/console/accounts/{agent.id}")
    assert '<strong id="billing-balance">$0.00</strong>' in page.text
    token = await live_gql.sign_in(agent.email or "")
    assert (await live_gql(BILLING, token=token))["me"]["billing"]["balance"] == 0


async def test_a_link_by_email_without_javascript(
    http: httpx.AsyncClient, stripe: StripeServer, smtp: SmtpServer
) -> None:
    # given an agent without a cell phone
    agent = await billed_agent(2200)
    await signed_in(http)
    page = await http.get(f"/console/accounts/{agent.id}")
    assert "(no cell phone)" in page.text
    # when support sends the link as a plain form
    response = await http.post(
        f"/console/accounts/{agent.id}/payment-link",
        data={"channel": "EMAIL", "csrf_token": csrf_of(page.text)},
    )
    # then the browser goes back to the section, which says it was sent, and the mail has it
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/accounts/{agent.id}#billing"
    assert (
        "Payment link for $22.00 sent by email."
        in (await http.get(response.headers["location"])).text
    )
    [mail] = await smtp.wait_for(1)
    assert (mail["To"], mail["Subject"]) == (agent.email, "Pay your key subscription: $22.00")
    assert LINK.search(text_body(mail))


def browser(app: Starlette) -> httpx.AsyncClient:
    """Another browser, with cookies of its own."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://keybin.test")


async def test_the_link_form_needs_the_sessions_csrf_token(
    http: httpx.AsyncClient, app: Starlette, stripe: StripeServer
) -> None:
    # given a signed-in member of staff, and another browser's token
    agent = await billed_agent(phone="+15135550143")
    await signed_in(http)
    async with browser(app) as other_browser:
        await signed_in(other_browser, name="Other Support")
        other_token = csrf_of((await other_browser.get("/console/")).text)
    before = await table_counts()
    # when a page elsewhere posts the form with no token, a wrong one or another session's
    url = f"/console/accounts/{agent.id}/payment-link"
    refused = [
        await http.post(url, data={"channel": "SMS"}),
        await http.post(url, data={"channel": "SMS", "csrf_token": "forged"}),
        await http.post(url, data={"channel": "SMS", "csrf_token": other_token}),
    ]
    # then nothing is sent, asked of Stripe or written
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert await table_counts() == before
    assert stripe.requests == []


async def test_support_sends_links_and_only_a_system_administrator_reads_the_trail(
    http: httpx.AsyncClient, app: Starlette, stripe: StripeServer
) -> None:
    # given a SUPPORT member who sent a link
    agent = await billed_agent(phone="+15135550144")
    await signed_in(http)
    page = await http.get(f"/console/accounts/{agent.id}")
    sent = await http.post(
        f"/console/accounts/{agent.id}/payment-link",
        data={"channel": "SMS", "csrf_token": csrf_of(page.text)},
        headers=HX,
    )
    assert sent.status_code == 200
    # when SUPPORT and then a SYSADMIN open the audit trail, filtered on links
    support_view = await http.get("/console/audit", params={"action": "PAYMENT_LINK_SENT"})
    async with browser(app) as admin:
        await signed_in(admin, role="SYSADMIN", name="Ada Admin")
        admin_view = await admin.get("/console/audit", params={"action": "PAYMENT_LINK_SENT"})
    # then
    assert support_view.status_code == 403
    assert admin_view.status_code == 200
    assert "$25.00 by sms" in admin_view.text


async def test_no_link_for_a_contractor_nothing_due_or_a_missing_phone(
    http: httpx.AsyncClient, stripe: StripeServer, sms: SmsGateway
) -> None:
    # given a contractor, an agent who owes nothing, and one without a phone
    contractor = await make_contractor()
    agent = await billed_agent(0, phone="+15135550146")
    no_phone = await billed_agent()
    await signed_in(http)
    token = csrf_of((await http.get("/console/")).text)
    before = await table_counts()
    # when support tries to send each a link by SMS
    answers = [
        await http.post(
            f"/console/accounts/{account.id}/payment-link",
            data={"channel": "SMS", "csrf_token": token},
            headers=HX,
        )
        for account in (contractor, agent, no_phone)
    ]
    # then each is refused with the reason, and nothing is sent
    assert [a.status_code for a in answers] == [404, 422, 422]
    assert "Nothing is due: your balance is $0.00." in answers[1].text
    assert "This agent has no cell phone number: send an email." in answers[2].text
    assert await table_counts() == before
    assert sms.received == []


class TestBillingOff:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {}

    async def test_the_agent_page_says_billing_is_off(self, http: httpx.AsyncClient) -> None:
        # given a server without Stripe's settings
        agent = await billed_agent(phone="+15135550145")
        await signed_in(http)
        # when
        page = await http.get(f"/console/accounts/{agent.id}")
        sent = await http.post(
            f"/console/accounts/{agent.id}/payment-link",
            data={"channel": "SMS", "csrf_token": csrf_of(page.text)},
            headers=HX,
        )
        # then
        assert "Billing is off on this server: no Stripe configuration." in page.text
        assert "Send a payment link" not in page.text
        assert sent.status_code == 422
        assert "billing is off on this server" in sent.text
