"""Listings are known by their number within the association whose MLS numbered them, so two
associations' listing 1001 are two listings. The listings there are take their agent's
association: the only one an import could give them until now."""

from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import UniqueConstraint


async def agents_association(apps: Any, schema_editor: Any) -> None:
    await schema_editor.client.execute_script(
        "UPDATE listing SET association = "
        "(SELECT account.association FROM account WHERE account.id = listing.agent_id)"
    )


class Migration(migrations.Migration):
    dependencies = [("models", "0011_unknown_staff_login")]

    initial = False

    operations = [
        ops.AlterField(
            model_name="Listing",
            name="mls_number",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name="Listing",
            name="association",
            field=fields.CharField(default="", db_default="", max_length=128),
        ),
        ops.RunPython(agents_association),
        ops.AddConstraint(
            model_name="Listing",
            constraint=UniqueConstraint(fields=("mls_number", "association"), name=None),
        ),
    ]
