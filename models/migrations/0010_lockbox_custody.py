"""Lockboxes remember, by the server's clock, when their holder took them and when they were
put on their listing, so records uploaded late go to the agent they belong to. For the
lockboxes held or listed already, that is not known: the migration's time stands in, so their
older records uploaded from now on are told to no one rather than perhaps to the wrong agent."""

from datetime import UTC, datetime
from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


async def forward(apps: Any, schema_editor: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0).isoformat(sep=" ")
    client = schema_editor.client
    await client.execute_script(
        f"UPDATE lockbox SET assigned_at = '{now}' WHERE assigned_to_id IS NOT NULL"  # noqa: S608
    )
    await client.execute_script(
        f"UPDATE lockbox SET listed_at = '{now}' WHERE listing_id IS NOT NULL"  # noqa: S608
    )


class Migration(migrations.Migration):
    dependencies = [("models", "0009_push_lanes")]

    operations = [
        ops.AddField(
            model_name="Lockbox",
            name="assigned_at",
            field=fields.DatetimeField(null=True),
        ),
        ops.AddField(
            model_name="Lockbox",
            name="listed_at",
            field=fields.DatetimeField(null=True),
        ),
        ops.RunPython(forward),
    ]
