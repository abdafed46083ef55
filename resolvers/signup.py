"""Contractor signup: email and phone, a 4-digit SMS code, then the account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import clock
from core.errors import DomainError, invalid_input
from core.security import (
    check_password_policy,
    check_pin_format,
    hash_secret_async,
    normalize_answer,
    seal,
    token_digest,
)
from models.accounts import Account, Invitation, SecurityAnswer, Verification
from models.enums import AccountEventKind, AccountKind, AccountStatus, ContractorRole, MessageKind
from models.enums import VerificationPurpose as Purpose
from notify import outbox
from resolvers import email_proof, events, verifications
from resolvers.emails import check_email_free, valid_email
from resolvers.notifications import post_message
from resolvers.phones import normalize_phone
from resolvers.profile import clean_company, clean_name, clean_text
from settings import Settings

# After the code is verified, the person has this long to fill in the rest.
COMPLETION_WINDOW = timedelta(minutes=30)
MAX_SECURITY_ANSWERS = 5
MAX_QUESTION = 255
MAX_ANSWER = 200


@dataclass(frozen=True)
class SecurityAnswerIn:
    question: str
    answer: str


async def begin_signup(email: str, phone: str, invitation_token: str | None) -> Verification:
    """Check the email and phone and text a code; a repeat for the same pair resends it."""
    email = valid_email(email, "email")
    phone = normalize_phone(phone, "phone")
    invitation = await _invitation_for(email, invitation_token)
    # The invitation proves the address: an unproven claim to it does not stand in the way.
    await check_email_free(
        email, AccountKind.CONTRACTOR, "email", proven_only=invitation is not None
    )
    verification = await verifications.send_code(
        Purpose.SIGNUP,
        phone,
        email=email,
        invitation_id=invitation.id if invitation else None,
    )
    outbox.wake()
    return verification


async def _invitation_for(email: str, token: str | None) -> Invitation | None:
    """The invitation a token names; it binds the signup to the email it was sent to."""
    if token is None or not token.strip():
        return None
    invitation = await Invitation.get_or_none(token_hash=token_digest(token.strip()))
    if invitation is None or invitation.accepted_at is not None or invitation.email != email:
        raise DomainError(
            "INVALID_TOKEN",
            "This invitation is not valid for this email address.",
            ["input", "invitationToken"],
        )
    return invitation


async def verify_signup_code(verification_pk: str, code: str) -> None:
    verification = await verifications.find(verification_pk, Purpose.SIGNUP)
    await verifications.check_code(verification, code)
    await Verification.filter(id=verification.id, verified_at__isnull=True).update(
        verified_at=clock.now()
    )


async def complete_signup(
    settings: Settings,
    verification_pk: str,
    first_name: str,
    last_name: str,
    role: ContractorRole,
    company: str | None,
    password: str,
    pin: str,
    security_answers: list[SecurityAnswerIn],
) -> Account:
    """Create the contractor; pending grants and invitations to the email become theirs."""
    verification = await verifications.find(verification_pk, Purpose.SIGNUP)
    first_name = clean_name(first_name, "firstName")
    last_name = clean_name(last_name, "lastName")
    company = clean_company(company)
    check_password_policy(password, "password")
    check_pin_format(pin, "pin")
    answers = _clean_answers(security_answers)
    _check_open(verification)
    email = verification.email or ""
    invited = await _still_invited(verification, email)
    await check_email_free(email, AccountKind.CONTRACTOR, proven_only=invited)

    # argon2 is slow on purpose: hash before the transaction, which holds the database.
    password_hash, pin_hash = await hash_secret_async(password), await hash_secret_async(pin)
    sealed = [
        (
            question,
            await hash_secret_async(normalize_answer(answer)),
            seal(settings.secret_key, answer),
        )
        for question, answer in answers
    ]
    try:
        async with in_transaction():
            # Conditional: two concurrent completions of one verification make one account.
            claimed = await Verification.filter(
                id=verification.id, completed_at__isnull=True
            ).update(completed_at=clock.now())
            if not claimed:
                raise DomainError("CODE_EXPIRED", "This signup is already complete.")
            if invited:
                await email_proof.release_unproven(email)
            account = await Account.create(
                kind=AccountKind.CONTRACTOR,
                first_name=first_name,
                last_name=last_name,
                email=email,
                phone=verification.phone,
                status=AccountStatus.ACTIVE,
                role=role,
                company=company,
                password_hash=password_hash,
                pin_hash=pin_hash,
            )
            # Tied to the account, so deleting it also deletes this row and its phone.
            await Verification.filter(id=verification.id).update(account_id=account.id)
            await SecurityAnswer.bulk_create(
                [
                    SecurityAnswer(account=account, question=q, answer_hash=h, answer_sealed=s)
                    for q, h, s in sealed
                ]
            )
            await _prove_or_ask(settings, account, email, invited)
    except IntegrityError:
        # The unique index on contractor addresses: another signup took it a moment ago.
        raise DomainError("EMAIL_TAKEN", "An account with this email already exists.") from None
    outbox.wake()
    return account


async def _still_invited(verification: Verification, email: str) -> bool:
    """Whether the signup began with an invitation to this address that is still open."""
    if verification.invitation_id is None:
        return False
    return await Invitation.filter(
        id=verification.invitation_id, email=email, accepted_at__isnull=True
    ).exists()


async def _prove_or_ask(settings: Settings, account: Account, email: str, invited: bool) -> None:
    """Inside the signup: an invitation proves the address; otherwise a link is mailed to it."""
    if invited:
        received = await email_proof.prove(account, email)
        await events.record(
            account, AccountEventKind.SIGNED_UP, f"from an invitation; {received} grant(s)"
        )
        return
    await email_proof.mail_confirmation(settings, account, email)
    await post_message(
        account.id,
        MessageKind.ACCOUNT,
        "Confirm your email address",
        f"We emailed a link to {email}. Follow it to confirm the address is yours: access "
        "that listing agents grant to this address reaches your account only after that.",
    )
    await events.record(account, AccountEventKind.SIGNED_UP, "without an invitation")


def _check_open(verification: Verification) -> None:
    if verification.completed_at is not None:
        raise DomainError(
            "CODE_EXPIRED", "This signup is already complete.", ["input", "verificationId"]
        )
    if verification.verified_at is None:
        raise DomainError(
            "INVALID_CODE", "Enter the code sent by SMS first.", ["input", "verificationId"]
        )
    if verification.verified_at + COMPLETION_WINDOW <= clock.now():
        raise DomainError(
            "CODE_EXPIRED",
            "This signup has expired: start again to get a new code.",
            ["input", "verificationId"],
        )


def _clean_answers(answers: list[SecurityAnswerIn]) -> list[tuple[str, str]]:
    if not 1 <= len(answers) <= MAX_SECURITY_ANSWERS:
        raise invalid_input(
            f"Give between 1 and {MAX_SECURITY_ANSWERS} security answers.", "securityAnswers"
        )
    cleaned = []
    for n, item in enumerate(answers):
        field = ("securityAnswers", str(n))
        question = clean_text(item.question, MAX_QUESTION, *field, "question")
        answer = clean_text(item.answer, MAX_ANSWER, *field, "answer")
        cleaned.append((question, answer))
    if len({q.casefold() for q, _ in cleaned}) != len(cleaned):
        raise invalid_input("Each security question may be answered once.", "securityAnswers")
    return cleaned
