"""Confirming a PIN-protected operation: the PIN, or the device's signature over a challenge."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tortoise.transactions import in_transaction

from ble.b64 import b64url_decode, b64url_encode
from core import clock
from core.errors import DomainError, invalid_input
from models.accounts import Account, Device, StepUpChallenge, StepUpKey
from models.enums import AccountEventKind
from resolvers import events
from resolvers.auth import (
    PIN_LOCKOUT,
    attempt_succeeded,
    check_pin,
    register_failed_pin,
    take_attempt,
)

CHALLENGE_LIFETIME = timedelta(minutes=2)
NONCE_BYTES = 32
SIGNATURE_BYTES = 64
LOCKED = "Too many failed confirmations: try again in 15 minutes."


class Operation(StrEnum):
    """What a step-up confirms; the value is the mutation's name, part of the signed text."""

    GRANT_ACCESS = "grantAccess"
    GENERATE_ONE_DAY_CODE = "generateOneDayCode"


def signing_input(challenge_id: str, nonce: str, operation: Operation) -> bytes:
    """What the device signs: naming the challenge and the operation, a signature counts once,
    for one thing."""
    return f"keybin-step-up:{challenge_id}:{nonce}:{operation.value}".encode()


@dataclass(frozen=True)
class Challenge:
    id: UUID
    nonce: str
    operation: Operation
    expires_at: datetime

    @property
    def signing_input(self) -> bytes:
        return signing_input(str(self.id), self.nonce, self.operation)


@dataclass(frozen=True)
class DeviceSignature:
    challenge_id: str
    signature: str  # Ed25519 over signing_input, base64url without padding
    device_pk: int  # the signed-in session's device: only its key counts


@dataclass(frozen=True)
class Confirmation:
    """How the user confirmed: the PIN, or Face ID or a fingerprint unlocking the device key."""

    pin: str | None = None
    device: DeviceSignature | None = None


async def enable(account: Account, device_pk: int, pin: str) -> None:
    """Turn on confirming by this device: the PIN, once, vouches for the key it registered."""
    device = await _device_with_key(account, device_pk)
    await check_pin(account, pin, "pin")
    now = clock.now()
    async with in_transaction():
        enabled, created = await StepUpKey.get_or_create(
            device_id=device.id, defaults={"public_key": device.public_key, "enabled_at": now}
        )
        if not created:
            await StepUpKey.filter(id=enabled.id).update(
                public_key=device.public_key, enabled_at=now
            )
        await events.record(account, AccountEventKind.STEP_UP_ENABLED, f"device {device.name}")


async def begin(account: Account, device_pk: int, operation: Operation) -> Challenge:
    """A fresh challenge for this account's device, to be signed within two minutes."""
    if await _enabled_key(account.id, device_pk) is None:
        await _device_with_key(account, device_pk)
        raise DomainError(
            "DEVICE_NOT_REGISTERED",
            "Turn on confirming with Face ID or a fingerprint on this device first: "
            "it asks for your PIN once.",
        )
    await account.refresh_from_db(fields=["pin_locked_until"])
    _refuse_while_locked(account, None)
    now = clock.now()
    # Spent or not, an expired challenge is worth nothing: each new one clears them away.
    await StepUpChallenge.filter(account_id=account.id, expires_at__lte=now).delete()
    row = await StepUpChallenge.create(
        account_id=account.id,
        device_id=device_pk,
        nonce=b64url_encode(secrets.token_bytes(NONCE_BYTES)),
        operation=operation.value,
        expires_at=now + CHALLENGE_LIFETIME,
    )
    return Challenge(row.id, row.nonce, operation, row.expires_at)


async def _device_with_key(account: Account, device_pk: int) -> Device:
    device = await Device.get_or_none(id=device_pk, account_id=account.id)
    if device is None or _public_key(device.public_key or "") is None:
        raise DomainError(
            "DEVICE_NOT_REGISTERED", "This device has no key on record: sign in on it again."
        )
    return device


async def confirm(account: Account, confirmation: Confirmation, operation: Operation) -> None:
    """Before the operation and outside its transaction, so a failure is counted although the
    operation changes nothing; PIN and device failures share one lockout."""
    pin = confirmation.pin or None  # an app confirming by device may send an empty PIN
    if confirmation.device is None:
        if pin is None:
            raise invalid_input(
                "Confirm with your PIN, or with Face ID or a fingerprint on this device.", "pin"
            )
        await check_pin(account, pin, "pin")
        return
    if pin is not None:
        raise invalid_input("Confirm with your PIN or with this device, not both.", "stepUp")
    await _check_device(account, confirmation.device, operation)


async def _check_device(account: Account, signed: DeviceSignature, operation: Operation) -> None:
    path = ["input", "stepUp"]
    # Counted before it is checked, as a PIN is: no burst gets past the lockout.
    attempt = await take_attempt(account.id, PIN_LOCKOUT)
    if attempt is None:
        raise DomainError("TOO_MANY_ATTEMPTS", LOCKED, path)
    if await _signature_holds(account, signed, operation):
        await attempt_succeeded(attempt)
        return
    if await register_failed_pin(account, attempt, "device confirmation refused"):
        raise DomainError("TOO_MANY_ATTEMPTS", LOCKED, path)
    raise DomainError(
        "INVALID_PIN", "This device's confirmation was not accepted: confirm again.", path
    )


def _refuse_while_locked(account: Account, path: list[str] | None) -> None:
    if account.pin_locked_until and account.pin_locked_until > clock.now():
        raise DomainError("TOO_MANY_ATTEMPTS", LOCKED, path)


async def _signature_holds(account: Account, signed: DeviceSignature, operation: Operation) -> bool:
    try:
        challenge_id = UUID(signed.challenge_id)
    except ValueError:
        return False
    try:
        signature = b64url_decode(signed.signature)
    except ValueError:
        signature = b""
    now = clock.now()
    # The first attempt spends the challenge, right or wrong; a conditional update, so of two
    # concurrent uses only one gets it, on either database.
    spent = await StepUpChallenge.filter(
        id=challenge_id,
        account_id=account.id,
        device_id=signed.device_pk,
        operation=operation.value,
        used_at__isnull=True,
        expires_at__gt=now,
    ).update(used_at=now)
    if not spent or len(signature) != SIGNATURE_BYTES:
        return False
    challenge = await StepUpChallenge.get(id=challenge_id)
    key = await _enabled_key(account.id, signed.device_pk)
    if key is None:
        return False
    try:
        key.verify(signature, signing_input(str(challenge_id), challenge.nonce, operation))
    except InvalidSignature:
        return False
    return True


async def _enabled_key(account_pk: int, device_pk: int) -> Ed25519PublicKey | None:
    """The device's key, if confirming by it was turned on for the key it has now."""
    enabled = await StepUpKey.get_or_none(device_id=device_pk, device__account_id=account_pk)
    if enabled is None:
        return None
    device = await Device.get(id=device_pk)
    if device.public_key != enabled.public_key:
        return None
    return _public_key(enabled.public_key)


def _public_key(text: str) -> Ed25519PublicKey | None:
    """A raw Ed25519 public key, base64url (as signIn takes it and credentials carry it)."""
    try:
        raw = b64url_decode(text)
        return Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else None
    except ValueError:
        return None
