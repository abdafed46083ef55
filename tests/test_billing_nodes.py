"""Bills and payments have global ids: Query.node gives them back to the agent they belong to,
as the billing pages show them, and to no one else (another account's read as missing)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from core.ids import to_global_id
from models.accounts import Account
from models.billing import Invoice, Payment
from models.enums import PaymentKind, PaymentMethod
from resolvers.billing import next_month, today
from tests.factories import GraphQLClient, make_agent, make_contractor

PAGES = """
{ me { ... on Agent { billing {
  invoices { edges { node { id periodStart amount dueOn paid } } }
  payments { edges { node { id kind method amount currency } } }
} } } }
"""
NODE = """
query($id: ID!) { node(id: $id) {
  __typename id
  ... on Invoice { periodStart amount dueOn paid }
  ... on Payment { kind method amount currency }
} }
"""


def month_before(first: date) -> date:
    if first.month == 1:
        return first.replace(year=first.year - 1, month=12)
    return first.replace(month=first.month - 1)


async def agent_with_two_bills_one_paid() -> Account:
    """Last month's bill and this month's, and one payment: it settles the older one."""
    agent = await make_agent()
    this_month = today().replace(day=1)
    for start in (month_before(this_month), this_month):
        await Invoice.create(
            account_id=agent.id,
            period_start=start,
            period_end=next_month(start),
            amount_cents=2500,
            currency="usd",
            due_on=start,
        )
    await Payment.create(
        account_id=agent.id,
        kind=PaymentKind.PAYMENT,
        method=PaymentMethod.CHECKOUT,
        amount_cents=2500,
        currency="usd",
        reference=f"pi_test_{agent.id}",
        occurred_at=datetime.now(UTC),
    )
    return agent


async def pages(gql: GraphQLClient, token: str) -> tuple[list[Any], list[Any]]:
    billing = (await gql(PAGES, token=token))["me"]["billing"]
    invoices = [edge["node"] for edge in billing["invoices"]["edges"]]
    payments = [edge["node"] for edge in billing["payments"]["edges"]]
    return invoices, payments


async def node(gql: GraphQLClient, token: str, global_id: str) -> Any:
    return (await gql(NODE, {"id": global_id}, token=token))["node"]


async def test_an_agent_reads_each_bill_and_payment_again_by_its_id(
    live_gql: GraphQLClient,
) -> None:
    # given an agent with two bills, the older one paid, and its payment
    agent = await agent_with_two_bills_one_paid()
    token = await live_gql.sign_in(agent.email or "")
    invoices, payments = await pages(live_gql, token)
    assert [i["paid"] for i in invoices] == [False, True]  # newest first
    # when each is asked for by the id its page gave
    again = [await node(live_gql, token, n["id"]) for n in [*invoices, *payments]]
    # then each reads as it did on the page, under its own type
    assert [a.pop("__typename") for a in again] == ["Invoice", "Invoice", "Payment"]
    assert again == [*invoices, *payments]
    assert invoices[0]["id"] == to_global_id(
        "Invoice",
        (await Invoice.filter(account_id=agent.id).order_by("-id").first()).id,  # type: ignore[union-attr]
    )


async def test_nobody_else_reads_a_bill_or_a_payment_by_its_id(live_gql: GraphQLClient) -> None:
    # given an agent's bill and payment ids
    agent = await agent_with_two_bills_one_paid()
    invoices, payments = await pages(live_gql, await live_gql.sign_in(agent.email or ""))
    ids = [invoices[0]["id"], payments[0]["id"]]
    # when another agent, a contractor, and the agent's own id with another's number ask
    other = await make_agent()
    contractor = await make_contractor()
    for reader in (other, contractor):
        token = await live_gql.sign_in(reader.email or "")
        # then they read as missing, like an id that names nothing
        assert [await node(live_gql, token, i) for i in ids] == [None, None]
        assert await node(live_gql, token, to_global_id("Invoice", 999_999)) is None
    # and nobody signed in reads anything
    body = await live_gql.raw(NODE, {"id": ids[0]})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
