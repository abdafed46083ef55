"""Wrong console sign-ins at an address with no console password are counted and locked out as
a member's are, so the lockout answers the same whoever the address is."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0010_lockbox_custody")]

    operations = [
        ops.CreateModel(
            name="UnknownStaffLogin",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("key", fields.CharField(unique=True, max_length=64)),
                ("failed_logins", fields.IntField(default=0)),
                (
                    "locked_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "unknown_staff_login",
                "app": "models",
                "pk_attr": "id",
                "table_description": (
                    "Wrong console sign-ins at an address with no console password, locked out "
                    "as a member's."
                ),
            },
            bases=["Model"],
        ),
    ]
