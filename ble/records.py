"""Access records: what a lockbox logged, HMAC-signed with its secret so the server can trust it."""

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from typing import Any

from ble.b64 import b64url_decode, b64url_encode
from ble.outcomes import AccessMethod, AccessOutcome
from ble.secret import secret_bytes

FIELDS = ("serial", "seq", "at", "method", "outcome", "jti", "sub")
# The most records one upload (reportLockboxEvents) carries: what a lockbox keeps between
# visits; a longer log goes up in several uploads, each with its own receipt.
MAX_UPLOAD = 500


class InvalidRecord(ValueError):
    """Not a record, or its HMAC does not match the lockbox secret."""


@dataclass(frozen=True)
class AccessRecord:
    serial: str
    seq: int  # per lockbox, from 1; the server ignores a (serial, seq) it has seen
    at: int  # Unix seconds by the lockbox's clock
    method: AccessMethod
    outcome: AccessOutcome
    jti: str | None  # the grant's global id
    sub: str | None  # the account's global id


def encode_record(record: AccessRecord, secret: str) -> str:
    body = json.dumps(asdict(record), separators=(",", ":")).encode()
    return f"{b64url_encode(body)}.{b64url_encode(_mac(secret, body))}"


def verify_record(token: str, secret: str) -> AccessRecord:
    body, mac = _split(token)
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise InvalidRecord("HMAC does not match this lockbox's secret")
    return _parse(body)


def peek_record(token: str) -> AccessRecord:
    """Read a record without its secret: phones page through the log by `seq`."""
    return _parse(_split(token)[0])


def _mac(secret: str, body: bytes) -> bytes:
    return hmac.new(secret_bytes(secret), body, hashlib.sha256).digest()


def _split(token: str) -> tuple[bytes, bytes]:
    body, _, mac = token.partition(".")
    try:
        return b64url_decode(body), b64url_decode(mac)
    except ValueError as error:
        raise InvalidRecord("not two base64url parts") from error


def _parse(body: bytes) -> AccessRecord:
    try:
        fields = json.loads(body)
    except ValueError as error:
        raise InvalidRecord("not JSON") from error
    if not isinstance(fields, dict) or set(fields) != set(FIELDS):
        raise InvalidRecord(f"a record has exactly the keys {', '.join(FIELDS)}")
    if not _valid_types(fields):
        raise InvalidRecord("a record field has the wrong type")
    try:
        method, outcome = AccessMethod(fields["method"]), AccessOutcome(fields["outcome"])
    except ValueError as error:
        raise InvalidRecord("unknown method or outcome") from error
    return AccessRecord(**fields | {"method": method, "outcome": outcome})


def _valid_types(fields: dict[str, Any]) -> bool:
    counters = [fields["seq"], fields["at"]]
    ints = all(isinstance(x, int) and not isinstance(x, bool) for x in counters)
    texts = isinstance(fields["serial"], str)
    ids = all(x is None or isinstance(x, str) for x in (fields["jti"], fields["sub"]))
    return ints and texts and ids and fields["seq"] >= 1
