"""Billing types: an agent's key subscription bill, its invoices and payments (money in cents)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import strawberry

from core.ids import to_global_id
from models import enums
from models.enums import BillingState, PaymentKind, PaymentMethod
from resolvers import billing as billing_ops
from schema.base import Connection, Node, build_connection, check_first, decode_cursor
from schema.context import Info
from schema.errors import forbidden

if TYPE_CHECKING:
    from models.billing import Invoice as InvoiceModel
    from models.billing import Payment as PaymentModel

strawberry.enum(
    enums.BillingState,
    description="ON: the agent is billed. OFF: this server takes no payments (billing is not "
    "configured). NOT_BILLED: no price is set for the agent's association.",
)
strawberry.enum(enums.PaymentKind)
strawberry.enum(
    enums.PaymentMethod,
    description="CHECKOUT: a payment page (from the app, or a link support sent). AUTOPAY: "
    "the automatic monthly payment.",
)

CENTS = "In cents (an integer) of `currency`."


@strawberry.type(description="One month of the key subscription, due on its first day.")
class Invoice(Node):
    period_start: date
    period_end: date = strawberry.field(description="The first day after the month billed.")
    amount: int = strawberry.field(description=CENTS)
    currency: str
    due_on: date
    paid: bool = strawberry.field(
        description="Whether the payments cover it (they settle the oldest bills first)."
    )

    @classmethod
    def from_model(cls, row: InvoiceModel, paid: bool) -> Invoice:
        return cls(
            id=strawberry.ID(to_global_id("Invoice", row.id)),
            period_start=row.period_start,
            period_end=row.period_end,
            amount=row.amount_cents,
            currency=row.currency,
            due_on=row.due_on,
            paid=paid,
        )


@strawberry.type(description="Money received or refunded, or a payment that did not go through.")
class Payment(Node):
    kind: PaymentKind
    method: PaymentMethod
    amount: int = strawberry.field(description=CENTS)
    currency: str
    occurred_at: datetime
    reason: str | None = strawberry.field(description="Why a payment failed, when known.")

    @classmethod
    def from_model(cls, row: PaymentModel) -> Payment:
        return cls(
            id=strawberry.ID(to_global_id("Payment", row.id)),
            kind=row.kind,
            method=row.method,
            amount=row.amount_cents,
            currency=row.currency,
            occurred_at=row.occurred_at,
            reason=row.detail or None,
        )


@strawberry.type
class InvoiceConnection(Connection[Invoice]):
    pass


@strawberry.type
class PaymentConnection(Connection[Payment]):
    pass


@strawberry.type(
    description="The agent's key subscription, paid monthly by Key ID: what is owed and when."
)
class Billing:
    account_pk: strawberry.Private[int]
    state: BillingState
    message: str | None = strawberry.field(description="Why, when the state is not ON.")
    currency: str = strawberry.field(description="ISO 4217, lower case (usd).")
    monthly_price: int | None = strawberry.field(description=CENTS + " Null when not billed.")
    balance: int = strawberry.field(
        description=CENTS + " What is owed now; negative: a credit for the next bills."
    )
    due_on: date | None = strawberry.field(
        description="When the oldest unpaid bill was due; all paid: when the next one is."
    )
    autopay: bool = strawberry.field(
        description="Whether the bills are paid automatically every month (a saved card)."
    )

    @strawberry.field(description="Bills, newest first.")
    async def invoices(
        self, info: Info, first: int | None = 12, after: str | None = None
    ) -> InvoiceConnection:
        limit = check_first(first)
        rows = await billing_ops.invoices(self.account_pk, limit + 1, decode_cursor(after))
        paid = await billing_ops.paid_invoice_ids(self.account_pk) if rows else set()
        nodes = [Invoice.from_model(row, row.id in paid) for row in rows]
        return build_connection(
            InvoiceConnection,
            nodes,
            [row.id for row in rows],
            limit,
            after,
            lambda: billing_ops.invoice_count(self.account_pk),
        )

    @strawberry.field(description="Payments, refunds and failed payments, newest first.")
    async def payments(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> PaymentConnection:
        limit = check_first(first)
        rows = await billing_ops.payments(self.account_pk, limit + 1, decode_cursor(after))
        nodes = [Payment.from_model(row) for row in rows]
        return build_connection(
            PaymentConnection,
            nodes,
            [row.id for row in rows],
            limit,
            after,
            lambda: billing_ops.payment_count(self.account_pk),
        )


async def agent_billing(info: Info, account_pk: int) -> Billing:
    """The signed-in agent's own bill (Agent.billing is read by the account alone)."""
    account = info.context.require_account()
    if account.id != account_pk:
        raise forbidden()
    bill = await billing_ops.bill_of(info.context.settings, account)
    return Billing(
        account_pk=account_pk,
        state=bill.state,
        message=billing_ops.state_message(bill.state),
        currency=bill.currency,
        monthly_price=bill.monthly_price,
        balance=bill.balance,
        due_on=bill.due_on,
        autopay=bill.autopay,
    )
