"""Sign-in, sessions and devices, password reset, and the PIN."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tortoise.expressions import F, Q
from tortoise.models import Model
from tortoise.transactions import in_transaction

from ble.b64 import b64url_decode, b64url_encode
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
from core.text import one_line
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
ED25519_KEY_TEXT = 43  # 32 bytes in base64url without padding
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
    device_key = device_public_key(public_key)
    account = await _check_password(login, password, Actor(client_address=client_address))
    token = new_token()
    async with in_transaction():
        # Only while the password checked is still the account's: a reset or change committed
        # since then refuses the sign-in. On PostgreSQL the update holds the row until commit,
        # so a reset or change waits, and then ends this session with the others.
        current = await Account.filter(
            id=account.id, password_hash=account.password_hash, deleted_at__isnull=True
        ).update(failed_logins=0)
        if not current:
            raise DomainError("INVALID_CREDENTIALS", "Wrong login or password.")
        device = await _register_device(settings, account, device_id, device_name, device_key)
        await Session.create(
            token_hash=token_digest(token),
            account=account,
            device=device,
            expires_at=clock.now() + SESSION_LIFETIME,
        )
        await events.record(account, AccountEventKind.SIGNED_IN, f"device {device.name}")
    return SignedIn(token=token, account=account, device=device)


def device_public_key(text: str | None) -> str | None:
    """The app's key as credentials carry it in cnf.jwk: a raw Ed25519 public key, 32 bytes,
    base64url without padding; written back canonically. None when the app sends none."""
    if not text:
        return None
    try:
        raw = b64url_decode(text) if len(text) <= 2 * ED25519_KEY_TEXT else b""
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise invalid_input(
            "The device key must be an Ed25519 public key: 32 bytes, base64url without padding.",
            "devicePublicKey",
        ) from None
    return b64url_encode(raw)


@dataclass(frozen=True)
class Lockout:
    """A count of wrong answers kept on a row (an account's, unless told), and the time it
    refuses them until."""

    failures: str
    locked_until: str
    limit: int
    table: type[Model] = Account


PASSWORD_LOCKOUT = Lockout("failed_logins", "locked_until", MAX_FAILED_LOGINS)
PIN_LOCKOUT = Lockout("failed_pins", "pin_locked_until", MAX_FAILED_PINS)


@dataclass(frozen=True)
class Attempt:
    """One answer allowed to be checked; `locked_until` is set when taking it reached the limit."""

    row_id: int
    lockout: Lockout
    locked_until: datetime | None


# Answers arriving at once are each counted before they are checked, so a burst of right ones
# (an agent granting several contractors at once, each grant with its PIN) can reach the limit
# and lock while they are being checked; the right answer that set the lock lifts it. An
# answer refused by a lock that new waits for it to lift, for this long at most; a lock that
# wrong answers set stays, and the answer is refused once the time is up.
PATIENCE = timedelta(seconds=3)
_LOOK_AGAIN = 0.05  # seconds between looks at a new lock


class _OneAtATime:
    """In this instance, the answers for one row are checked one after another: an answer is
    taken once the one before it is settled (right, or its request over). So a burst of right
    answers never counts up to the limit while they wait to be checked; across instances,
    PATIENCE covers the few that can still be in flight at once."""

    def __init__(self) -> None:
        self._locks: dict[tuple[object, ...], asyncio.Lock] = {}
        self._waiting: dict[tuple[object, ...], int] = {}
        self._holder: dict[tuple[object, ...], asyncio.Task[Any]] = {}

    async def enter(self, key: tuple[object, ...]) -> None:
        task = asyncio.current_task()
        if task is None or self._holder.get(key) is task:
            return  # the same request checking the same row again: it holds it already
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            await lock.acquire()
        except BaseException:
            self._forget(key)
            raise
        self._holder[key] = task
        # Whatever the request does next, its end lets the next answer in.
        task.add_done_callback(lambda _: self.leave(key, task))

    def leave(self, key: tuple[object, ...], task: asyncio.Task[Any] | None = None) -> None:
        task = task or asyncio.current_task()
        if task is None or self._holder.get(key) is not task:
            return
        del self._holder[key]
        self._locks[key].release()
        self._forget(key)

    def _forget(self, key: tuple[object, ...]) -> None:
        self._waiting[key] -= 1
        if not self._waiting[key]:
            del self._waiting[key], self._locks[key]


_one_at_a_time = _OneAtATime()


def _key(row_id: int, lockout: Lockout) -> tuple[object, ...]:
    loop = asyncio.get_running_loop()
    return (id(loop), lockout.table.__name__, lockout.failures, row_id)


async def take_attempt(row_id: int, lockout: Lockout) -> Attempt | None:
    """Count an answer as wrong before checking it (None while locked).

    Counted first and conditionally, so however many answers arrive at once, at most `limit`
    are checked per lock: the one that reaches the limit locks at once, and only a right
    answer gives the count back.
    """
    await _one_at_a_time.enter(_key(row_id, lockout))
    give_up = asyncio.get_running_loop().time() + PATIENCE.total_seconds()
    while (attempt := await _take(row_id, lockout)) is None:
        row = await lockout.table.filter(id=row_id).values(lockout.locked_until)
        until = row[0][lockout.locked_until] if row else None
        locked_since = until - LOCKOUT if isinstance(until, datetime) else None
        new_lock = locked_since is not None and clock.now() - locked_since < PATIENCE
        if not new_lock or asyncio.get_running_loop().time() >= give_up:
            return None
        await asyncio.sleep(_LOOK_AGAIN)
    return attempt


async def _take(row_id: int, lockout: Lockout) -> Attempt | None:
    now = clock.now()
    unlocked: dict[str, Any] = {f"{lockout.locked_until}__isnull": True}
    expired: dict[str, Any] = {f"{lockout.locked_until}__lte": now}
    open_ = Q(**unlocked) | Q(**expired)
    until = now + LOCKOUT
    async with in_transaction():
        taken = await lockout.table.filter(open_, id=row_id).update(
            **{lockout.failures: F(lockout.failures) + 1}
        )
        if not taken:
            return None
        reached = await lockout.table.filter(
            id=row_id, **{f"{lockout.failures}__gte": lockout.limit}
        ).update(**{lockout.failures: 0, lockout.locked_until: until})
    return Attempt(row_id, lockout, until if reached else None)


async def attempt_succeeded(attempt: Attempt) -> None:
    """A right answer clears the count, and the lock that taking it set."""
    changes: dict[str, object] = {attempt.lockout.failures: 0}
    if attempt.locked_until is not None:
        changes[attempt.lockout.locked_until] = None
    await attempt.lockout.table.filter(id=attempt.row_id).update(**changes)
    _one_at_a_time.leave(_key(attempt.row_id, attempt.lockout))


async def _give_back(attempt: Attempt) -> None:
    """The password was another account's of the same email: this one saw no wrong answer."""
    failures, lock = attempt.lockout.failures, attempt.lockout.locked_until
    if attempt.locked_until is not None:
        changes = {failures: attempt.lockout.limit - 1, lock: None}
        await Account.filter(id=attempt.row_id).update(**changes)
    else:
        await Account.filter(id=attempt.row_id, **{f"{failures}__gt": 0}).update(
            **{failures: F(failures) - 1}
        )


def _locked() -> DomainError:
    return DomainError("ACCOUNT_LOCKED", "Too many wrong passwords: try again in 15 minutes.")


async def _check_password(login: str, password: str, actor: Actor) -> Account:
    candidates = await accounts_for_login(login)
    if not candidates:
        await verify_secret_async(None, password)  # same work, same timing, as a real check
        raise DomainError("INVALID_CREDENTIALS", "Wrong login or password.")
    missed: list[tuple[Account, Attempt]] = []
    for account in candidates:
        attempt = await take_attempt(account.id, PASSWORD_LOCKOUT)
        if attempt is None:
            continue  # locked: its password is not even checked
        if await verify_secret_async(account.password_hash, password):
            await attempt_succeeded(attempt)
            for _, other in missed:
                await _give_back(other)
            return account
        missed.append((account, attempt))
    if not missed:
        raise _locked()
    for account, attempt in missed:
        await register_failed_password(account, attempt, actor)
    raise DomainError("INVALID_CREDENTIALS", "Wrong login or password.")


async def register_failed_password(account: Account, attempt: Attempt, actor: Actor = SELF) -> None:
    """Log a wrong password (counted when it was taken); the fifth in a row locked sign-in."""
    await events.record(account, AccountEventKind.SIGN_IN_FAILED, "wrong password", actor)
    if attempt.locked_until is not None:
        await events.record(account, AccountEventKind.ACCOUNT_LOCKED, "5 wrong passwords", actor)


async def check_password_of(account: Account, password: str, *field: str) -> str:
    """Re-authentication for sensitive changes; wrong answers count toward the lockout.
    Returns the hash that was checked, read afresh (not the one loaded with the session)."""
    attempt = await take_attempt(account.id, PASSWORD_LOCKOUT)
    if attempt is None:
        raise _locked()
    stored = (await Account.filter(id=account.id).only("id", "password_hash").get()).password_hash
    if stored is not None and await verify_secret_async(stored, password):
        await attempt_succeeded(attempt)
        return stored
    await register_failed_password(account, attempt)
    raise DomainError("INVALID_CREDENTIALS", "The password is not right.", ["input", *field])


async def _register_device(
    settings: Settings, account: Account, device_id: str, name: str, public_key: str | None
) -> Device:
    """Run in the sign-in's transaction, after its update has taken the account row (PostgreSQL
    holds it until commit; SQLite runs one transaction at a time): sign-ins from new devices
    arriving at once count the devices one after the other, so no more than the limit register."""
    device = await Device.get_or_none(account=account, device_id=device_id)
    # The phone's own name for itself ("Casey's iPhone"): kept, on one line, never refused.
    name = one_line(name)[:100] or "Device"
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
        token = new_token()
        async with in_transaction():
            # A burst of requests sends one mail; a link already used (or expired) holds
            # nothing back. The account row is held until commit (on SQLite the transaction
            # alone is), so of requests arriving at once the first creates the link and the
            # others find it.
            held = await Account.filter(id=account.id, deleted_at__isnull=True).update(
                failed_logins=F("failed_logins")
            )
            recent = await PasswordReset.filter(
                account=account,
                created_at__gte=now - RESET_THROTTLE,
                used_at__isnull=True,
                expires_at__gt=now,
            ).exists()
            if not held or recent:
                continue
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
        # Conditional update: of two concurrent uses of one link, or a use and a change that
        # ends the link, only one succeeds.
        used = await PasswordReset.filter(
            id=reset.id, used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
        if not used:
            raise DomainError("INVALID_TOKEN", "This reset link is invalid or has expired.")
        await Account.filter(id=account_id).update(
            password_hash=password_hash, failed_logins=0, locked_until=None
        )
        await expire_password_resets(account_id)
        # Whoever knew the old password is signed out everywhere, pushes to their devices too.
        await _end_sessions(ending, account_id)
        await events.record(account_id, AccountEventKind.PASSWORD_RESET)
    return await Account.get(id=account_id)


async def expire_password_resets(account_id: int) -> None:
    """The account's outstanding reset links stop working, answered as expired: each vouched
    for the password and the mailbox it was sent with, and one of them has changed."""
    now = clock.now()
    await PasswordReset.filter(
        account_id=account_id, used_at__isnull=True, expires_at__gt=now
    ).update(expires_at=now)


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
    checked = await check_password_of(account, current, "currentPassword")
    check_password_policy(new_password, "newPassword")
    password_hash = await hash_secret_async(new_password)
    async with sessions.ending() as ending:
        # Over the password just checked only: a reset committed meanwhile stands.
        changed = await Account.filter(id=account.id, password_hash=checked).update(
            password_hash=password_hash
        )
        if not changed:
            raise DomainError(
                "INVALID_CREDENTIALS", "The password is not right.", ["input", "currentPassword"]
            )
        await expire_password_resets(account.id)
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
    await account.refresh_from_db(fields=["pin_hash"])
    path = ["input", *field] if field else ["input", "pin"]
    if account.pin_hash is None:
        raise DomainError(
            "INVALID_PIN", "Choose a PIN first (your password confirms it), then try again.", path
        )
    attempt = await take_attempt(account.id, PIN_LOCKOUT)
    if attempt is None:
        raise DomainError(
            "TOO_MANY_ATTEMPTS", "Too many wrong PINs: try again in 15 minutes.", path
        )
    if await verify_secret_async(account.pin_hash, pin):
        await attempt_succeeded(attempt)
        return
    if await register_failed_pin(account, attempt):
        raise DomainError(
            "TOO_MANY_ATTEMPTS", "Too many wrong PINs: try again in 15 minutes.", path
        )
    raise DomainError("INVALID_PIN", "The PIN is not right.", path)


async def register_failed_pin(account: Account, attempt: Attempt, detail: str = "") -> bool:
    """Log a failed step-up (a wrong PIN, a refused device signature), counted when it was
    taken; the third in a row locked PIN operations for 15 minutes. True when this one did."""
    await events.record(account, AccountEventKind.PIN_FAILED, detail)
    if attempt.locked_until is None:
        return False
    await events.record(account, AccountEventKind.PIN_LOCKED, "3 wrong PINs")
    return True
