"""Credentials as compact JWS, and the JWKs that carry their keys."""

import json

import pytest
from ble_helpers import GRANT_ID, KID, SERIAL, make_lockbox
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble.b64 import b64url_decode, b64url_encode
from ble.credential import (
    InvalidCredential,
    cnf_claim,
    decode_credential,
    peek_claims,
    sign_credential,
)
from ble.jwks import InvalidJwk, jwks, key_from_jwk, okp_jwk, parse_jwks, raw_public_key, thumbprint
from ble.outcomes import AccessMethod
from ble.recurrence import Recurrence

HEADER: dict[str, object] = {"alg": "EdDSA", "kid": KID, "typ": "lockbox-credential+jwt"}


def _resign(private_key: Ed25519PrivateKey, header: dict[str, object], payload: bytes) -> str:
    head = b64url_encode(json.dumps(header).encode())
    body = b64url_encode(payload)
    sig = private_key.sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{b64url_encode(sig)}"


def test_sign_and_decode_round_trip() -> None:
    lockbox = make_lockbox()
    rec = Recurrence(tz="Europe/Paris", days=(1, 3), start="09:00", end="24:00")
    token = lockbox.credential(rec=rec.to_claim())
    claims = decode_credential(token, {KID: lockbox.server_key.public_key()})
    assert (claims.aud, claims.jti, claims.rec, claims.mth) == (
        SERIAL,
        GRANT_ID,
        rec,
        AccessMethod.BLE_CREDENTIAL,
    )
    assert claims.device_key == raw_public_key(lockbox.device_key.public_key())
    assert claims.to_dict() == lockbox.claims(rec=rec.to_claim(), mth="BLE_CREDENTIAL")


def test_the_token_has_the_documented_header_and_cnf() -> None:
    lockbox = make_lockbox()
    header, payload, sig = lockbox.credential().split(".")
    assert json.loads(b64url_decode(header)) == HEADER
    jwk = json.loads(b64url_decode(payload))["cnf"]["jwk"]
    assert jwk == {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"]}
    assert len(b64url_decode(jwk["x"])) == 32 and len(b64url_decode(sig)) == 64
    assert "=" not in header + payload + sig


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "kid": KID, "typ": "lockbox-credential+jwt"},
        {"alg": "EdDSA", "kid": KID, "typ": "JWT"},
        {"alg": "EdDSA", "kid": ["k"], "typ": "lockbox-credential+jwt"},
        {"alg": "EdDSA", "kid": KID, "typ": "lockbox-credential+jwt", "crit": ["exp"]},
    ],
)
def test_a_foreign_header_is_refused(header: dict[str, object]) -> None:
    lockbox = make_lockbox()
    payload = json.dumps(lockbox.claims()).encode()
    token = _resign(lockbox.server_key, header, payload)
    with pytest.raises(InvalidCredential):
        decode_credential(token, {KID: lockbox.server_key.public_key()})


def test_unknown_kid_and_wrong_key_are_refused() -> None:
    lockbox = make_lockbox()
    token = lockbox.credential()
    with pytest.raises(InvalidCredential, match="does not trust"):
        decode_credential(token, {"other": lockbox.server_key.public_key()})
    with pytest.raises(InvalidCredential, match="bad signature"):
        decode_credential(token, {KID: Ed25519PrivateKey.generate().public_key()})


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "e30.e30.!!", "bm90IGpzb24.e30.AA"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidCredential):
        decode_credential(token, {})
    with pytest.raises(InvalidCredential):
        peek_claims(token)


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": ["LB-1", "LB-2"]},
        {"nbf": True},
        {"exp": "tomorrow"},
        {"jti": 7},
        {"cnf": {"jwk": {"kty": "EC", "crv": "P-256", "x": "AA"}}},
        {"cnf": {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}}},
        {"mth": "ONE_DAY_CODE_PLEASE"},
        {"rec": {"tz": "Mars/Olympus", "days": [1], "start": "09:00", "end": "10:00"}},
    ],
)
def test_claims_of_the_wrong_shape_are_refused_even_when_signing(
    overrides: dict[str, object],
) -> None:
    lockbox = make_lockbox()
    with pytest.raises(InvalidCredential):
        lockbox.credential(**overrides)
    payload = json.dumps(lockbox.claims(**overrides)).encode()
    token = _resign(lockbox.server_key, HEADER, payload)
    with pytest.raises(InvalidCredential):
        decode_credential(token, {KID: lockbox.server_key.public_key()})


def test_missing_cnf_is_refused() -> None:
    lockbox = make_lockbox()
    claims = lockbox.claims()
    del claims["cnf"]
    with pytest.raises(InvalidCredential):
        sign_credential(lockbox.server_key, KID, claims)


def test_peek_reads_claims_without_keys() -> None:
    lockbox = make_lockbox()
    assert peek_claims(lockbox.credential(aud="LB-7")).aud == "LB-7"


def test_cnf_from_raw_bytes_equals_cnf_from_key() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    assert cnf_claim(raw_public_key(key)) == cnf_claim(key) == {"jwk": okp_jwk(key)}
    with pytest.raises(ValueError):
        okp_jwk(b"too short")


def test_jwks_round_trip() -> None:
    keys = {f"k{i}": Ed25519PrivateKey.generate().public_key() for i in range(2)}
    document = jwks(keys)
    assert document["keys"][0] == okp_jwk(keys["k0"]) | {"kid": "k0", "use": "sig", "alg": "EdDSA"}
    parsed = parse_jwks(json.loads(json.dumps(document)))
    assert {kid: raw_public_key(key) for kid, key in parsed.items()} == {
        kid: raw_public_key(key) for kid, key in keys.items()
    }


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"keys": {}},
        {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA", "kid": "k"}]},
        {"keys": [{"kid": "k"}]},
        {
            "keys": [
                {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
            ]
        },
    ],
)
def test_bad_jwks_are_refused(document: object) -> None:
    with pytest.raises(InvalidJwk):
        parse_jwks(document)


def test_thumbprint_matches_rfc_8037() -> None:
    # RFC 8037, appendix A.2 and A.3
    key = key_from_jwk(
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    )
    assert thumbprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize("text", ["a", "ab=", "a+b/", "ab cd", "é"])
def test_b64url_decoding_is_strict(text: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)


def test_b64url_round_trip_without_padding() -> None:
    for n in range(5):
        data = bytes(range(250, 250 + n)) if n else b""
        assert "=" not in b64url_encode(data)
        assert b64url_decode(b64url_encode(data)) == data
