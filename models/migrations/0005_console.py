from tortoise import migrations
from tortoise.migrations import operations as ops
from models.enums import StaffAction
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index
from typing import Any


# The console search's indexes, written by hand like 0002's (Tortoise has no expression or
# trigram indexes): a phone's last 4 and last 7 digits (exact lookups on one expression that
# both databases share), and on PostgreSQL pg_trgm behind an email substring search. Writes
# need no code: the database keeps its indexes in step with every insert, update and wipe.
LAST_DIGITS_INDEXES = [
    f"CREATE INDEX IF NOT EXISTS account_phone_last{n} "
    f"ON account ((substr(phone, length(phone) - {n - 1})))"
    for n in (4, 7)
]
POSTGRES_EMAIL_TRIGRAMS = (
    "CREATE INDEX IF NOT EXISTS account_email_trgm ON account USING gin (email gin_trgm_ops)"
)


async def search_indexes(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    statements = list(LAST_DIGITS_INDEXES)
    if client.capabilities.dialect == "postgres":
        statements.append(POSTGRES_EMAIL_TRIGRAMS)  # pg_trgm: created by 0002
    for statement in statements:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [('models', '0004_access_chain')]

    initial = False

    operations = [
        ops.CreateModel(
            name='StaffAudit',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name='audit', on_delete=OnDelete.SET_NULL)),
                ('staff_label', fields.CharField(default='', max_length=254)),
                ('action', fields.CharEnumField(description='SIGNED_IN: SIGNED_IN\nSIGN_IN_FAILED: SIGN_IN_FAILED\nSIGNED_OUT: SIGNED_OUT\nPASSWORD_CHANGED: PASSWORD_CHANGED\nSEARCHED: SEARCHED\nACCOUNT_VIEWED: ACCOUNT_VIEWED\nEMAIL_CHANGED: EMAIL_CHANGED\nANSWERS_REVEALED: ANSWERS_REVEALED\nDEVICE_REMOVED: DEVICE_REMOVED\nACCOUNT_DELETED: ACCOUNT_DELETED\nSTAFF_DISABLED: STAFF_DISABLED\nSTAFF_ENABLED: STAFF_ENABLED\nAUDIT_EXPORTED: AUDIT_EXPORTED', enum_type=StaffAction, max_length=32)),
                ('account_id', fields.IntField(null=True)),
                ('target_staff_id', fields.IntField(null=True)),
                ('detail', fields.CharField(default='', max_length=500)),
                ('client_address', fields.CharField(null=True, max_length=64)),
            ],
            options={'table': 'staff_audit', 'app': 'models', 'indexes': [Index(fields=['at']), Index(fields=['staff_id', 'at']), Index(fields=['account_id', 'at']), Index(fields=['action', 'at'])], 'pk_attr': 'id', 'table_description': 'One staff action in the console: who, what, which account, when and from where.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Staff',
            name='oidc_subject',
            field=fields.CharField(null=True, unique=True, max_length=255),
        ),
        ops.RunPython(search_indexes),
    ]
