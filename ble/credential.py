"""Lockbox credentials: compact JWS (RFC 7515) signed by the server with Ed25519."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ble import jws
from ble.jwks import key_from_jwk, okp_jwk, raw_public_key
from ble.outcomes import AccessMethod
from ble.recurrence import Recurrence, parse_recurrence

TYP = "lockbox-credential+jwt"

_T = TypeVar("_T")


class InvalidCredential(ValueError):
    """Malformed, not signed by a trusted server key, or with claims of the wrong shape."""


@dataclass(frozen=True)
class CredentialClaims:
    iss: str
    sub: str  # the grantee's account global id
    aud: str  # the lockbox serial
    jti: str | None  # the grant's global id; None for an agent's own key
    nbf: int
    exp: int
    iat: int
    device_key: bytes  # raw Ed25519 public key from cnf.jwk: only this device may present it
    rec: Recurrence | None = None
    mth: AccessMethod = AccessMethod.BLE_CREDENTIAL

    def device_public_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.device_key)

    def to_dict(self) -> dict[str, object]:
        claims: dict[str, object] = {
            "iss": self.iss,
            "sub": self.sub,
            "aud": self.aud,
            "jti": self.jti,
            "nbf": self.nbf,
            "exp": self.exp,
            "iat": self.iat,
            "cnf": cnf_claim(self.device_key),
            "mth": self.mth.value,
        }
        if self.rec is not None:
            claims["rec"] = self.rec.to_claim()
        return claims


def cnf_claim(device_key: Ed25519PublicKey | bytes) -> dict[str, object]:
    """RFC 7800 confirmation claim binding the credential to the device's key."""
    return {"jwk": okp_jwk(device_key)}


def sign_credential(private_key: Ed25519PrivateKey, kid: str, claims: Mapping[str, object]) -> str:
    parse_claims(claims)  # a credential the lockbox would refuse is a server bug: fail here
    return jws.sign(private_key, kid, TYP, claims)


def decode_credential(token: str, trusted: Mapping[str, Ed25519PublicKey]) -> CredentialClaims:
    """Verify the server signature; the caller judges time, audience and revocation."""
    return parse_claims(jws.verify(token, TYP, trusted, InvalidCredential))


def peek_claims(token: str) -> CredentialClaims:
    """Read claims without verifying: the phone only needs them to pick a credential."""
    return parse_claims(jws.split(token, InvalidCredential)[1])


def parse_claims(claims: Mapping[str, Any]) -> CredentialClaims:
    try:
        return CredentialClaims(
            iss=_typed(claims, "iss", str),
            sub=_typed(claims, "sub", str),
            aud=_typed(claims, "aud", str),
            jti=None if claims.get("jti") is None else _typed(claims, "jti", str),
            nbf=_typed(claims, "nbf", int),
            exp=_typed(claims, "exp", int),
            iat=_typed(claims, "iat", int),
            device_key=_device_key(claims.get("cnf")),
            rec=None if "rec" not in claims else parse_recurrence(claims["rec"]),
            mth=AccessMethod(claims.get("mth", AccessMethod.BLE_CREDENTIAL)),
        )
    except InvalidCredential:
        raise
    except ValueError as error:  # InvalidJwk, InvalidRecurrence or an unknown mth
        raise InvalidCredential(f"bad claims: {error}") from error


def _typed(claims: Mapping[str, Any], name: str, kind: type[_T]) -> _T:
    return jws.typed(claims, name, kind, InvalidCredential)


def _device_key(cnf: object) -> bytes:
    if not isinstance(cnf, dict):
        raise InvalidCredential("claim 'cnf' must hold the device's jwk")
    return raw_public_key(key_from_jwk(cnf.get("jwk")))
