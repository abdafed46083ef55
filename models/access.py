"""Access events: each use or refused use of a lockbox, as the lockbox recorded it."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.accounts import Account
from models.enums import AccessMethod, AccessOutcome
from models.grants import Grant
from models.listings import Listing, Lockbox


class AccessEvent(Model):
    id = fields.IntField(primary_key=True)
    lockbox: fields.ForeignKeyRelation[Lockbox] = fields.ForeignKeyField(
        "models.Lockbox", related_name="access_events", on_delete=fields.RESTRICT
    )
    # The lockbox's own sequence number; (lockbox, seq) makes uploads idempotent.
    seq = fields.IntField(null=True)
    listing: fields.ForeignKeyNullableRelation[Listing] = fields.ForeignKeyField(
        "models.Listing", related_name="access_events", null=True, on_delete=fields.SET_NULL
    )
    grant: fields.ForeignKeyNullableRelation[Grant] = fields.ForeignKeyField(
        "models.Grant", related_name="access_events", null=True, on_delete=fields.SET_NULL
    )
    # SET_NULL on purpose: the listing agent's record of who entered survives.
    actor: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="access_events", null=True, on_delete=fields.SET_NULL
    )
    actor_name = fields.CharField(max_length=200, default="")
    method = fields.CharEnumField(AccessMethod, max_length=16)
    outcome = fields.CharEnumField(AccessOutcome, max_length=32)
    occurred_at = fields.DatetimeField(db_index=True)
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "access_event"
        indexes = (("actor_id",), ("listing_id",), ("grant_id",))
        unique_together = (("lockbox", "seq"),)
