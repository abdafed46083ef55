"""Support staff: creation, login with password + TOTP and lockout, password change, disabling."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import pyotp
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from models.enums import StaffRole
from models.staff import Staff
from resolvers import clock
from resolvers.errors import DomainError, invalid_input
from resolvers.security import check_password_policy, hash_secret_async, verify_secret_async

log = logging.getLogger("keybin.staff")

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
TOTP_ISSUER = "keybin"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_CODE = re.compile(r"\d{6}")
BAD_LOGIN = "Wrong email, password or code."
LOCKED = "Too many failed attempts: try again in 15 minutes."


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
        if re.search(r"[A-Z]", value) and re.search(r"[a-z]", value) and re.search(r"\d", value):
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


async def login(email: str, password: str, code: str) -> Staff:
    """The staff member, or DomainError INVALID_CREDENTIALS / ACCOUNT_LOCKED."""
    staff = await Staff.get_or_none(email=email.strip().lower()[:254])
    if staff is None or staff.disabled:
        await verify_secret_async(None, password)  # the same work whether or not the email is known
        raise DomainError("INVALID_CREDENTIALS", BAD_LOGIN)
    now = clock.now()
    if staff.locked_until and staff.locked_until > now:
        raise DomainError("ACCOUNT_LOCKED", LOCKED)
    code = code.strip().replace(" ", "")
    step = _matching_step(staff.totp_secret, code) if _CODE.fullmatch(code) else None
    if not await verify_secret_async(staff.password_hash, password) or step is None:
        await _failed(staff)
    # Conditional update: a code (its time step) is good for one login only, even
    # when two logins race with the same code.
    accepted = await Staff.filter(id=staff.id, last_totp_step__lt=step).update(
        last_totp_step=step, failed_logins=0, locked_until=None
    )
    if not accepted:
        log.warning("staff %s: TOTP code replayed", staff.id)
        await _failed(staff)
    await staff.refresh_from_db()
    return staff


async def _failed(staff: Staff) -> NoReturn:
    await Staff.filter(id=staff.id).update(failed_logins=F("failed_logins") + 1)
    await staff.refresh_from_db(fields=["failed_logins"])
    log.warning("staff %s: failed login (%s in a row)", staff.id, staff.failed_logins)
    if staff.failed_logins >= MAX_FAILED_LOGINS:
        await Staff.filter(id=staff.id).update(failed_logins=0, locked_until=clock.now() + LOCKOUT)
        raise DomainError("ACCOUNT_LOCKED", LOCKED)
    raise DomainError("INVALID_CREDENTIALS", BAD_LOGIN)


async def change_password(staff: Staff, new_password: str, confirmation: str) -> None:
    if new_password != confirmation:
        raise invalid_input("The two passwords differ.", "confirmation")
    check_password_policy(new_password, "password")
    if await verify_secret_async(staff.password_hash, new_password):
        raise invalid_input("Choose a password different from the one-time one.", "password")
    staff.password_hash = await hash_secret_async(new_password)
    staff.must_change_password = False
    await staff.save(update_fields=["password_hash", "must_change_password"])


def password_fingerprint(staff: Staff) -> str:
    """Kept in the session: a password change signs out every other session."""
    return hashlib.sha256(staff.password_hash.encode()).hexdigest()[:24]


async def list_staff() -> list[Staff]:
    return await Staff.all().order_by("name", "id")


async def set_disabled(staff_id: int, disabled: bool, by: Staff) -> Staff:
    if staff_id == by.id:
        raise invalid_input("You cannot disable yourself.")
    target = await Staff.get_or_none(id=staff_id)
    if target is None:
        raise DomainError("NOT_FOUND", "No such staff member.")
    target.disabled = disabled
    await target.save(update_fields=["disabled"])
    log.info("staff %s %s by staff %s", target.id, "disabled" if disabled else "enabled", by.id)
    return target
