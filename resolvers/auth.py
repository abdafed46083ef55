"""Sign-in, sessions and devices, password reset, and the PIN."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from core import clock
from core.errors import DomainError, invalid_input
from core.security import (
    check_password_policy,
    check_pin_format,
    hash_secret_async,
    new_token,
    token_digest,
    verify_secret_async,
)
from models.accounts import MAX_DEVICE_ID, Account, Device, PasswordReset, PushToken, Session
from models.enums import AccountEventKind, StaffAction
from models.prepared import get_with_related
from notify import outbox, sessions
from resolvers import audit, events
from resolvers.accounts import named_by_email
from resolvers.events import SELF, Actor
from settings import Settings

MAX_FAILED_LOGINS = 5
MAX_FAILED_PINS = 3
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(days=30)
RESET_LIFETIME = timedelta(hours=1)
RESET_THROTTLE = timedelta(minutes=1)
KEY_ID = re.compile(r"[0-9]{9}")  # not \d, which takes any script's digits


@dataclass(frozen=True)
class SignedIn:
    token: str
    account: Account
    device: Device


@dataclass(frozen=True)
class Authenticated:
    account: Account
    session: Session


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def accounts_for_login(login: str) -> list[Account]:
    """The live accounts a login (Key ID or email) names: several when agents share an email."""
    login = login.strip()
    if len(login) > 254:
        return []  # longer than any email (the ORM refuses to look it up): nobody's login
    query = Account.filter(deleted_at__isnull=True)
    if KEY_ID.fullmatch(login):
        return await query.filter(key_id=login)
    return await query.filter(named_by_email(normalize_email(login))).order_by("id")


async def sign_in(
    settings: Settings,
    login: str,
    password: str,
    device_id: str,
    device_name: str,
    public_key: str | None,
    client_address: str | None = None,
) -> SignedIn:
    if not device_id.strip() or len(device_id) > MAX_DEVICE_ID:
        raise invalid_input(f"A device id of 1-{MAX_DEVICE_ID} characters is required.", "deviceId")
    account = await _check_password(login, password, Actor(client_address=client_address))
    device = await _register_device(settings, account, device_id, device_name, public_key)
    token = new_token()
    async with in_transaction():
        await Session.create(
            token_hash=token_digest(token),
            account=account,
            device=device,
            expires_at=clock.now() + SESSION_LIFETIME,
        )
        await Account.filter(id=account.id).update(failed_logins=0)
        await events.record(account, AccountEventKind.SIGNED_IN, f"device {device.name}")
    return SignedIn(token=token, account=account, device=device)


async def _check_password(login: str, password: str, actor: Actor) -> Account:
    candidates = await accounts_for_login(login)
    if not candidates:
        await verify_secret_async(None, password)  # same work, same timing, as a real check
        raise DomainError("INVALID_CREDENTIALS", "Wrong login or password.")
    now = clock.now()
    for account in candidates:
        if account.locked_until and account.locked_until > now:
            continue
        if await verify_secret_async(account.password_hash, password):
            return account
    locked = [a for a in candidates if a.locked_until and a.locked_until > now]
    if len(locked) == len(candidates):
        raise DomainError("ACCOUNT_LOCKED", "Too many wrong passwords: try again in 15 minutes.")
    for account in candidates:
        if account not in locked:
            await register_failed_password(account, actor)
    raise DomainError("INVALID_CREDENTIALS", "Wrong login or password.")


async def register_failed_password(account: Account, actor: Actor = SELF) -> None:
    """Count a wrong password; the fifth in a row locks sign-in for 15 minutes."""
    await Account.filter(id=account.id).update(failed_logins=F("failed_logins") + 1)
    await account.refresh_from_db(fields=["failed_logins"])
    await events.record(account, AccountEventKind.SIGN_IN_FAILED, "wrong password", actor)
    if account.failed_logins >= MAX_FAILED_LOGINS:
        await Account.filter(id=account.id).update(
            failed_logins=0, locked_until=clock.now() + LOCKOUT
        )
        await events.record(account, AccountEventKind.ACCOUNT_LOCKED, "5 wrong passwords", actor)


async def check_password_of(account: Account, password: str, *field: str) -> None:
    """Re-authentication for sensitive changes; wrong answers count toward the lockout."""
    if account.locked_until and account.locked_until > clock.now():
        raise DomainError("ACCOUNT_LOCKED", "Too many wrong passwords: try again in 15 minutes.")
    if not await verify_secret_async(account.password_hash, password):
        await register_failed_password(account)
        raise DomainError("INVALID_CREDENTIALS", "The password is not right.", ["input", *field])


async def _register_device(
    settings: Settings, account: Account, device_id: str, name: str, public_key: str | None
) -> Device:
    device = await Device.get_or_none(account=account, device_id=device_id)
    name = name.strip()[:100] or "Device"
    if device is not None:
        device.name = name
        device.last_seen_at = clock.now()
        if public_key:
            device.public_key = public_key
        await device.save(update_fields=["name", "last_seen_at", "public_key"])
        return device
    if await Device.filter(account=account).count() >= settings.device_limit:
        raise DomainError(
            "DEVICE_LIMIT_REACHED",
            f"This account already has {settings.device_limit} registered devices: "
            "remove one, or call support.",
        )
    async with in_transaction():
        device = await Device.create(
            account=account, device_id=device_id, name=name, public_key=public_key
        )
        await events.record(account, AccountEventKind.DEVICE_REGISTERED, f"device {name}")
    return device


async def authenticate(token: str) -> Authenticated | None:
    session = await get_with_related(Session, "account", "token_hash", token_digest(token))
    if session is None or session.expires_at <= clock.now():
        return None
    if session.account.deleted_at is not None:
        return None
    return Authenticated(account=session.account, session=session)


async def sign_out(auth: Authenticated) -> None:
    async with sessions.ending() as ending:
        # Signing out of a device stops pushes to it as well.
        await PushToken.filter(device_id=auth.session.device_id).delete()  # type: ignore[attr-defined]
        await Session.filter(id=auth.session.id).delete()
        await events.record(auth.account, AccountEventKind.SIGNED_OUT)
        ending.sessions(auth.account.id, [auth.session.id])


async def remove_device(account: Account, device_pk: int, actor: Actor = SELF) -> None:
    device = await Device.get_or_none(id=device_pk, account=account)
    if device is None:
        raise DomainError("NOT_FOUND", "No such device on this account.", ["input", "deviceId"])
    async with sessions.ending() as ending:
        signed_in = [s.id for s in await Session.filter(device_id=device.id).only("id")]
        await device.delete()  # sessions and push tokens go with it
        detail = f"device {device.name}"
        await events.record(account, AccountEventKind.DEVICE_REMOVED, detail, actor)
        await audit.record_by(actor, StaffAction.DEVICE_REMOVED, account.id, detail)
        ending.sessions(account.id, signed_in)


async def request_password_reset(settings: Settings, login: str) -> None:
    """Mail a single-use link to each account the login names; silent when none."""
    if len(login) > 254:
        return
    now = clock.now()
    for account in await accounts_for_login(login):
        if not account.email:
            continue
        # A burst of requests sends one mail; a link already used (or expired) holds
        # nothing back.
        recent = await PasswordReset.filter(
            account=account,
            created_at__gte=now - RESET_THROTTLE,
            used_at__isnull=True,
            expires_at__gt=now,
        ).exists()
        if recent:
            continue
        token = new_token()
        async with in_transaction():
            await PasswordReset.create(
                token_hash=token_digest(token), account=account, expires_at=now + RESET_LIFETIME
            )
            await outbox.email(
                account.email,
                "password_reset",
                {
                    "name": account.first_name or "there",
                    "key_id": account.key_id,
                    "link": f"{settings.public_url}/reset-password?token={token}",
                },
                account_id=account.id,
            )
            await events.record(account, AccountEventKind.PASSWORD_RESET_REQUESTED)
    outbox.wake()


async def reset_password(token: str, new_password: str) -> Account:
    check_password_policy(new_password, "newPassword")
    reset = await PasswordReset.get_or_none(token_hash=token_digest(token))
    now = clock.now()
    if reset is None or reset.used_at is not None or reset.expires_at <= now:
        raise DomainError("INVALID_TOKEN", "This reset link is invalid or has expired.")
    password_hash = await hash_secret_async(new_password)  # before the transaction: slow
    account_id: int = reset.account_id  # type: ignore[attr-defined]
    async with sessions.ending() as ending:
        # Conditional update: two concurrent uses of one link, only one succeeds.
        used = await PasswordReset.filter(id=reset.id, used_at__isnull=True).update(used_at=now)
        if not used:
            raise DomainError("INVALID_TOKEN", "This reset link has already been used.")
        await Account.filter(id=account_id).update(
            password_hash=password_hash, failed_logins=0, locked_until=None
        )
        # Whoever knew the old password is signed out everywhere, pushes to their devices too.
        await _end_sessions(ending, account_id)
        await events.record(account_id, AccountEventKind.PASSWORD_RESET)
    return await Account.get(id=account_id)


async def _end_sessions(
    ending: sessions.Ending, account_id: int, except_session: Session | None = None
) -> None:
    """End the account's sessions (but one) and stop pushes to the devices signed out."""
    signed_out = Session.filter(account_id=account_id)
    devices = Device.filter(account_id=account_id)
    if except_session is not None:
        signed_out = signed_out.exclude(id=except_session.id)
        devices = devices.exclude(id=except_session.device_id)  # type: ignore[attr-defined]
    device_ids = await devices.values_list("id", flat=True)
    await PushToken.filter(device_id__in=device_ids).delete()
    await signed_out.delete()
    ending.account(account_id, except_session.id if except_session else None)


async def change_password(auth: Authenticated, current: str, new_password: str) -> None:
    """Every other session of the account ends: the one that asked stays signed in."""
    account = auth.account
    await check_password_of(account, current, "currentPassword")
    check_password_policy(new_password, "newPassword")
    password_hash = await hash_secret_async(new_password)
    async with sessions.ending() as ending:
        await Account.filter(id=account.id).update(password_hash=password_hash)
        await _end_sessions(ending, account.id, except_session=auth.session)
        await events.record(account, AccountEventKind.PASSWORD_CHANGED)


async def set_pin(account: Account, password: str, new_pin: str) -> None:
    check_pin_format(new_pin, "newPin")
    await check_password_of(account, password, "password")
    pin_hash = await hash_secret_async(new_pin)
    async with in_transaction():
        await Account.filter(id=account.id).update(
            pin_hash=pin_hash, failed_pins=0, pin_locked_until=None
        )
        await events.record(account, AccountEventKind.PIN_SET)


async def check_pin(account: Account, pin: str, *field: str) -> None:
    """Step-up check before a grant or a One Day Code; three misses lock PIN use for 15 min.

    Runs before (outside) the operation's transaction, so a miss is counted even
    though the operation itself changes nothing.
    """
    await account.refresh_from_db(fields=["failed_pins", "pin_locked_until", "pin_hash"])
    path = ["input", *field] if field else ["input", "pin"]
    if account.pin_locked_until and account.pin_locked_until > clock.now():
        raise DomainError(
            "TOO_MANY_ATTEMPTS", "Too many wrong PINs: try again in 15 minutes.", path
        )
    if account.pin_hash is None:
        raise DomainError(
            "INVALID_PIN", "Choose a PIN first (your password confirms it), then try again.", path
        )
    if await verify_secret_async(account.pin_hash, pin):
        if account.failed_pins:
            await Account.filter(id=account.id).update(failed_pins=0)
        return
    if await register_failed_pin(account):
        raise DomainError(
            "TOO_MANY_ATTEMPTS", "Too many wrong PINs: try again in 15 minutes.", path
        )
    raise DomainError("INVALID_PIN", "The PIN is not right.", path)


async def register_failed_pin(account: Account, detail: str = "") -> bool:
    """Count a failed step-up (a wrong PIN, a refused device signature); the third in a row
    locks PIN operations for 15 minutes. True when this one locked them."""
    await Account.filter(id=account.id).update(failed_pins=F("failed_pins") + 1)
    await account.refresh_from_db(fields=["failed_pins"])
    await events.record(account, AccountEventKind.PIN_FAILED, detail)
    if account.failed_pins < MAX_FAILED_PINS:
        return False
    await Account.filter(id=account.id).update(
        failed_pins=0, pin_locked_until=clock.now() + LOCKOUT
    )
    await events.record(account, AccountEventKind.PIN_LOCKED, "3 wrong PINs")
    return True
