"""Email addresses of accounts: the accepted form, and who may hold one."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from core.errors import DomainError, invalid_input
from models.accounts import Account
from models.enums import AccountKind

MAX_EMAIL = 254


def valid_email(raw: str, *field: str) -> str:
    """One mailbox, written as mail is sent to it (lower-cased, the domain in ASCII), or
    INVALID_INPUT on the given input field.

    Anything else an address header may hold (a list, a group, a display name, a quoted or
    bracketed part) would let one stored address reach other mailboxes, so it is refused.
    No DNS look-up: the address is checked as written.
    """
    text = raw.strip()
    if len(text) > MAX_EMAIL:
        raise invalid_input(f"An email address is at most {MAX_EMAIL} characters.", *field)
    local = text.rpartition("@")[0]
    if not local.isascii():
        # SMTPUTF8: few relays and mailboxes take it, so a code or invitation could be lost.
        raise invalid_input(
            "Use an address whose part before the @ is plain ASCII (a-z, 0-9 and . _ + -).",
            *field,
        )
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise invalid_input(f"Enter a valid email address. {error}", *field) from None
    email = (checked.ascii_email or checked.normalized).lower()
    if len(email) > MAX_EMAIL:  # a domain can grow when written in ASCII
        raise invalid_input(f"An email address is at most {MAX_EMAIL} characters.", *field)
    return email


async def check_email_free(
    email: str,
    kind: AccountKind,
    *field: str,
    exclude_account_id: int | None = None,
    proven_only: bool = False,
) -> None:
    """Refuse an email a contractor may not take; agents may share theirs with linked accounts.

    With `proven_only` (the taker holds an invitation to the address), a contractor's
    unproven claim does not count: it loses the address when the taker signs up.
    """
    holders = Account.filter(email=email, deleted_at__isnull=True)
    if exclude_account_id is not None:
        holders = holders.exclude(id=exclude_account_id)
    path = ["input", *field] if field else None
    if kind == AccountKind.CONTRACTOR and await holders.filter(kind=AccountKind.AGENT).exists():
        raise DomainError(
            "EMAIL_BELONGS_TO_AGENT",
            "This email belongs to a member agent: use another address.",
            path,
        )
    contractors = holders.filter(kind=AccountKind.CONTRACTOR)
    if proven_only:
        contractors = contractors.filter(email_verified=True)
    if await contractors.exists():
        raise DomainError("EMAIL_TAKEN", "An account with this email already exists.", path)
