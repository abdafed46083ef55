"""Autopay follows the association's price: what each agent's Stripe subscription charges
every month, so billing's round can tell when the price has moved away from it (NULL for the
subscriptions already there: the round reads their amount from Stripe once), and whether the
round paused its charging because the association has no price any more."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0007_email_search")]

    operations = [
        ops.AddField(
            model_name="BillingAccount",
            name="subscription_price_cents",
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name="BillingAccount",
            name="subscription_paused",
            field=fields.BooleanField(default=False, db_default=False),
        ),
    ]
