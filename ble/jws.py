"""Compact JWS (RFC 7515) with EdDSA: the envelope of credentials and revocation lists."""

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ble.b64 import b64url_decode, b64url_encode

ALG = "EdDSA"

_T = TypeVar("_T")
# Each caller names the error its own callers expect (InvalidCredential, ...).
Error = type[ValueError]


def sign(private_key: Ed25519PrivateKey, kid: str, typ: str, claims: Mapping[str, object]) -> str:
    header = {"alg": ALG, "kid": kid, "typ": typ}
    signing_input = f"{_encode_json(header)}.{_encode_json(claims)}"
    signature = private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


def verify(
    token: str, typ: str, trusted: Mapping[str, Ed25519PublicKey], error: Error
) -> dict[str, Any]:
    """The payload of a token of type `typ` signed by a trusted key; `error` otherwise."""
    header, payload, signature = split(token, error)
    if header.get("alg") != ALG or header.get("typ") != typ or "crit" in header:
        raise error(f"not a {typ} header")
    kid = header.get("kid")
    key = trusted.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise error("signed with a key this lockbox does not trust")
    try:
        key.verify(signature, token.rsplit(".", 1)[0].encode("ascii"))
    except InvalidSignature as failure:
        raise error("bad signature") from failure
    return payload


def split(token: str, error: Error) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    parts = token.split(".")
    if len(parts) != 3:
        raise error("a compact JWS has three parts")
    try:
        header, payload = (json.loads(b64url_decode(part)) for part in parts[:2])
        signature = b64url_decode(parts[2])
    except ValueError as failure:  # bad base64url, bad UTF-8 and bad JSON are all ValueErrors
        raise error("not base64url JSON") from failure
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise error("header and payload must be JSON objects")
    return header, payload, signature


def typed(claims: Mapping[str, Any], name: str, kind: type[_T], error: Error) -> _T:
    value = claims.get(name)
    # bool is an int in Python but never a valid time, seq or id here
    if not isinstance(value, kind) or isinstance(value, bool):
        raise error(f"claim {name!r} must be {kind.__name__}")
    return value


def _encode_json(value: Mapping[str, object]) -> str:
    return b64url_encode(json.dumps(dict(value), separators=(",", ":")).encode())
