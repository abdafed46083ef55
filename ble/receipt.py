"""Upload receipts: compact JWS the server signs for the records it stored, so a lockbox may
drop them. Only such a receipt makes a lockbox forget a record: a phone that merely says it
uploaded could erase a visit that never reached the server."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ble import jws

TYP = "lockbox-receipt+jwt"
# A lockbox's log has few gaps (only where records were already dropped): a receipt with
# more ranges than this names the oldest ones, and the next upload's receipt the rest.
MAX_RANGES = 64

_T = TypeVar("_T")
SeqRange = tuple[int, int]  # first and last seq, both included


class InvalidReceipt(ValueError):
    """Malformed, not signed by a trusted server key, or with claims of the wrong shape."""


class ReceiptVerdict(StrEnum):
    """What a lockbox made of a receipt a phone delivered."""

    ACCEPTED = "ACCEPTED"  # the records it names are dropped
    REFUSED_INVALID = "REFUSED_INVALID"  # not signed by a key it trusts, or malformed
    REFUSED_WRONG_LOCKBOX = "REFUSED_WRONG_LOCKBOX"
    REFUSED_EXPIRED = "REFUSED_EXPIRED"


@dataclass(frozen=True)
class Receipt:
    iss: str
    aud: str  # the lockbox serial
    iat: int
    exp: int
    seq: tuple[SeqRange, ...]  # the records of this lockbox the server has stored

    def names(self, seq: int) -> bool:
        return any(first <= seq <= last for first, last in self.seq)

    def to_dict(self) -> dict[str, object]:
        return {
            "iss": self.iss,
            "aud": self.aud,
            "iat": self.iat,
            "exp": self.exp,
            "seq": [list(pair) for pair in self.seq],
        }


def seq_ranges(seqs: Iterable[int]) -> tuple[SeqRange, ...]:
    """Seqs as the fewest ranges, oldest first, at most MAX_RANGES of them."""
    ranges: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return tuple((first, last) for first, last in ranges[:MAX_RANGES])


def sign_receipt(private_key: Ed25519PrivateKey, kid: str, receipt: Receipt) -> str:
    return jws.sign(private_key, kid, TYP, receipt.to_dict())


def decode_receipt(token: str, trusted: Mapping[str, Ed25519PublicKey]) -> Receipt:
    """Verify the server signature; the caller judges audience and time."""
    return parse_receipt(jws.verify(token, TYP, trusted, InvalidReceipt))


def parse_receipt(claims: Mapping[str, Any]) -> Receipt:
    ranges = claims.get("seq")
    if not isinstance(ranges, list) or not all(_is_range(item) for item in ranges):
        raise InvalidReceipt("claim 'seq' must be a list of [first, last] seq ranges")
    return Receipt(
        iss=_typed(claims, "iss", str),
        aud=_typed(claims, "aud", str),
        iat=_typed(claims, "iat", int),
        exp=_typed(claims, "exp", int),
        seq=tuple((first, last) for first, last in ranges),
    )


def _is_range(item: object) -> bool:
    if not isinstance(item, list) or len(item) != 2:
        return False
    first, last = item
    numbers = all(isinstance(n, int) and not isinstance(n, bool) for n in item)
    return numbers and 0 < first <= last


def _typed(claims: Mapping[str, Any], name: str, kind: type[_T]) -> _T:
    return jws.typed(claims, name, kind, InvalidReceipt)
