"""Domain errors: what a user can fix (userErrors) and what access forbids."""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """A failure the user can fix, returned as a userError with the contract's code."""

    def __init__(self, code: str, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = list(field) if field is not None else None


class Unauthenticated(Exception):
    """No or bad token."""


class Forbidden(Exception):
    """Signed in, but not allowed."""


def invalid_input(message: str, *field: str) -> DomainError:
    return DomainError("INVALID_INPUT", message, ["input", *field] if field else None)
