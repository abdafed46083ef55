"""Support-console staff: password + TOTP, roles SUPPORT and SYSADMIN."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.enums import StaffAction, StaffRole


class Staff(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)
    name = fields.CharField(max_length=200, default="")
    role = fields.CharEnumField(StaffRole, max_length=16)
    password_hash = fields.CharField(max_length=255)
    totp_secret = fields.CharField(max_length=64)
    must_change_password = fields.BooleanField(default=True)
    failed_logins = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    last_totp_step = fields.BigIntField(default=0)
    disabled = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    # The company identity provider's subject for this member, bound at the first sign-in
    # through it: later sign-ins must carry the same one, whatever the email claim says.
    oidc_subject = fields.CharField(max_length=255, null=True, unique=True)

    class Meta:
        table = "staff"


class UnknownStaffLogin(Model):
    """Wrong console sign-ins at an address with no console password, locked out as a member's.

    The address is no member's, or a member's who signs in through the company: counted the
    same way, it is answered the same way. The key is a keyed digest of the address as it is
    looked up, never the address itself."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=64, unique=True)
    failed_logins = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)

    class Meta:
        table = "unknown_staff_login"


class ConsoleSession(Model):
    """A signed-in console session: the cookie holds only its token, the row is the truth."""

    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="console_sessions", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()  # the absolute end, whatever the activity
    client_address = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "console_session"
        indexes = (("staff_id",),)


class StaffAudit(Model):
    """One staff action in the console: who, what, which account, when and from where.

    The account is a plain number, not a foreign key: the trail outlives the account, and a
    deleted account's stripped row (its tombstone) is still found by it.
    """

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField()
    staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="audit", null=True, on_delete=fields.SET_NULL
    )
    # Who acted as shown then (a failed sign-in names the address that was typed, cut short).
    staff_label = fields.CharField(max_length=254, default="")
    action = fields.CharEnumField(StaffAction, max_length=32)
    account_id = fields.IntField(null=True)
    target_staff_id = fields.IntField(null=True)
    detail = fields.CharField(max_length=500, default="")
    client_address = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "staff_audit"
        indexes = (("at",), ("staff_id", "at"), ("account_id", "at"), ("action", "at"))
