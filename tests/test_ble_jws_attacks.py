"""The lockbox's JWS checks against forgeries, and the exact bytes the firmware contract fixes.

PyJWT signs and verifies (ble/jws.py); these tests hold the lockbox to the contract around it:
only `{"alg":"EdDSA","kid":...,"typ":...}` headers, keys it trusts, strict base64url JSON.
Every forgery below is signed with the lockbox's own trusted server key unless the forgery is
the key itself, so the one defect named is what gets it refused.
"""

import base64
import hashlib
import hmac
import json
from collections.abc import Callable

import pytest
from ble_helpers import KID, SERIAL, Lockbox, last_record, make_lockbox, try_open
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ble.b64 import b64url_decode, b64url_encode
from ble.credential import InvalidCredential, cnf_claim, decode_credential, sign_credential
from ble.jwks import okp_jwk, raw_public_key
from ble.outcomes import AccessOutcome
from ble.revocation import (
    InvalidRevocations,
    RevocationList,
    decode_revocations,
    sign_revocations,
)

CREDENTIAL = "lockbox-credential+jwt"
HEADER: dict[str, object] = {"alg": "EdDSA", "kid": KID, "typ": CREDENTIAL}
Signer = Callable[[bytes], bytes]


def _compact(header: str, payload: str, sign: Signer) -> str:
    """A token from header and payload JSON text as given (so members may repeat)."""
    signing_input = f"{b64url_encode(header.encode())}.{b64url_encode(payload.encode())}"
    return f"{signing_input}.{b64url_encode(sign(signing_input.encode()))}"


def _hs256(secret: bytes) -> Signer:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def _public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _forgeries(lockbox: Lockbox) -> dict[str, str]:
    server = lockbox.server_key
    claims = json.dumps(lockbox.claims())
    header = json.dumps(HEADER)
    attacker = Ed25519PrivateKey.generate()
    genuine = lockbox.credential()
    head, body, sig = genuine.split(".")

    def signed_with(fields: dict[str, object], key: Ed25519PrivateKey = server) -> str:
        return _compact(json.dumps(fields), claims, key.sign)

    def later(token_payload: str) -> str:
        edited = json.loads(b64url_decode(token_payload)) | {"exp": 4102444800}  # 2100
        return b64url_encode(json.dumps(edited).encode())

    return {
        "alg none, no signature": _compact(json.dumps(HEADER | {"alg": "none"}), claims, bytes),
        "alg none, the genuine signature kept": (
            f"{b64url_encode(json.dumps(HEADER | {'alg': 'none'}).encode())}.{body}.{sig}"
        ),
        "HS256 keyed with the raw public key": _compact(
            json.dumps(HEADER | {"alg": "HS256"}),
            claims,
            _hs256(raw_public_key(server.public_key())),
        ),
        "HS256 keyed with the public key's PEM": _compact(
            json.dumps(HEADER | {"alg": "HS256"}), claims, _hs256(_public_pem(server))
        ),
        "HS256 keyed with the JWK's x": _compact(
            json.dumps(HEADER | {"alg": "HS256"}),
            claims,
            _hs256(okp_jwk(server.public_key())["x"].encode()),
        ),
        "RFC 9864's Ed25519 alg, which the contract does not use": signed_with(
            HEADER | {"alg": "Ed25519"}
        ),
        "a kid it does not trust": signed_with(HEADER | {"kid": "server-2026"}),
        "a payload edited after signing": f"{head}.{later(body)}.{sig}",
        "a signature from another key": signed_with(HEADER, attacker),
        "the attacker's key embedded as jwk": signed_with(
            HEADER | {"jwk": okp_jwk(attacker.public_key())}, attacker
        ),
        "a jku pointing elsewhere": signed_with(HEADER | {"jku": "https://attacker.test/jwks"}),
        "an unencoded payload (b64 false)": signed_with(HEADER | {"b64": False, "crit": ["b64"]}),
        "an unknown crit": signed_with(HEADER | {"crit": ["exp"], "exp": 1}),
        "an unknown header field": signed_with(HEADER | {"foo": "bar"}),
        "no kid": signed_with({"alg": "EdDSA", "typ": CREDENTIAL}),
        "no typ": signed_with({"alg": "EdDSA", "kid": KID}),
        "a duplicated kid": _compact(header[:-1] + f', "kid": "{KID}"}}', claims, server.sign),
        "alg none then EdDSA": _compact('{"alg": "none", ' + header[1:], claims, server.sign),
        "a duplicated aud": _compact(header, claims[:-1] + f', "aud": "{SERIAL}"}}', server.sign),
        "padded base64url": f"{head}==.{body}.{sig}"
        if len(head) % 4 == 2
        else f"{head}=.{body}.{sig}",
        "a truncated signature": f"{head}.{body}.{sig[:-4]}",
        "a fourth part": f"{genuine}.{sig}",
    }


FORGERIES = list(_forgeries(make_lockbox()))


async def test_the_genuine_credential_opens() -> None:
    # the baseline every forgery below differs from in one way
    lockbox = make_lockbox()
    assert await try_open(lockbox, lockbox.credential()) is AccessOutcome.OPENED


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_the_lockbox_refuses_a_forged_credential(forgery: str) -> None:
    # given a lockbox and a credential forged this way
    lockbox = make_lockbox()
    token = _forgeries(lockbox)[forgery]
    # when a phone holding the genuine device key presents it
    outcome = await try_open(lockbox, token)
    # then the box stays shut and says why in its log
    assert outcome is AccessOutcome.DENIED_INVALID_CREDENTIAL
    assert last_record(lockbox).outcome is AccessOutcome.DENIED_INVALID_CREDENTIAL
    assert lockbox.simulator.open_count == 0
    with pytest.raises(InvalidCredential):
        decode_credential(token, {KID: lockbox.server_key.public_key()})


def _revocation_list() -> RevocationList:
    return RevocationList(
        iss="https://keybin.test", aud=SERIAL, iat=0, exp=1, seq=1, jti=frozenset({"R3JhbnQ6MQ=="})
    )


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none"},
        {"alg": "HS256"},
        {"alg": "EdDSA", "jku": "https://attacker.test/jwks"},
        {"alg": "EdDSA", "crit": ["seq"]},
        {"alg": "EdDSA", "typ": CREDENTIAL},
    ],
)
def test_a_revocation_list_with_another_header_is_refused(header: dict[str, object]) -> None:
    # given a list signed by the trusted key (or keyed with its public bytes for HS256)
    server = Ed25519PrivateKey.generate()
    fields = {"alg": "EdDSA", "kid": KID, "typ": "lockbox-revocations+jwt"} | header
    sign = _hs256(raw_public_key(server.public_key())) if header["alg"] == "HS256" else server.sign
    payload = json.dumps(_revocation_list().to_dict())
    token = _compact(json.dumps(fields), payload, sign if header["alg"] != "none" else bytes)
    # then the lockbox's check refuses it
    with pytest.raises(InvalidRevocations):
        decode_revocations(token, {KID: server.public_key()})


# ---- the bytes the lockbox firmware contract fixes ---------------------------------------

# RFC 8037, appendix A.1: a published Ed25519 key, so anyone can recompute these tokens.
RFC_8037_KEY = Ed25519PrivateKey.from_private_bytes(
    b64url_decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
)
# Produced by the hand-written signer the firmware was built against; Ed25519 is
# deterministic, so the same key and claims must give these exact bytes.
CREDENTIAL_BYTES = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6InNlcnZlci0yMDI1IiwidHlwIjoibG9ja2JveC1jcmVkZW50aWFsK2p3dCJ9."
    "eyJpc3MiOiJodHRwczovL2tleWJpbi50ZXN0Iiwic3ViIjoiUVdOamIzVnVkRG8zIiwiYXVkIjoiTEItMTAwMjM0I"
    "iwianRpIjoiUjNKaGJuUTZNUT09IiwibmJmIjoxNzQ5NTUzMjAwLCJleHAiOjE3NDk1NjA0MDAsImlhdCI6MTc0OT"
    "U1MzIwMCwiY25mIjp7Imp3ayI6eyJrdHkiOiJPS1AiLCJjcnYiOiJFZDI1NTE5IiwieCI6IkE2RUh2X1BPRUw0ZGN"
    "OMFk1MHZBbVdmazFqQ2JwUTFmSGR5R1pCSlZNYmcifX0sIm10aCI6IkJMRV9DUkVERU5USUFMIiwicmVjIjp7InR6"
    "IjoiRXVyb3BlL1BhcmlzIiwiZGF5cyI6WzEsM10sInN0YXJ0IjoiMDk6MDAiLCJlbmQiOiIyNDowMCJ9fQ."
    "pxj8sN4mKGfbFYMGOolVZUE2tgh6BV1YDtgI--WyVGCPNOhdV7EZYADMTEKiciXTF52q9N50_QyYDdt_EqS-Cw"
)
REVOCATIONS_BYTES = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6InNlcnZlci0yMDI1IiwidHlwIjoibG9ja2JveC1yZXZvY2F0aW9ucytqd3QifQ."
    "eyJpc3MiOiJodHRwczovL2tleWJpbi50ZXN0IiwiYXVkIjoiTEItMTAwMjM0IiwiaWF0IjoxNzQ5NTUzMjAwLCJle"
    "HAiOjE3NDk2Mzk2MDAsInNlcSI6MiwianRpIjpbIlIzSmhiblE2TVE9PSIsIlIzSmhiblE2TWc9PSJdfQ."
    "Oftb5vUqZ3XcQYCmQRiC4zlOzU8zzZhDjBG_z9u322xfm6GgSI7v0dUMb5wTuLoXGsSwHnpS8WoJu2zkHj3VCw"
)


def test_a_credential_is_byte_for_byte_what_the_firmware_was_built_against() -> None:
    device = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    claims = {
        "iss": "https://keybin.test",
        "sub": "QWNjb3VudDo3",
        "aud": SERIAL,
        "jti": "R3JhbnQ6MQ==",
        "nbf": 1749553200,
        "exp": 1749560400,
        "iat": 1749553200,
        "cnf": cnf_claim(device.public_key()),
        "mth": "BLE_CREDENTIAL",
        "rec": {"tz": "Europe/Paris", "days": [1, 3], "start": "09:00", "end": "24:00"},
    }
    token = sign_credential(RFC_8037_KEY, "server-2025", claims)
    assert token == CREDENTIAL_BYTES
    assert decode_credential(token, {"server-2025": RFC_8037_KEY.public_key()}).to_dict() == claims


def test_a_revocation_list_is_byte_for_byte_what_the_firmware_was_built_against() -> None:
    revocations = RevocationList(
        iss="https://keybin.test",
        aud=SERIAL,
        iat=1749553200,
        exp=1749639600,
        seq=2,
        jti=frozenset({"R3JhbnQ6Mg==", "R3JhbnQ6MQ=="}),
    )
    token = sign_revocations(RFC_8037_KEY, "server-2025", revocations)
    assert token == REVOCATIONS_BYTES
    assert decode_revocations(token, {"server-2025": RFC_8037_KEY.public_key()}) == revocations


def test_the_header_is_compact_json_in_the_documented_order() -> None:
    header = base64.urlsafe_b64decode(CREDENTIAL_BYTES.split(".")[0] + "==")
    assert header == b'{"alg":"EdDSA","kid":"server-2025","typ":"lockbox-credential+jwt"}'
