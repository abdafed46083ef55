"""The transactional outbox: mail, SMS, live events and pushes waiting for delivery."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from models.enums import OutboxChannel, OutboxStatus


class OutboxMessage(Model):
    id = fields.IntField(primary_key=True)
    channel = fields.CharEnumField(OutboxChannel, max_length=8)
    # Who it is for, so deleting an account can delete what is addressed to it.
    account_id = fields.IntField(null=True, db_index=True)
    recipient = fields.CharField(max_length=512, default="")
    payload: dict[str, Any] = fields.JSONField()
    status = fields.CharEnumField(OutboxStatus, max_length=8, default=OutboxStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(db_index=True)
    # A dispatcher claims a row until this time; another may take it after.
    claimed_until = fields.DatetimeField(null=True)
    claimed_by = fields.CharField(max_length=64, null=True)
    last_error = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox"
