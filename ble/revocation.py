"""Revocation lists: compact JWS the server signs per lockbox and phones carry to it offline."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ble import jws
from ble.serials import same_serial

TYP = "lockbox-revocations+jwt"

_T = TypeVar("_T")


class InvalidRevocations(ValueError):
    """Malformed, not signed by a trusted server key, or with claims of the wrong shape."""


class RevocationsVerdict(StrEnum):
    """What a lockbox made of a list a phone delivered."""

    ACCEPTED = "ACCEPTED"  # newer than the one it held: now its revocation set
    UP_TO_DATE = "UP_TO_DATE"  # the same seq as the one it holds
    REFUSED_STALE = "REFUSED_STALE"  # older than the one it holds
    REFUSED_INVALID = "REFUSED_INVALID"  # not signed by a key it trusts, or malformed
    REFUSED_WRONG_LOCKBOX = "REFUSED_WRONG_LOCKBOX"
    REFUSED_EXPIRED = "REFUSED_EXPIRED"


KEPT = frozenset({RevocationsVerdict.ACCEPTED, RevocationsVerdict.UP_TO_DATE})


@dataclass(frozen=True)
class RevocationList:
    iss: str
    aud: str  # the lockbox serial
    iat: int
    exp: int
    # Per lockbox, the number of its grants ever revoked: revocations are never undone, so a
    # greater seq means a list that knows of every revocation a smaller one knew of.
    seq: int
    jti: frozenset[str]  # global ids of revoked grants whose credentials may still be live

    def to_dict(self) -> dict[str, object]:
        return {
            "iss": self.iss,
            "aud": self.aud,
            "iat": self.iat,
            "exp": self.exp,
            "seq": self.seq,
            "jti": sorted(self.jti),
        }


def sign_revocations(private_key: Ed25519PrivateKey, kid: str, revocations: RevocationList) -> str:
    return jws.sign(private_key, kid, TYP, revocations.to_dict())


def decode_revocations(token: str, trusted: Mapping[str, Ed25519PublicKey]) -> RevocationList:
    """Verify the server signature; the caller judges audience, time and seq."""
    return parse_revocations(jws.verify(token, TYP, trusted, InvalidRevocations))


def peek_revocations(token: str) -> RevocationList:
    """Read claims without verifying: the phone only needs them to pick a list."""
    return parse_revocations(jws.split(token, InvalidRevocations)[1])


def parse_revocations(claims: Mapping[str, Any]) -> RevocationList:
    jti = claims.get("jti")
    if not isinstance(jti, list) or not all(isinstance(item, str) for item in jti):
        raise InvalidRevocations("claim 'jti' must be a list of grant ids")
    return RevocationList(
        iss=_typed(claims, "iss", str),
        aud=_typed(claims, "aud", str),
        iat=_typed(claims, "iat", int),
        exp=_typed(claims, "exp", int),
        seq=_typed(claims, "seq", int),
        jti=frozenset(jti),
    )


def newest_for(serial: str, tokens: Iterable[str]) -> str | None:
    """The list for lockbox `serial` with the greatest seq among those a phone carries."""
    mine: list[tuple[int, str]] = []
    for token in tokens:
        try:
            revocations = peek_revocations(token)
        except InvalidRevocations:
            continue  # not ours to judge; the lockbox would refuse it anyway
        if same_serial(revocations.aud, serial):
            mine.append((revocations.seq, token))
    return max(mine, key=lambda pair: pair[0])[1] if mine else None


def _typed(claims: Mapping[str, Any], name: str, kind: type[_T]) -> _T:
    return jws.typed(claims, name, kind, InvalidRevocations)
