"""Message Center notifications."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.accounts import Account
from models.enums import MessageKind
from models.grants import Grant


class Message(Model):
    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="messages", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(MessageKind, max_length=24)
    title = fields.CharField(max_length=200)
    body = fields.TextField()
    grant: fields.ForeignKeyNullableRelation[Grant] = fields.ForeignKeyField(
        "models.Grant", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    read_at = fields.DatetimeField(null=True)

    class Meta:
        table = "message"
        indexes = (("account_id", "id"),)
