"""Grants of time-windowed lockbox access, and One Day Codes issued."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.accounts import Account
from models.listings import Listing, Lockbox


class Grant(Model):
    id = fields.IntField(primary_key=True)
    listing: fields.ForeignKeyRelation[Listing] = fields.ForeignKeyField(
        "models.Listing", related_name="grants", on_delete=fields.RESTRICT
    )
    lockbox: fields.ForeignKeyRelation[Lockbox] = fields.ForeignKeyField(
        "models.Lockbox", related_name="grants", on_delete=fields.RESTRICT
    )
    granted_by: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="grants_given", on_delete=fields.RESTRICT
    )
    # Blanked when the grantee deletes their account.
    grantee_email = fields.CharField(max_length=254, null=True, db_index=True)
    grantee: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="grants_received", null=True, on_delete=fields.SET_NULL
    )
    starts_at = fields.DatetimeField(db_index=True)
    ends_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Weekly hours: ISO weekdays "1,2" and HH:MM in the region's zone; null = whole window.
    rec_weekdays = fields.CharField(max_length=20, null=True)
    rec_start = fields.CharField(max_length=5, null=True)
    rec_end = fields.CharField(max_length=5, null=True)
    idempotency_key = fields.CharField(max_length=128, null=True)
    starting_notified_at = fields.DatetimeField(null=True)

    class Meta:
        table = "grant"
        indexes = (("listing_id", "id"), ("lockbox_id",), ("grantee_id",))
        unique_together = (("granted_by", "idempotency_key"),)


class OneDayCodeIssue(Model):
    """A One Day Code handed out. The code itself is derived, never stored."""

    id = fields.IntField(primary_key=True)
    lockbox: fields.ForeignKeyRelation[Lockbox] = fields.ForeignKeyField(
        "models.Lockbox", related_name="one_day_codes", on_delete=fields.CASCADE
    )
    agent: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="one_day_codes", on_delete=fields.CASCADE
    )
    listing_id = fields.IntField(null=True)
    valid_on = fields.DateField()
    issued_to = fields.CharField(max_length=200, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "one_day_code"
        # A listing's access history pages through its codes, newest first.
        indexes = (("listing_id", "id"),)
