"""Compact JWS (RFC 7515) with EdDSA: the envelope of credentials and revocation lists.

PyJWT signs and verifies; this module pins what the lockbox firmware expects around it. The
firmware contract fixes the header at exactly `{"alg":"EdDSA","kid":...,"typ":...}` (in that
order, which is PyJWT's sorted order) over the compact JSON of the claims, so tokens are the same
bytes they were before a library signed them. Verification stays strict where libraries are
lenient: base64url without padding, no duplicated JSON members, no header field beyond those
three (so no `crit`, `jku`, `jwk`, `b64`...), and only EdDSA known to the verifier at all.
"""

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ble.b64 import b64url_decode

ALG = "EdDSA"
HEADER_FIELDS = frozenset({"alg", "kid", "typ"})

_T = TypeVar("_T")
# Each caller names the error its own callers expect (InvalidCredential, ...).
Error = type[ValueError]

# A verifier that knows no other algorithm: `none`, HS256 with a public key as its secret and
# the like fail inside PyJWT too, not only in the header check below.
_JWS = jwt.PyJWS(algorithms=[ALG])


def sign(private_key: Ed25519PrivateKey, kid: str, typ: str, claims: Mapping[str, object]) -> str:
    payload = json.dumps(dict(claims), separators=(",", ":")).encode()
    return _JWS.encode(payload, private_key, algorithm=ALG, headers={"kid": kid, "typ": typ})


def verify(
    token: str, typ: str, trusted: Mapping[str, Ed25519PublicKey], error: Error
) -> dict[str, Any]:
    """The payload of a token of type `typ` signed by a trusted key; `error` otherwise."""
    header, payload, _ = split(token, error)
    if header.keys() != HEADER_FIELDS or header["alg"] != ALG or header["typ"] != typ:
        raise error(f"not a {typ} header")
    kid = header["kid"]
    key = trusted.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise error("signed with a key this lockbox does not trust")
    try:
        _JWS.decode_complete(token, key, algorithms=[ALG])
    except jwt.InvalidSignatureError as failure:
        raise error("bad signature") from failure
    except jwt.PyJWTError as failure:
        raise error(f"not a valid JWS: {failure}") from failure
    return payload


def split(token: str, error: Error) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """Header, claims and signature, unverified: strict parsing shared by the lockbox and phones."""
    parts = token.split(".")
    if len(parts) != 3:
        raise error("a compact JWS has three parts")
    try:
        header, payload = (_loads(b64url_decode(part)) for part in parts[:2])
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


def _loads(data: bytes) -> object:
    return json.loads(data, object_pairs_hook=_unique_members)


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of duplicated names; another parser might keep the first, so a
    # token with two `kid`s or two `aud`s could mean different things to different readers.
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicated member name")
    return members
