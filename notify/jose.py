"""Compact JWTs signed with cryptography: RS256 for Google's OAuth grant, ES256 for APNs."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signing_input(header: dict[str, Any], claims: dict[str, Any]) -> bytes:
    parts = (json.dumps(part, separators=(",", ":")).encode() for part in (header, claims))
    return ".".join(b64url(part) for part in parts).encode()


def rs256(key: rsa.RSAPrivateKey, claims: dict[str, Any]) -> str:
    signing_input = _signing_input({"alg": "RS256", "typ": "JWT"}, claims)
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{b64url(signature)}"


def es256(key: ec.EllipticCurvePrivateKey, kid: str, claims: dict[str, Any]) -> str:
    signing_input = _signing_input({"alg": "ES256", "kid": kid}, claims)
    # cryptography gives DER; JOSE wants the raw r || s, each 32 bytes big-endian (RFC 7518 3.4).
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode()}.{b64url(raw)}"
