"""Email addresses of accounts: the accepted form, and who may hold one."""

from __future__ import annotations

import re

from core.errors import DomainError, invalid_input
from models.accounts import Account
from models.enums import AccountKind
from resolvers.auth import normalize_email

# Deliberately plain: one @, a dotted domain, no spaces or control characters.
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f.]+")
MAX_EMAIL = 254


def valid_email(raw: str, *field: str) -> str:
    """The address lower-cased, or INVALID_INPUT on the given input field."""
    email = normalize_email(raw)
    if len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email):
        raise invalid_input("Enter a valid email address.", *field)
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
