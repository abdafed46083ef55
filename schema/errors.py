"""userErrors and the top-level access errors of the contract."""

from __future__ import annotations

from enum import Enum

import strawberry
from graphql import GraphQLError

from core.errors import DomainError


@strawberry.enum
class UserErrorCode(Enum):
    INVALID_INPUT = "INVALID_INPUT"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    ACCOUNT_NOT_ACTIVE = "ACCOUNT_NOT_ACTIVE"
    DEVICE_LIMIT_REACHED = "DEVICE_LIMIT_REACHED"
    INVALID_PIN = "INVALID_PIN"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    EMAIL_BELONGS_TO_AGENT = "EMAIL_BELONGS_TO_AGENT"
    INVALID_CODE = "INVALID_CODE"
    CODE_EXPIRED = "CODE_EXPIRED"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    INVALID_TOKEN = "INVALID_TOKEN"
    NOT_FOUND = "NOT_FOUND"
    LOCKBOX_UNAVAILABLE = "LOCKBOX_UNAVAILABLE"
    NO_LOCKBOX_ASSIGNED = "NO_LOCKBOX_ASSIGNED"
    LOCKBOX_NOT_BLE = "LOCKBOX_NOT_BLE"
    INVALID_TIME_WINDOW = "INVALID_TIME_WINDOW"
    GRANT_ALREADY_STARTED = "GRANT_ALREADY_STARTED"
    GRANT_ALREADY_REVOKED = "GRANT_ALREADY_REVOKED"
    DEVICE_NOT_REGISTERED = "DEVICE_NOT_REGISTERED"
    INVALID_RECORD = "INVALID_RECORD"
    # Billing: no payments taken (not configured, or no price for the association), nothing
    # owed, Stripe not answering, or no autopay to stop.
    BILLING_OFF = "BILLING_OFF"
    NOTHING_DUE = "NOTHING_DUE"
    PAYMENT_UNAVAILABLE = "PAYMENT_UNAVAILABLE"
    AUTOPAY_OFF = "AUTOPAY_OFF"


@strawberry.type
class UserError:
    code: UserErrorCode
    field: list[str] | None
    message: str


def user_errors(error: DomainError) -> list[UserError]:
    return [UserError(code=UserErrorCode(error.code), field=error.field, message=error.message)]


def unauthenticated() -> GraphQLError:
    return GraphQLError("Sign in first.", extensions={"code": "UNAUTHENTICATED"})


def forbidden() -> GraphQLError:
    return GraphQLError("Not allowed.", extensions={"code": "FORBIDDEN"})


def bad_argument(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "INVALID_INPUT"})


def not_available(operation: str) -> GraphQLError:
    """For contract operations this server does not offer yet: clear, not a crash."""
    return GraphQLError(
        f"{operation} is not available on this server yet.",
        extensions={"code": "NOT_IMPLEMENTED"},
    )
