"""How a lockbox was approached (method) and what it did (outcome), as the contract names them."""

from enum import StrEnum


class AccessMethod(StrEnum):
    BLE_CREDENTIAL = "BLE_CREDENTIAL"
    ONE_DAY_CODE = "ONE_DAY_CODE"
    AGENT_KEY = "AGENT_KEY"


class AccessOutcome(StrEnum):
    OPENED = "OPENED"
    DENIED_NOT_YET_VALID = "DENIED_NOT_YET_VALID"
    DENIED_EXPIRED = "DENIED_EXPIRED"
    DENIED_REVOKED = "DENIED_REVOKED"
    DENIED_INVALID_CREDENTIAL = "DENIED_INVALID_CREDENTIAL"
    DENIED_WRONG_LOCKBOX = "DENIED_WRONG_LOCKBOX"


# The lockbox checks the server signature, the holder's nonce signature and `aud` before
# anything else, so every other outcome proves the phone holds a genuine credential for this
# lockbox. Only such a phone may read the access log; dropping records takes the server's
# receipt for them (ble/receipt.py), so even a verified holder cannot erase a visit unseen.
HOLDER_VERIFIED = frozenset(AccessOutcome) - {
    AccessOutcome.DENIED_INVALID_CREDENTIAL,
    AccessOutcome.DENIED_WRONG_LOCKBOX,
}
