"""Account status: only an ACTIVE account grants, issues codes, signs credentials or adds to
its listings and lockboxes; any other status is told what to do about it."""

from __future__ import annotations

from core.errors import DomainError
from models.accounts import Account
from models.enums import AccountKind, AccountStatus

_IN_WORDS = {
    AccountStatus.INACTIVE: "inactive",
    AccountStatus.SUSPENDED: "suspended",
    AccountStatus.PAST_DUE: "past due",
}


def require_active(account: Account) -> None:
    """Checked first, before the input and before the PIN: nothing else can succeed, and a
    PIN typed for an operation that cannot happen must not count towards its lockout."""
    if account.status != AccountStatus.ACTIVE:
        raise DomainError("ACCOUNT_NOT_ACTIVE", not_active_message(account))


def not_active_message(account: Account) -> str:
    state = _IN_WORDS.get(account.status, "not active")
    if account.kind == AccountKind.AGENT:
        # The seed's advice: the association or MLS office sets an agent's status.
        return (
            f"Your account is {state}. Please contact your Association or MLS office to find "
            "out why and what is needed to activate it."
        )
    return (
        f"Your account is {state}, so it cannot open lockboxes. Please contact support to "
        "find out why."
    )
