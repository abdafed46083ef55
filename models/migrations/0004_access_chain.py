from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index
from typing import Any
from uuid import uuid4

# One contractor per address, enforced by the database so two signups racing for one email
# cannot both win (agents may share an address between linked accounts). Deleted accounts
# hold NULL. Roster agents' addresses are the association's: proven. A contractor is proven
# where an invitation to its address was accepted; any other keeps to the new rules.
STATEMENTS = [
    "CREATE UNIQUE INDEX IF NOT EXISTS account_contractor_email"
    " ON account (email) WHERE kind = 'CONTRACTOR'",
    "UPDATE account SET email_verified = TRUE WHERE kind = 'AGENT' AND email IS NOT NULL",
    """UPDATE account SET email_verified = TRUE WHERE kind = 'CONTRACTOR' AND email IN (
        SELECT email FROM invitation WHERE accepted_at IS NOT NULL)""",
]


async def forward(apps: Any, schema_editor: Any) -> None:
    for statement in STATEMENTS:
        await schema_editor.client.execute_script(statement)

class Migration(migrations.Migration):
    dependencies = [('models', '0003_foreign_key_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ConsoleSession',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', db_constraint=True, to_field='id', related_name='console_sessions', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('client_address', fields.CharField(null=True, max_length=64)),
            ],
            options={'table': 'console_session', 'app': 'models', 'indexes': [Index(fields=['staff_id'])], 'pk_attr': 'id', 'table_description': 'A signed-in console session: the cookie holds only its token, the row is the truth.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EmailConfirmation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='email_confirmations', on_delete=OnDelete.CASCADE)),
                ('email', fields.CharField(max_length=254)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'email_confirmation', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A single-use link mailed to an address an account claims: following it proves it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RateCounter',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(max_length=255)),
                ('window', fields.BigIntField()),
                ('hits', fields.IntField(default=0)),
            ],
            options={'table': 'rate_counter', 'app': 'models', 'unique_together': (('key', 'window'),), 'indexes': [Index(fields=['window'])], 'pk_attr': 'id', 'table_description': 'Hits of one (action, subject) key within one fixed window.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Account',
            name='email_verified',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.RunPython(forward),
        # The rows still to deliver, by channel and age: what /metrics reads at every scrape,
        # without walking the outbox's history of sent rows.
        ops.RunSQL(
            "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (channel, created_at)"
            " WHERE status = 'PENDING'",
            reverse_sql="DROP INDEX IF EXISTS outbox_pending",
        ),
        # Serials are kept canonical (ble.serials.normalize_serial: upper case, no spaces), so a
        # lookup of whatever was typed finds a lockbox imported in another spelling.
        ops.RunSQL(
            "UPDATE lockbox SET serial_number = UPPER(REPLACE(serial_number, ' ', ''))"
            " WHERE serial_number <> UPPER(REPLACE(serial_number, ' ', ''))"
        ),
        # A listing's One Day Codes, newest first: its access history pages through them.
        ops.AddIndex(
            model_name='OneDayCodeIssue',
            index=Index(fields=['listing_id', 'id']),
        ),
        # The grant an invitation was mailed for (its page shows it and ends with it).
        ops.AddField(
            model_name='Invitation',
            name='grant_id',
            field=fields.IntField(null=True),
        ),
        ops.CreateModel(
            name='StepUpKey',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('device', fields.OneToOneField('models.Device', source_field='device_id', db_constraint=True, to_field='id', related_name='step_up_key', on_delete=OnDelete.CASCADE)),
                ('public_key', fields.CharField(max_length=64)),
                ('enabled_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'step_up_key', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A device key its holder turned on, with the PIN, for confirming by Face ID or fingerprint.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StepUpChallenge',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='step_up_challenges', on_delete=OnDelete.CASCADE)),
                ('device', fields.ForeignKeyField('models.Device', source_field='device_id', db_constraint=True, to_field='id', related_name='step_up_challenges', on_delete=OnDelete.CASCADE)),
                ('nonce', fields.CharField(max_length=43)),
                ('operation', fields.CharField(max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'step_up_challenge', 'app': 'models', 'indexes': [Index(fields=['account_id']), Index(fields=['device_id'])], 'pk_attr': 'id', 'table_description': 'A one-time challenge the device signs with its registered key instead of typing the PIN.'},
            bases=['Model'],
        ),
    ]
