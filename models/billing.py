"""Billing of agents' key subscriptions: bills, payments, Stripe's checkouts and events.

Money is in integer cents. Nothing here holds card data: Stripe's Checkout takes the card,
keybin keeps Stripe's ids and what the money did."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.accounts import Account
from models.enums import PaymentKind, PaymentMethod


class BillingAccount(Model):
    """An agent's subscription: the Stripe customer, autopay, whether billing made it PAST_DUE."""

    id = fields.IntField(primary_key=True)
    account: fields.OneToOneRelation[Account] = fields.OneToOneField(
        "models.Account", related_name="billing", on_delete=fields.CASCADE
    )
    stripe_customer_id = fields.CharField(max_length=255, null=True, unique=True)
    # The Stripe subscription that pays every month (autopay), as its last event left it.
    subscription_id = fields.CharField(max_length=255, null=True)
    subscription_status = fields.CharField(max_length=32, null=True)
    # Stripe's time of the event that set the subscription state: an older event arriving
    # late must not undo a newer one.
    subscription_changed_at = fields.DatetimeField(null=True)
    # What that subscription charges every month, as Stripe last said (NULL: not known yet).
    # Billing's round sets it to the association's price when that changes, and pauses its
    # charging while the association has no price (resumed when one comes back).
    subscription_price_cents = fields.IntField(null=True)
    subscription_paused = fields.BooleanField(default=False, db_default=False)
    # Set when billing took the account from ACTIVE to PAST_DUE: a payment gives back only
    # what billing took (a status the association set stays theirs).
    made_past_due = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "billing_account"


class Invoice(Model):
    """One month of an agent's key subscription, due on the first day of the month."""

    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="invoices", on_delete=fields.CASCADE
    )
    period_start = fields.DateField()
    period_end = fields.DateField()
    amount_cents = fields.IntField()
    currency = fields.CharField(max_length=3)
    due_on = fields.DateField()
    # The Stripe invoice that billed this month when autopay did.
    stripe_invoice_id = fields.CharField(max_length=255, null=True, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Each reminder is claimed by setting its time, in the transaction that queues it: the
    # bill's own, then the look the day after its due date (a notice if it is still unpaid).
    reminded_at = fields.DatetimeField(null=True)
    overdue_checked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "billing_invoice"
        unique_together = (("account", "period_start"),)
        indexes = (("due_on",),)


class Payment(Model):
    """Money received, refunded, or a payment that failed, as Stripe reported it."""

    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="payments", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(PaymentKind, max_length=16)
    method = fields.CharEnumField(PaymentMethod, max_length=16)
    amount_cents = fields.IntField()
    currency = fields.CharField(max_length=3)
    # Stripe's id of the money's movement (a payment intent, an invoice, a charge's refunds,
    # a failed attempt's event): two events telling of one payment record it once.
    reference = fields.CharField(max_length=255, unique=True)
    occurred_at = fields.DatetimeField()
    detail = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "billing_payment"
        indexes = (("account_id", "occurred_at"),)


class CheckoutSession(Model):
    """A Stripe Checkout page made for an agent, from the app or sent by support."""

    # Stripe's own id (cs_...): a webhook about it names it.
    id = fields.CharField(max_length=255, primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="checkout_sessions", on_delete=fields.CASCADE
    )
    amount_cents = fields.IntField()
    autopay = fields.BooleanField(default=False)
    url = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    # The staff member who sent it by SMS or email, when support did.
    staff_id = fields.IntField(null=True)
    completed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "billing_checkout"
        indexes = (("account_id", "created_at"),)


class StripeEvent(Model):
    """A Stripe webhook event handled: written with its effects, so each is applied once."""

    id = fields.CharField(max_length=255, primary_key=True)
    type = fields.CharField(max_length=100)
    account_id = fields.IntField(null=True)
    outcome = fields.CharField(max_length=200)
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "stripe_event"
