"""Support staff: creation, login with password + TOTP and lockout, console sessions as rows,
password change, disabling."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import pyotp
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core import clock
from core.errors import DomainError, invalid_input
from core.security import (
    check_password_policy,
    hash_secret_async,
    new_token,
    token_digest,
    verify_secret_async,
)
from models.enums import StaffAction, StaffRole
from models.prepared import get_with_related
from models.staff import ConsoleSession, Staff, UnknownStaffLogin
from resolvers import audit
from resolvers.auth import Attempt, Lockout, attempt_succeeded, take_attempt

log = logging.getLogger("keybin.staff")

MAX_FAILED_LOGINS = 5
# Counted as the app's password lockout counts, before each check: however many tries arrive
# at once, five are checked, then 15 minutes locked. An address with no console password is
# counted by the same rule, and so answered the same way.
STAFF_LOCKOUT = Lockout("failed_logins", "locked_until", MAX_FAILED_LOGINS, Staff)
UNKNOWN_LOGIN_LOCKOUT = Lockout(
    "failed_logins", "locked_until", MAX_FAILED_LOGINS, UnknownStaffLogin
)
# How long an address's count outlives its ended lock: a try under way still finds its row.
ENDED_LOCK_KEPT = timedelta(hours=1)
TOTP_ISSUER = "keybin"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# ASCII digits only: `\d` also takes other scripts' digits ("١٢٣٤٥٦"), which no TOTP code holds.
_CODE = re.compile(r"[0-9]{6}")
BAD_LOGIN = "Wrong email, password or code."
DISABLED = "Your console access has been disabled by a system administrator."
LOCKED = "Too many failed attempts: try again in 15 minutes."
WRONG_CURRENT = "Your current password is wrong."
NO_LOCAL_PASSWORD = "You sign in through your company's sign-in: there is no console password."
IDLE_TIMEOUT = timedelta(minutes=30)
SESSION_LIFETIME = timedelta(hours=12)  # one working day, however busy
# last_seen_at is written at most this often: the idle timeout needs no finer grain,
# and a page's burst of htmx requests costs one write, not one each.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class NewStaff:
    staff: Staff
    password: str  # shown once; only its hash is kept
    otpauth_uri: str


def one_time_password() -> str:
    """A random password that meets the policy (upper, lower, digit; 16 characters)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(16))
        if re.search(r"[A-Z]", value) and re.search(r"[a-z]", value) and re.search(r"[0-9]", value):
            return value


async def add_staff(email: str, name: str, role: StaffRole) -> NewStaff:
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email) or len(email) > 254:
        raise invalid_input("Enter a valid email address.", "email")
    name = name.strip()
    if not name or len(name) > 200:
        raise invalid_input("Enter the staff member's name (1-200 characters).", "name")
    password = one_time_password()
    secret = pyotp.random_base32()
    try:
        staff = await Staff.create(
            email=email,
            name=name,
            role=role,
            password_hash=await hash_secret_async(password),
            totp_secret=secret,
            must_change_password=True,
        )
    except IntegrityError as error:
        raise DomainError("EMAIL_TAKEN", "A staff member with this email exists.") from error
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)
    return NewStaff(staff=staff, password=password, otpauth_uri=uri)


def _matching_step(secret: str, code: str) -> int | None:
    """The TOTP time step the code belongs to (now, or one step either side), or None."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(clock.now())
    for step in (current, current - 1, current + 1):
        if secrets.compare_digest(code, totp.generate_otp(step)):
            return step
    return None


async def login(
    email: str, password: str, code: str, client_address: str | None = None, *, secret_key: str
) -> Staff:
    """The staff member, or DomainError INVALID_CREDENTIALS / ACCOUNT_LOCKED; either way a
    line in the audit trail (never the password or the code that were typed)."""
    # PostgreSQL refuses a NUL in text: an address with one is no member's, and is not asked.
    typed = email.strip().lower()[:254]
    staff = None if "\x00" in typed else await Staff.get_or_none(email=typed)
    try:
        if staff is None or not staff.password_hash:
            # A member with no password (added at a company sign-in) has no local login at all.
            await _refuse_unknown(_login_key(secret_key, typed), password)
        staff = await _check_login(staff, password, code)
    except DomainError as error:
        await _audit_failed_login(email, staff, error, client_address)
        raise
    await audit.record(StaffAction.SIGNED_IN, staff, client_address=client_address)
    return staff


def _login_key(secret_key: str, typed: str) -> str:
    # Keyed, as the rate limits' keys are: the table never holds an address.
    digest = hmac.new(secret_key.encode(), f"staff login\0{typed}".encode(), hashlib.sha256)
    return digest.hexdigest()


async def _refuse_unknown(key: str, password: str) -> NoReturn:
    """Refuse a sign-in at an address with no console password as a member's wrong one is:
    the same count, the same lock, the same work."""
    row = await UnknownStaffLogin.get_or_none(key=key).only("id")
    if row is None:
        await _forget_ended_locks()
        await UnknownStaffLogin.bulk_create([UnknownStaffLogin(key=key)], ignore_conflicts=True)
        row = await UnknownStaffLogin.get(key=key).only("id")
    attempt = await take_attempt(row.id, UNKNOWN_LOGIN_LOCKOUT)
    if attempt is None:
        raise DomainError("ACCOUNT_LOCKED", LOCKED)
    await verify_secret_async(None, password)  # the same work as a member's password check
    raise _refusal(attempt)


async def _forget_ended_locks() -> None:
    """Addresses whose lock ended a while ago with no wrong try since: a row like that counts
    as none would. A count just started is never one of them (it has no lock)."""
    ended = clock.now() - ENDED_LOCK_KEPT
    await UnknownStaffLogin.filter(failed_logins=0, locked_until__lte=ended).delete()


async def _check_login(staff: Staff, password: str, code: str) -> Staff:
    # A disabled member goes through every check: only the right password and code may learn
    # why they cannot sign in (the reason tells that the address is a staff member's).
    attempt = await take_attempt(staff.id, STAFF_LOCKOUT)
    if attempt is None:
        raise DomainError("ACCOUNT_LOCKED", LOCKED)
    code = code.strip().replace(" ", "")
    step = _matching_step(staff.totp_secret, code) if _CODE.fullmatch(code) else None
    if not await verify_secret_async(staff.password_hash, password) or step is None:
        _failed(staff, attempt)
    # Conditional update: a code (its time step) is good for one login only, even when two
    # logins race with the same code; and only over the password just checked, so one
    # changed meanwhile refuses the login.
    accepted = await Staff.filter(
        id=staff.id, last_totp_step__lt=step, password_hash=staff.password_hash
    ).update(last_totp_step=step)
    if not accepted:
        log.warning("staff %s: TOTP code replayed, or the password changed meanwhile", staff.id)
        _failed(staff, attempt)
    await attempt_succeeded(attempt)
    await staff.refresh_from_db()
    if staff.disabled:
        raise DomainError("ACCOUNT_DISABLED", DISABLED)
    return staff


async def _audit_failed_login(
    typed_email: str, staff: Staff | None, error: DomainError, client_address: str | None
) -> None:
    """Labelled with the address as typed (the trail's reader sees what was tried); a known
    member is the line's target, so filtering by that member shows attempts on them."""
    if error.code == "ACCOUNT_LOCKED":
        reason = "locked" if staff is not None else "locked (unknown address)"
    elif error.code == "ACCOUNT_DISABLED":
        reason = "disabled (right password and code)"
    elif staff is None:
        reason = "wrong credentials (unknown address)"
    elif staff.disabled:
        reason = "wrong credentials (disabled)"
    else:
        reason = "wrong credentials"
    await audit.record(
        StaffAction.SIGN_IN_FAILED,
        None,
        label=typed_email.strip().replace("\x00", "\ufffd")[:254],
        target_staff_id=staff.id if staff is not None else None,
        detail=reason,
        client_address=client_address,
    )


def _refusal(attempt: Attempt) -> DomainError:
    """A wrong answer's refusal: the lock's when taking it reached the limit."""
    if attempt.locked_until is not None:
        return DomainError("ACCOUNT_LOCKED", LOCKED)
    return DomainError("INVALID_CREDENTIALS", BAD_LOGIN)


def _failed(staff: Staff, attempt: Attempt) -> NoReturn:
    locked = " (locked)" if attempt.locked_until is not None else ""
    log.warning("staff %s: failed login%s", staff.id, locked)
    raise _refusal(attempt)


async def open_session(staff: Staff, client_address: str | None) -> str:
    """A new console session: the token is for the cookie, only its digest is kept."""
    now = clock.now()
    token = new_token()
    # Sessions nobody signed out of are swept here, so the table holds little but live ones.
    await ConsoleSession.filter(
        Q(expires_at__lte=now) | Q(last_seen_at__lte=now - IDLE_TIMEOUT)
    ).delete()
    await ConsoleSession.create(
        token_hash=token_digest(token),
        staff=staff,
        last_seen_at=now,
        expires_at=now + SESSION_LIFETIME,
        client_address=client_address[:64] if client_address else None,
    )
    return token


async def session_of(token: str) -> ConsoleSession | None:
    """The live session the token names (its `staff` loaded); None when unknown or ended."""
    if not token or len(token) > 128:
        return None
    session = await get_with_related(ConsoleSession, "staff", "token_hash", token_digest(token))
    if session is None:
        return None
    now = clock.now()
    idle = now - session.last_seen_at
    if session.staff.disabled or session.expires_at <= now or idle >= IDLE_TIMEOUT:
        await ConsoleSession.filter(id=session.id).delete()
        return None
    if idle >= TOUCH_EVERY:
        await ConsoleSession.filter(id=session.id).update(last_seen_at=now)
        session.last_seen_at = now
    return session


async def close_session(token: str) -> None:
    await ConsoleSession.filter(token_hash=token_digest(token)).delete()


async def sign_out(token: str, client_address: str | None) -> None:
    """Ends the session; a line in the audit trail when there was one to end."""
    if not token or len(token) > 128:
        return
    session = await get_with_related(ConsoleSession, "staff", "token_hash", token_digest(token))
    if session is None:
        return
    async with in_transaction():
        ended = await ConsoleSession.filter(id=session.id).delete()
        if ended:
            await audit.record(StaffAction.SIGNED_OUT, session.staff, client_address=client_address)


async def change_password(
    staff: Staff, current: str, new_password: str, confirmation: str, client_address: str | None
) -> str:
    """Needs the current password (the one-time one at first login); a wrong one counts toward
    the lockout. Ends every session of the staff member, the changer's included, and returns
    the token of the changer's new one: no copy of any cookie from before survives."""
    checked = await _check_current_password(staff, current, client_address)
    if new_password != confirmation:
        raise invalid_input("The two passwords differ.", "confirmation")
    check_password_policy(new_password, "password")
    if new_password == current:
        raise invalid_input("Choose a password different from the current one.", "password")
    staff.password_hash = await hash_secret_async(new_password)
    staff.must_change_password = False
    async with in_transaction():
        # Over the password just checked only: one changed meanwhile (another tab) stands.
        changed = await Staff.filter(id=staff.id, password_hash=checked).update(
            password_hash=staff.password_hash, must_change_password=False, failed_logins=0
        )
        if not changed:
            raise DomainError("INVALID_CREDENTIALS", WRONG_CURRENT, ["input", "current"])
        await ConsoleSession.filter(staff_id=staff.id).delete()
        await audit.record(StaffAction.PASSWORD_CHANGED, staff, client_address=client_address)
        return await open_session(staff, client_address)


async def _check_current_password(staff: Staff, current: str, client_address: str | None) -> str:
    """A wrong current password is a guess at the member's password, as at sign-in: it counts
    toward the same lockout and is written to the trail the same way, the lock with it.
    Returns the hash that was checked, read afresh (not the one loaded with the session)."""
    if not staff.password_hash:
        # A member made by the company's sign-in has no local password, and gets none here:
        # break-glass accounts are made with `keybin staff add`.
        raise invalid_input(NO_LOCAL_PASSWORD, "current")
    attempt = await take_attempt(staff.id, STAFF_LOCKOUT)
    if attempt is None:
        await _audit_password_form(staff, "locked", client_address)
        raise DomainError("ACCOUNT_LOCKED", LOCKED)
    stored = (await Staff.filter(id=staff.id).only("id", "password_hash").get()).password_hash
    if stored and await verify_secret_async(stored, current):
        await attempt_succeeded(attempt)
        return stored
    if attempt.locked_until is not None:
        async with in_transaction():
            # Whoever is guessing at an open console is signed out, with every other session.
            await ConsoleSession.filter(staff_id=staff.id).delete()
            await _audit_password_form(
                staff, "wrong current password: locked, every session ended", client_address
            )
        raise DomainError("ACCOUNT_LOCKED", LOCKED)
    await _audit_password_form(staff, "wrong current password", client_address)
    raise DomainError("INVALID_CREDENTIALS", WRONG_CURRENT, ["input", "current"])


async def _audit_password_form(staff: Staff, reason: str, client_address: str | None) -> None:
    """A failed check of the member's own password, by their open session: the member is both
    the actor and the target, so filtering the trail by them shows it beside sign-in attempts."""
    await audit.record(
        StaffAction.SIGN_IN_FAILED,
        staff,
        target_staff_id=staff.id,
        detail=f"password form: {reason}",
        client_address=client_address,
    )


async def list_staff() -> list[Staff]:
    return await Staff.all().order_by("name", "id")


async def staff_member(staff_id: int) -> Staff | None:
    return await Staff.get_or_none(id=staff_id)


async def set_disabled(
    staff_id: int, disabled: bool, by: Staff, client_address: str | None = None
) -> Staff:
    if staff_id == by.id:
        raise invalid_input("You cannot disable yourself.")
    target = await Staff.get_or_none(id=staff_id)
    if target is None:
        raise DomainError("NOT_FOUND", "No such staff member.")
    target.disabled = disabled
    async with in_transaction():
        await target.save(update_fields=["disabled"])
        # Both ways: disabling ends every session, and enabling starts from none, so no
        # cookie from before (nor one a racing sign-in slipped in) comes back to life.
        await ConsoleSession.filter(staff_id=target.id).delete()
        await audit.record(
            StaffAction.STAFF_DISABLED if disabled else StaffAction.STAFF_ENABLED,
            by,
            target_staff_id=target.id,
            detail=target.name or target.email,
            client_address=client_address,
        )
    log.info("staff %s %s by staff %s", target.id, "disabled" if disabled else "enabled", by.id)
    return target
