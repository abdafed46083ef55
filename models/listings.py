"""Regions, listings and lockboxes ("My Lockboxes")."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.accounts import Account
from models.enums import ListingSource, ListingStatus


class Region(Model):
    code = fields.CharField(max_length=32, primary_key=True)
    name = fields.CharField(max_length=200)
    time_zone = fields.CharField(max_length=64)

    class Meta:
        table = "region"


class Listing(Model):
    id = fields.IntField(primary_key=True)
    agent: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="listings", on_delete=fields.RESTRICT
    )
    mls_number = fields.CharField(max_length=64, null=True)
    # Whose MLS numbered it: associations number their listings independently, so an import
    # finds a listing by (mls_number, association). By hand: its agent's association.
    association = fields.CharField(max_length=128, default="", db_default="")
    source = fields.CharEnumField(ListingSource, max_length=16)
    status = fields.CharEnumField(ListingStatus, max_length=16, default=ListingStatus.ACTIVE)
    line1 = fields.CharField(max_length=200)
    line2 = fields.CharField(max_length=200, null=True)
    city = fields.CharField(max_length=100)
    state = fields.CharField(max_length=50)
    postal_code = fields.CharField(max_length=20)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "listing"
        indexes = (("agent_id",),)
        # mls_number first: addListing and the search look a number up in every association.
        unique_together = (("mls_number", "association"),)


class Lockbox(Model):
    id = fields.IntField(primary_key=True)
    serial_number = fields.CharField(max_length=32, unique=True)
    model = fields.CharField(max_length=64)
    ble = fields.BooleanField(default=True)
    # Base32; the same bytes key HOTP (One Day Codes) and the access-record HMAC.
    secret = fields.CharField(max_length=128)
    assigned_to: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="lockboxes", null=True, on_delete=fields.SET_NULL
    )
    listing: fields.OneToOneNullableRelation[Listing] = fields.OneToOneField(
        "models.Listing", related_name="lockbox", null=True, on_delete=fields.SET_NULL
    )
    on_listing_since = fields.DateField(null=True)  # as the agent states it, for people
    # When the holder took it, and when it was put on its listing, by the server's clock: a
    # record uploaded late belongs to whoever held it at the record's time, and these say
    # whether that was the present holder. Null: not held (not on a listing), or not known.
    assigned_at = fields.DatetimeField(null=True)
    listed_at = fields.DatetimeField(null=True)
    region: fields.ForeignKeyNullableRelation[Region] = fields.ForeignKeyField(
        "models.Region", related_name="lockboxes", null=True, on_delete=fields.SET_NULL
    )
    last_access_at = fields.DatetimeField(null=True)

    class Meta:
        table = "lockbox"
        indexes = (("assigned_to_id",),)
