"""Access records: the lockbox's HMAC-signed log lines, as the server verifies them."""

import base64
import hashlib
import hmac
import json
import secrets

import pyotp
import pytest

from ble.b64 import b64url_encode
from ble.outcomes import AccessMethod, AccessOutcome
from ble.records import AccessRecord, InvalidRecord, encode_record, peek_record, verify_record
from ble.secret import InvalidSecret, normalize_secret

RECORD = AccessRecord(
    serial="LB-100234",
    seq=7,
    at=1_749_556_800,
    method=AccessMethod.BLE_CREDENTIAL,
    outcome=AccessOutcome.OPENED,
    jti="R3JhbnQ6MQ==",
    sub="QWNjb3VudDo3",
)


def _mac(secret: str, body: bytes) -> str:
    key = base64.b32decode(secret)
    return b64url_encode(hmac.new(key, body, hashlib.sha256).digest())


def test_the_encoding_is_the_documented_one() -> None:
    secret = pyotp.random_base32()
    body = (
        b'{"serial":"LB-100234","seq":7,"at":1749556800,"method":"BLE_CREDENTIAL",'
        b'"outcome":"OPENED","jti":"R3JhbnQ6MQ==","sub":"QWNjb3VudDo3"}'
    )
    assert encode_record(RECORD, secret) == f"{b64url_encode(body)}.{_mac(secret, body)}"


def test_round_trip_with_lowercase_unpadded_secret() -> None:
    # 16 bytes are 26 base32 characters: strict base32 wants six "=" after them
    secret = base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=")
    token = encode_record(RECORD, secret)
    assert verify_record(token, secret.lower()) == RECORD
    assert verify_record(token, " ".join([secret[:13], secret[13:]])) == RECORD


def test_nulls_round_trip() -> None:
    secret = pyotp.random_base32()
    record = AccessRecord(
        "LB-1", 1, 0, AccessMethod.ONE_DAY_CODE, AccessOutcome.DENIED_EXPIRED, None, None
    )
    assert verify_record(encode_record(record, secret), secret) == record


def test_a_tampered_record_is_refused() -> None:
    secret = pyotp.random_base32()
    body, mac = encode_record(RECORD, secret).split(".")
    edited = base64.urlsafe_b64decode(body + "==").replace(b"OPENED", b"DENIED_EXPIRED")
    with pytest.raises(InvalidRecord, match="HMAC"):
        verify_record(f"{b64url_encode(edited)}.{mac}", secret)


def test_another_lockboxs_secret_is_refused() -> None:
    token = encode_record(RECORD, pyotp.random_base32())
    with pytest.raises(InvalidRecord, match="HMAC"):
        verify_record(token, pyotp.random_base32())


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "!!.AA", "e30.!!"])
def test_malformed_records_are_refused(token: str) -> None:
    with pytest.raises(InvalidRecord):
        verify_record(token, pyotp.random_base32())


@pytest.mark.parametrize(
    "fields",
    [
        {"extra": 1},
        {"seq": 0},
        {"seq": True},
        {"at": "noon"},
        {"jti": 5},
        {"method": "TELEPATHY"},
        {"outcome": "MAYBE"},
    ],
)
def test_well_signed_records_of_the_wrong_shape_are_refused(fields: dict[str, object]) -> None:
    secret = pyotp.random_base32()
    good = json.loads(_body_json(encode_record(RECORD, secret)))
    body = json.dumps(good | fields, separators=(",", ":")).encode()
    with pytest.raises(InvalidRecord):
        verify_record(f"{b64url_encode(body)}.{_mac(secret, body)}", secret)


def test_peek_reads_without_the_secret() -> None:
    assert peek_record(encode_record(RECORD, pyotp.random_base32())) == RECORD


@pytest.mark.parametrize("secret", ["not base32!", "AAAA", ""])
def test_bad_secrets_are_refused(secret: str) -> None:
    with pytest.raises(InvalidSecret):
        normalize_secret(secret)
    with pytest.raises(InvalidSecret):
        encode_record(RECORD, secret)


def test_normalize_secret() -> None:
    secret = pyotp.random_base32()
    assert normalize_secret(secret.lower() + "====") == secret


def _body_json(token: str) -> bytes:
    body = token.split(".")[0]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
