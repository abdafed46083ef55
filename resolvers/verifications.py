"""SMS verification codes (signup, phone change): throttled sending, a try limit on checks."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from core import clock
from core.errors import DomainError
from core.security import hash_secret_async, new_code, verify_secret_async
from models.accounts import Account, Verification
from models.enums import VerificationPurpose
from notify import outbox

CODE_DIGITS = 4
CODE_LIFETIME = timedelta(minutes=10)
MAX_CODE_ATTEMPTS = 5
RESEND_INTERVAL = timedelta(seconds=60)
SEND_WINDOW = timedelta(hours=1)
MAX_SENDS_PER_WINDOW = 5
GLOBAL_ID_TYPE = "Verification"


def sms_text(code: str) -> str:
    return f"Your keybin verification code is {code}. It expires in 10 minutes."


async def send_code(
    purpose: VerificationPurpose,
    phone: str,
    *,
    email: str | None = None,
    account: Account | None = None,
    invitation_id: int | None = None,
) -> Verification:
    """Create (or renew, for the same email/account and phone) a verification and queue its SMS.

    Call after validating everything else: the throttles are the last check. The send is
    claimed first, then its code hashed and the SMS queued. The caller wakes the outbox.
    """
    async with in_transaction() as connection:
        # Claimed holding the phone and the account, so that of sends arriving at once one
        # passes and the others find its row; hashed after, outside: argon2 takes a while,
        # and a refused send costs none.
        await _hold(connection, purpose, phone, account)
        now = clock.now()
        await _check_throttle(purpose, phone, account, now)
        verification = await _claim(purpose, phone, email, account, invitation_id, now)
    code = new_code(CODE_DIGITS)
    code_hash = await hash_secret_async(code)
    async with in_transaction():
        # Until now the row held no code that could match (an empty hash matches nothing).
        filled = await Verification.filter(id=verification.id, last_sent_at=now).update(
            code_hash=code_hash
        )
        if not filled:
            raise _too_soon()
        await outbox.sms(phone, sms_text(code), account_id=account.id if account else None)
    return verification


async def _claim(
    purpose: VerificationPurpose,
    phone: str,
    email: str | None,
    account: Account | None,
    invitation_id: int | None,
    now: datetime,
) -> Verification:
    """A new verification, or the open one renewed, its code not yet chosen."""
    renewable = await _renewable(purpose, phone, email, account, now)
    if renewable is None:
        return await Verification.create(
            id=uuid.uuid4(),
            purpose=purpose,
            account=account,
            email=email,
            phone=phone,
            code_hash="",
            invitation_id=invitation_id,
            expires_at=now + CODE_LIFETIME,
            last_sent_at=now,
        )
    # Conditional on last_sent_at: of two concurrent resends only one sends.
    renewed = await Verification.filter(
        id=renewable.id, last_sent_at=renewable.last_sent_at
    ).update(
        code_hash="",
        sends=F("sends") + 1,
        attempts=0,
        last_sent_at=now,
        expires_at=now + CODE_LIFETIME,
        verified_at=None,
        invitation_id=invitation_id,
    )
    if not renewed:
        raise _too_soon()
    return await Verification.get(id=renewable.id)


async def _hold(
    connection: BaseDBAsyncClient,
    purpose: VerificationPurpose,
    phone: str,
    account: Account | None,
) -> None:
    """Hold back, until this transaction ends, every other send for the phone or the account.

    SQLite needs nothing: the process's one connection runs one transaction at a time.
    PostgreSQL takes a transaction-level advisory lock per subject (released at commit, none
    left on the pooled connection), in one order, so that two sends cannot deadlock.
    """
    if connection.capabilities.dialect != "postgres":
        return
    subjects = [f"sms:{purpose.value}:phone:{phone}"]
    if account is not None:
        subjects.append(f"sms:{purpose.value}:account:{account.id}")
    for subject in sorted(subjects):
        await connection.execute_query(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [subject]
        )


def _too_soon() -> DomainError:
    return DomainError(
        "TOO_MANY_ATTEMPTS", "A code was just sent: wait a minute before asking for another."
    )


def _same_person(purpose: VerificationPurpose, phone: str, account: Account | None) -> Q:
    """Rows that count toward the throttles: the same phone, or the same account.

    Not the same email: the SMS goes to the phone, so that is what a throttle protects; and
    counting the email would let anyone who types someone's address hold back the signup of
    the person with the invitation to it, or of someone correcting a mistyped number.
    """
    who = Q(phone=phone)
    if account is not None:
        who |= Q(account_id=account.id)
    return Q(who, purpose=purpose)


async def _check_throttle(
    purpose: VerificationPurpose, phone: str, account: Account | None, now: datetime
) -> None:
    rows = Verification.filter(_same_person(purpose, phone, account))
    if await rows.filter(last_sent_at__gt=now - RESEND_INTERVAL).exists():
        raise _too_soon()
    recent = await rows.filter(created_at__gt=now - SEND_WINDOW)
    if sum(row.sends for row in recent) >= MAX_SENDS_PER_WINDOW:
        raise DomainError(
            "TOO_MANY_ATTEMPTS",
            f"At most {MAX_SENDS_PER_WINDOW} codes are sent per hour: try again later.",
        )


async def _renewable(
    purpose: VerificationPurpose,
    phone: str,
    email: str | None,
    account: Account | None,
    now: datetime,
) -> Verification | None:
    """A resend for the same person and phone renews the open verification (same id)."""
    query = Verification.filter(
        purpose=purpose,
        phone=phone,
        completed_at__isnull=True,
        created_at__gt=now - SEND_WINDOW,
    )
    if email is not None:
        query = query.filter(email=email)
    if account is not None:
        query = query.filter(account_id=account.id)
    return await query.order_by("-created_at").first()


async def find(verification_pk: str, purpose: VerificationPurpose) -> Verification:
    try:
        pk = uuid.UUID(verification_pk)
    except ValueError:
        pk = None
    verification = (
        await Verification.get_or_none(id=pk, purpose=purpose) if pk is not None else None
    )
    if verification is None:
        raise DomainError("NOT_FOUND", "No such verification.", ["input", "verificationId"])
    return verification


async def check_code(verification: Verification, code: str) -> None:
    """Judge a code. Every try is counted and kept even though the caller's mutation fails."""
    now = clock.now()
    if verification.completed_at is not None:
        raise DomainError("CODE_EXPIRED", "This code has already been used.", ["input", "code"])
    if verification.expires_at <= now:
        raise DomainError(
            "CODE_EXPIRED", "This code has expired: ask for a new one.", ["input", "code"]
        )
    # Counted first and conditionally, so concurrent guesses cannot exceed the limit.
    counted = await Verification.filter(id=verification.id, attempts__lt=MAX_CODE_ATTEMPTS).update(
        attempts=F("attempts") + 1
    )
    if not counted:
        raise DomainError(
            "TOO_MANY_ATTEMPTS", "Too many wrong codes: ask for a new one.", ["input", "code"]
        )
    if not await verify_secret_async(verification.code_hash, code.strip()):
        raise DomainError("INVALID_CODE", "The code is not right.", ["input", "code"])
