"""Accounts (agents and contractors) and what hangs off them: devices, sessions, secrets."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.enums import (
    AccountKind,
    AccountStatus,
    ContractorRole,
    PushPlatform,
    VerificationPurpose,
)


class Account(Model):
    """A member agent or a contractor. Personal fields are blanked when it is deleted."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(AccountKind, max_length=16)
    # Agents only: the 9-digit Key ID, and where the roster row came from.
    key_id = fields.CharField(max_length=9, null=True, unique=True)
    mls_id = fields.CharField(max_length=64, null=True)
    association = fields.CharField(max_length=128, default="")
    first_name = fields.CharField(max_length=100, default="")
    last_name = fields.CharField(max_length=100, default="")
    # Stored lower-cased; not unique: one person may hold several agent accounts.
    email = fields.CharField(max_length=254, null=True, db_index=True)
    phone = fields.CharField(max_length=20, null=True, db_index=True)
    # Whether the owner proved the mailbox: an invitation token, a confirmation link, or
    # the roster (agents). Grants addressed to the email attach only while it is true.
    email_verified = fields.BooleanField(default=False, db_default=False)
    status = fields.CharEnumField(AccountStatus, max_length=16, default=AccountStatus.ACTIVE)
    role = fields.CharEnumField(ContractorRole, max_length=32, null=True)
    company = fields.CharField(max_length=200, null=True)
    password_hash = fields.CharField(max_length=255, null=True)
    pin_hash = fields.CharField(max_length=255, null=True)
    failed_logins = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    failed_pins = fields.IntField(default=0)
    pin_locked_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    deleted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "account"
        unique_together = (("association", "mls_id"),)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class SecurityAnswer(Model):
    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="security_answers", on_delete=fields.CASCADE
    )
    question = fields.CharField(max_length=255)
    answer_hash = fields.CharField(max_length=255)
    # Support reads answers back to verify a caller, so they are kept encrypted
    # (Fernet under SECRET_KEY) beside the hash; both are wiped with the account.
    answer_sealed = fields.TextField(default="")

    class Meta:
        table = "security_answer"


# The id a phone chooses for itself; longer ones are refused at sign-in and found nowhere.
MAX_DEVICE_ID = 128


class Device(Model):
    """One registration of an app installation, DEVICE_LIMIT caps them per account."""

    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="devices", on_delete=fields.CASCADE
    )
    device_id = fields.CharField(max_length=MAX_DEVICE_ID)
    name = fields.CharField(max_length=100)
    public_key = fields.CharField(max_length=64, null=True)
    registered_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "device"
        unique_together = (("account", "device_id"),)


class StepUpKey(Model):
    """A device key its holder turned on, with the PIN, for confirming by Face ID or fingerprint."""

    id = fields.IntField(primary_key=True)
    device: fields.OneToOneRelation[Device] = fields.OneToOneField(
        "models.Device", related_name="step_up_key", on_delete=fields.CASCADE
    )
    # The key as it was turned on: a sign-in that registers another key for the device turns
    # it off, so knowing the password is never enough to confirm without the PIN.
    public_key = fields.CharField(max_length=64)
    enabled_at = fields.DatetimeField()

    class Meta:
        table = "step_up_key"


class StepUpChallenge(Model):
    """A one-time challenge the device signs with its registered key instead of typing the PIN.

    Bound to the account, the device and the operation it confirms, short-lived, and spent
    by the first attempt that names it, right or wrong.
    """

    id = fields.UUIDField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="step_up_challenges", on_delete=fields.CASCADE
    )
    device: fields.ForeignKeyRelation[Device] = fields.ForeignKeyField(
        "models.Device", related_name="step_up_challenges", on_delete=fields.CASCADE
    )
    # 32 random bytes, base64url: worth nothing without the device's private key.
    nonce = fields.CharField(max_length=43)
    operation = fields.CharField(max_length=32)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "step_up_challenge"
        indexes = (("account_id",), ("device_id",))


class PushToken(Model):
    id = fields.IntField(primary_key=True)
    device: fields.ForeignKeyRelation[Device] = fields.ForeignKeyField(
        "models.Device", related_name="push_tokens", on_delete=fields.CASCADE
    )
    platform = fields.CharEnumField(PushPlatform, max_length=8)
    token = fields.CharField(max_length=512)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "push_token"
        unique_together = (("device", "platform"),)


class Session(Model):
    """A bearer token, stored only as its SHA-256."""

    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="sessions", on_delete=fields.CASCADE
    )
    device: fields.ForeignKeyRelation[Device] = fields.ForeignKeyField(
        "models.Device", related_name="sessions", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "session"
        indexes = (("account_id",),)


class PasswordReset(Model):
    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="password_resets", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "password_reset"


class Verification(Model):
    """An SMS code in flight: contractor signup or a phone change."""

    id = fields.UUIDField(primary_key=True)
    purpose = fields.CharEnumField(VerificationPurpose, max_length=16)
    account: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="verifications", null=True, on_delete=fields.CASCADE
    )
    email = fields.CharField(max_length=254, null=True, db_index=True)
    phone = fields.CharField(max_length=20)
    code_hash = fields.CharField(max_length=255)
    attempts = fields.IntField(default=0)
    sends = fields.IntField(default=1)
    invitation_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_sent_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    verified_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "verification"


class Invitation(Model):
    """Sent by grantAccess to an email with no account. Its token binds the signup."""

    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    email = fields.CharField(max_length=254, null=True, db_index=True)
    invited_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="invitations", null=True, on_delete=fields.SET_NULL
    )
    # The grant it was mailed for: its page shows that grant and ends with it. Null on rows
    # from before it was kept (their page finds the agent's waiting grants to the address).
    grant_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    accepted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "invitation"


class EmailConfirmation(Model):
    """A single-use link mailed to an address an account claims: following it proves it."""

    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="email_confirmations", on_delete=fields.CASCADE
    )
    # The address the link proves: a later change of email makes an older link useless.
    email = fields.CharField(max_length=254)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "email_confirmation"


class AccountEvent(Model):
    """The account event log. Entries outlive the account personal data."""

    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="events", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=40)
    detail = fields.CharField(max_length=500, default="")
    staff_id = fields.IntField(null=True)
    staff_name = fields.CharField(max_length=200, null=True)
    client_address = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "account_event"
        indexes = (("account_id", "id"),)
