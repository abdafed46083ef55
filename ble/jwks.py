"""Ed25519 public keys as JWKs (RFC 8037): the server's JWKS and a device's `cnf` key."""

import hashlib
import json
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ble.b64 import b64url_decode, b64url_encode

Jwk = dict[str, str]


class InvalidJwk(ValueError):
    """Not an Ed25519 OKP key, or a JWKS without the expected shape."""


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def okp_jwk(key: Ed25519PublicKey | bytes) -> Jwk:
    """`key` may be the raw 32 bytes, as phones send them when they sign in."""
    raw = key if isinstance(key, bytes) else raw_public_key(key)
    Ed25519PublicKey.from_public_bytes(raw)  # refuse anything that is not a key
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}


def key_from_jwk(jwk: object) -> Ed25519PublicKey:
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise InvalidJwk("not an Ed25519 OKP key")
    x = jwk.get("x")
    try:
        raw = b64url_decode(x) if isinstance(x, str) else b""
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as error:
        raise InvalidJwk("x is not a raw 32-byte Ed25519 key") from error


def thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint: a stable `kid` derived from the key itself."""
    jwk = okp_jwk(key)
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
    return b64url_encode(hashlib.sha256(canonical).digest())


def jwks(keys: Mapping[str, Ed25519PublicKey]) -> dict[str, list[Jwk]]:
    """The document served at /.well-known/jwks.json, from kid -> public key."""
    entries = [
        okp_jwk(key) | {"kid": kid, "use": "sig", "alg": "EdDSA"} for kid, key in keys.items()
    ]
    return {"keys": entries}


def parse_jwks(document: object) -> dict[str, Ed25519PublicKey]:
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise InvalidJwk("a JWKS is an object with a list of keys")
    return {_kid(entry): key_from_jwk(entry) for entry in entries}


def _kid(entry: object) -> str:
    kid = entry.get("kid") if isinstance(entry, dict) else None
    if not isinstance(kid, str):
        raise InvalidJwk("every key in the JWKS needs a kid")
    return kid
