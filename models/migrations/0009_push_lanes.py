"""Pushes get a channel per service, FCM and APNs, and so a lane each in the outbox: a service
that hangs holds back only its own phones' pushes. The pushes already in the outbox move to the
channel of the service their payload names, the queued ones and the sent ones alike (the
history then counts by service too)."""

from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from models.enums import OutboxChannel

MOVE = {
    "sqlite": "UPDATE outbox SET channel = CASE json_extract(payload, '$.platform')"
    " WHEN 'APNS' THEN 'APNS' ELSE 'FCM' END WHERE channel = 'PUSH'",
    "postgres": "UPDATE outbox SET channel = CASE payload->>'platform'"
    " WHEN 'APNS' THEN 'APNS' ELSE 'FCM' END WHERE channel = 'PUSH'",
}


async def forward(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    await client.execute_script(MOVE[client.capabilities.dialect])


class ChannelValues(ops.AlterField):
    """The column's new values, in the migrations' record of the model only. It stays a
    VARCHAR(8) either way, and Tortoise's AlterField on SQLite would rebuild the outbox table
    without the indexes made by hand (outbox_pending)."""

    async def database_forward(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def database_backward(self, *args: Any, **kwargs: Any) -> None:
        return None


class Migration(migrations.Migration):
    dependencies = [("models", "0008_autopay_price")]

    operations = [
        ChannelValues(
            model_name="OutboxMessage",
            name="channel",
            field=fields.CharEnumField(
                description="EMAIL: EMAIL\nSMS: SMS\nEVENT: EVENT\nFCM: FCM\nAPNS: APNS\nPUSH: PUSH",
                enum_type=OutboxChannel,
                max_length=8,
            ),
        ),
        ops.RunPython(forward),
    ]
