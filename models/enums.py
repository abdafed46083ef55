"""Enumerations shared by models and the GraphQL schema (names match the contract)."""

from enum import StrEnum

# The lockbox's own names (ble/ is the lockbox side, self-contained); the same here.
from ble.outcomes import AccessMethod as AccessMethod
from ble.outcomes import AccessOutcome as AccessOutcome


class AccountKind(StrEnum):
    AGENT = "AGENT"
    CONTRACTOR = "CONTRACTOR"


class AccountStatus(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    SUSPENDED = "SUSPENDED"
    PAST_DUE = "PAST_DUE"


class ContractorRole(StrEnum):
    CONTRACTOR = "CONTRACTOR"
    HOME_INSPECTOR = "HOME_INSPECTOR"
    APPRAISER = "APPRAISER"
    PHOTOGRAPHER = "PHOTOGRAPHER"
    CLEANER = "CLEANER"
    STAGER = "STAGER"
    PEST_CONTROL = "PEST_CONTROL"
    SURVEYOR = "SURVEYOR"
    OTHER = "OTHER"


class ListingSource(StrEnum):
    IMPORTED = "IMPORTED"
    MANUAL = "MANUAL"


class ListingStatus(StrEnum):
    COMING_SOON = "COMING_SOON"
    ACTIVE = "ACTIVE"
    PENDING = "PENDING"
    CLOSED = "CLOSED"
    WITHDRAWN = "WITHDRAWN"


class MessageKind(StrEnum):
    ACCESS_GRANTED = "ACCESS_GRANTED"
    ACCESS_REVOKED = "ACCESS_REVOKED"
    ACCESS_USED = "ACCESS_USED"
    ACCESS_STARTING = "ACCESS_STARTING"
    ACCOUNT = "ACCOUNT"


class PushPlatform(StrEnum):
    APNS = "APNS"
    FCM = "FCM"


class VerificationPurpose(StrEnum):
    SIGNUP = "SIGNUP"
    PHONE_CHANGE = "PHONE_CHANGE"


class StaffRole(StrEnum):
    SUPPORT = "SUPPORT"
    SYSADMIN = "SYSADMIN"


class OutboxChannel(StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"
    EVENT = "EVENT"
    # Pushes, one channel per service: a service that hangs holds back only its own phones.
    FCM = "FCM"
    APNS = "APNS"
    # A push queued by a release that had one channel for both (during an upgrade): the FCM
    # lane takes it, and sends it to the service its payload names.
    PUSH = "PUSH"


class OutboxStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    DEAD = "DEAD"


class AccountEventKind(StrEnum):
    IMPORTED = "IMPORTED"
    INVITED = "INVITED"
    SIGNED_UP = "SIGNED_UP"
    SIGNED_IN = "SIGNED_IN"
    SIGN_IN_FAILED = "SIGN_IN_FAILED"
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    SIGNED_OUT = "SIGNED_OUT"
    DEVICE_REGISTERED = "DEVICE_REGISTERED"
    DEVICE_REMOVED = "DEVICE_REMOVED"
    PASSWORD_RESET_REQUESTED = "PASSWORD_RESET_REQUESTED"
    PASSWORD_RESET = "PASSWORD_RESET"
    PASSWORD_CHANGED = "PASSWORD_CHANGED"
    PIN_SET = "PIN_SET"
    PIN_FAILED = "PIN_FAILED"
    PIN_LOCKED = "PIN_LOCKED"
    STEP_UP_ENABLED = "STEP_UP_ENABLED"
    EMAIL_CHANGED = "EMAIL_CHANGED"
    EMAIL_CONFIRMED = "EMAIL_CONFIRMED"
    EMAIL_RELEASED = "EMAIL_RELEASED"
    PHONE_CHANGED = "PHONE_CHANGED"
    PROFILE_UPDATED = "PROFILE_UPDATED"
    SECURITY_ANSWERS_VIEWED = "SECURITY_ANSWERS_VIEWED"
    DELETED = "DELETED"
    PAYMENT_LINK_SENT = "PAYMENT_LINK_SENT"
    PAYMENT_RECEIVED = "PAYMENT_RECEIVED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    PAYMENT_REFUNDED = "PAYMENT_REFUNDED"
    AUTOPAY_STARTED = "AUTOPAY_STARTED"
    AUTOPAY_ENDED = "AUTOPAY_ENDED"
    MADE_PAST_DUE = "MADE_PAST_DUE"
    MADE_ACTIVE = "MADE_ACTIVE"


class StaffAction(StrEnum):
    """What a staff member did in the console, as the audit trail records it."""

    SIGNED_IN = "SIGNED_IN"
    SIGN_IN_FAILED = "SIGN_IN_FAILED"
    SIGNED_OUT = "SIGNED_OUT"
    PASSWORD_CHANGED = "PASSWORD_CHANGED"
    SEARCHED = "SEARCHED"
    ACCOUNT_VIEWED = "ACCOUNT_VIEWED"
    EMAIL_CHANGED = "EMAIL_CHANGED"
    ANSWERS_REVEALED = "ANSWERS_REVEALED"
    DEVICE_REMOVED = "DEVICE_REMOVED"
    ACCOUNT_DELETED = "ACCOUNT_DELETED"
    STAFF_DISABLED = "STAFF_DISABLED"
    STAFF_ENABLED = "STAFF_ENABLED"
    AUDIT_EXPORTED = "AUDIT_EXPORTED"
    PAYMENT_LINK_SENT = "PAYMENT_LINK_SENT"


class BillingState(StrEnum):
    """Whether an agent is billed: ON, OFF (keybin has no Stripe configuration) or NOT_BILLED
    (no price for the agent's association)."""

    ON = "ON"
    OFF = "OFF"
    NOT_BILLED = "NOT_BILLED"


class PaymentKind(StrEnum):
    PAYMENT = "PAYMENT"
    REFUND = "REFUND"
    FAILED = "FAILED"


class PaymentMethod(StrEnum):
    CHECKOUT = "CHECKOUT"  # a Checkout page, from the app or a link support sent
    AUTOPAY = "AUTOPAY"  # the monthly Stripe subscription
