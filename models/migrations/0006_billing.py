from tortoise import migrations
from tortoise.migrations import operations as ops
from models.enums import PaymentKind, PaymentMethod, StaffAction
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


# Billing of agents' key subscriptions (models/billing.py): new tables only, so the accounts
# already there are untouched; each agent's billing row is made when billing first looks at it.
class Migration(migrations.Migration):
    dependencies = [('models', '0005_console')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BillingAccount',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.OneToOneField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='billing', on_delete=OnDelete.CASCADE)),
                ('stripe_customer_id', fields.CharField(null=True, unique=True, max_length=255)),
                ('subscription_id', fields.CharField(null=True, max_length=255)),
                ('subscription_status', fields.CharField(null=True, max_length=32)),
                ('subscription_changed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('made_past_due', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'billing_account', 'app': 'models', 'pk_attr': 'id', 'table_description': "An agent's subscription: the Stripe customer, autopay, whether billing made it PAST_DUE."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Invoice',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='invoices', on_delete=OnDelete.CASCADE)),
                ('period_start', fields.DateField()),
                ('period_end', fields.DateField()),
                ('amount_cents', fields.IntField()),
                ('currency', fields.CharField(max_length=3)),
                ('due_on', fields.DateField()),
                ('stripe_invoice_id', fields.CharField(null=True, unique=True, max_length=255)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('reminded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('overdue_checked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'billing_invoice', 'app': 'models', 'unique_together': (('account', 'period_start'),), 'indexes': [Index(fields=['due_on'])], 'pk_attr': 'id', 'table_description': "One month of an agent's key subscription, due on the first day of the month."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Payment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='payments', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='PAYMENT: PAYMENT\nREFUND: REFUND\nFAILED: FAILED', enum_type=PaymentKind, max_length=16)),
                ('method', fields.CharEnumField(description='CHECKOUT: CHECKOUT\nAUTOPAY: AUTOPAY', enum_type=PaymentMethod, max_length=16)),
                ('amount_cents', fields.IntField()),
                ('currency', fields.CharField(max_length=3)),
                ('reference', fields.CharField(unique=True, max_length=255)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('detail', fields.CharField(default='', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'billing_payment', 'app': 'models', 'indexes': [Index(fields=['account_id', 'occurred_at'])], 'pk_attr': 'id', 'table_description': 'Money received, refunded, or a payment that failed, as Stripe reported it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CheckoutSession',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=255)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='checkout_sessions', on_delete=OnDelete.CASCADE)),
                ('amount_cents', fields.IntField()),
                ('autopay', fields.BooleanField(default=False)),
                ('url', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('staff_id', fields.IntField(null=True)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'billing_checkout', 'app': 'models', 'indexes': [Index(fields=['account_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'A Stripe Checkout page made for an agent, from the app or sent by support.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StripeEvent',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=255)),
                ('type', fields.CharField(max_length=100)),
                ('account_id', fields.IntField(null=True)),
                ('outcome', fields.CharField(max_length=200)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'stripe_event', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A Stripe webhook event handled: written with its effects, so each is applied once.'},
            bases=['Model'],
        ),
        # The audit trail's new action (support sent a payment link): a value, no column change.
        ops.AlterField(
            model_name='StaffAudit',
            name='action',
            field=fields.CharEnumField(description='SIGNED_IN: SIGNED_IN\nSIGN_IN_FAILED: SIGN_IN_FAILED\nSIGNED_OUT: SIGNED_OUT\nPASSWORD_CHANGED: PASSWORD_CHANGED\nSEARCHED: SEARCHED\nACCOUNT_VIEWED: ACCOUNT_VIEWED\nEMAIL_CHANGED: EMAIL_CHANGED\nANSWERS_REVEALED: ANSWERS_REVEALED\nDEVICE_REMOVED: DEVICE_REMOVED\nACCOUNT_DELETED: ACCOUNT_DELETED\nSTAFF_DISABLED: STAFF_DISABLED\nSTAFF_ENABLED: STAFF_ENABLED\nAUDIT_EXPORTED: AUDIT_EXPORTED\nPAYMENT_LINK_SENT: PAYMENT_LINK_SENT', enum_type=StaffAction, max_length=32),
        ),
    ]
