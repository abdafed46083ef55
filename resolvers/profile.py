"""My account: name, role and company; phone (SMS-verified) and email changes."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import clock
from core.errors import DomainError, invalid_input
from core.text import is_one_line
from models.accounts import Account, Verification
from models.enums import AccountEventKind, AccountKind, ContractorRole, StaffAction
from models.enums import VerificationPurpose as Purpose
from notify import outbox
from resolvers import audit, email_proof, events, verifications
from resolvers.auth import check_password_of, expire_password_resets
from resolvers.emails import check_email_free, valid_email
from resolvers.events import SELF, Actor
from resolvers.phones import normalize_phone
from settings import Settings

MAX_NAME = 100
MAX_COMPANY = 200


def clean_text(value: str, max_length: int, *field: str) -> str:
    """Trimmed, non-empty, at most max_length, no control characters (PostgreSQL refuses NUL)."""
    text = value.strip()
    if not text or len(text) > max_length or not is_one_line(text):
        raise invalid_input(f"Enter 1-{max_length} characters.", *field)
    return text


def clean_name(value: str, *field: str) -> str:
    return clean_text(value, MAX_NAME, *field)


def clean_company(value: str | None) -> str | None:
    """An empty company means none."""
    if value is None or not value.strip():
        return None
    return clean_text(value, MAX_COMPANY, "company")


async def update_my_info(
    account: Account,
    first_name: str | None = None,
    last_name: str | None = None,
    role: ContractorRole | None = None,
    company: str | None = None,
) -> Account:
    """Change the given fields only; role and company are a contractor's."""
    changes: dict[str, object] = {}
    if first_name is not None:
        changes["first_name"] = clean_name(first_name, "firstName")
    if last_name is not None:
        changes["last_name"] = clean_name(last_name, "lastName")
    if account.kind != AccountKind.CONTRACTOR and (role is not None or company is not None):
        field = "role" if role is not None else "company"
        raise invalid_input("Only contractors have a role and a company.", field)
    if role is not None:
        changes["role"] = role
    if company is not None:
        changes["company"] = clean_company(company)
    changed = [name for name, value in changes.items() if getattr(account, name) != value]
    if changed:
        async with in_transaction():
            await Account.filter(id=account.id).update(**{n: changes[n] for n in changed})
            # The field names only: the log must never copy personal data.
            await events.record(account, AccountEventKind.PROFILE_UPDATED, ", ".join(changed))
    return await Account.get(id=account.id)


async def begin_phone_change(account: Account, new_phone: str) -> Verification:
    """Text a code to the new number; the number changes once the code comes back."""
    phone = normalize_phone(new_phone, "newPhone")
    if phone == account.phone:
        raise invalid_input("This is already the account's phone number.", "newPhone")
    verification = await verifications.send_code(Purpose.PHONE_CHANGE, phone, account=account)
    outbox.wake()
    return verification


async def confirm_phone_change(account: Account, verification_pk: str, code: str) -> Account:
    verification = await verifications.find(verification_pk, Purpose.PHONE_CHANGE)
    if verification.account_id != account.id:  # type: ignore[attr-defined]
        raise DomainError("NOT_FOUND", "No such verification.", ["input", "verificationId"])
    await verifications.check_code(verification, code)
    now = clock.now()
    async with in_transaction():
        claimed = await Verification.filter(id=verification.id, completed_at__isnull=True).update(
            verified_at=now, completed_at=now
        )
        if not claimed:
            raise DomainError("CODE_EXPIRED", "This code has already been used.", ["input", "code"])
        await Account.filter(id=account.id).update(phone=verification.phone)
        await events.record(account, AccountEventKind.PHONE_CHANGED)
    return await Account.get(id=account.id)


async def update_email(
    settings: Settings, account: Account, new_email: str, password: str
) -> Account:
    email = valid_email(new_email, "newEmail")
    await check_password_of(account, password, "password")
    await _change_email(settings, account, email, SELF)
    return await Account.get(id=account.id)


async def change_email_by_staff(
    settings: Settings, account_id: int, new_email: str, actor: Actor
) -> None:
    """Support's "Edit" on the email: the same rules, no password."""
    account = await Account.get_or_none(id=account_id, deleted_at__isnull=True)
    if account is None:
        raise DomainError("NOT_FOUND", "No such account.")
    await _change_email(settings, account, valid_email(new_email, "newEmail"), actor)


async def _change_email(settings: Settings, account: Account, email: str, actor: Actor) -> None:
    """The new address is unproven until its owner follows the link mailed there; the old
    address is told, so a change nobody asked for does not go unnoticed."""
    if email == account.email:
        return
    await check_email_free(email, account.kind, "newEmail", exclude_account_id=account.id)
    old = account.email
    try:
        async with in_transaction():
            await Account.filter(id=account.id).update(email=email, email_verified=False)
            # A reset link mailed to the old address must not outlive its power over the account.
            await expire_password_resets(account.id)
            await email_proof.mail_confirmation(settings, account, email)
            if old:
                await outbox.email(
                    old,
                    "email_changed",
                    {
                        "name": account.first_name or "there",
                        "by_support": actor.staff_id is not None,
                    },
                    account_id=account.id,
                )
            # Masked both ways: the log tells addresses apart without holding them.
            detail = audit.email_change_detail(old, email)
            await events.record(account, AccountEventKind.EMAIL_CHANGED, detail, actor)
            await audit.record_by(actor, StaffAction.EMAIL_CHANGED, account.id, detail)
    except IntegrityError:
        # The unique index on contractor addresses: someone took it a moment ago.
        raise DomainError(
            "EMAIL_TAKEN", "An account with this email already exists.", ["input", "newEmail"]
        ) from None
    outbox.wake()
