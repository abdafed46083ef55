"""Opaque global ids: base64("Type:pk"), resolvable with Query.node."""

from __future__ import annotations

import base64
import binascii
import re

from core.errors import DomainError

# Every integer primary key is an IntField: int4 on PostgreSQL. A larger number names no row,
# and sent to the database it would fail the query instead of finding nothing.
MAX_PK = 2**31 - 1
# ASCII only: str.isdigit() also takes "²" and "١", which int() then refuses or reads.
_PK = re.compile(r"[0-9]{1,10}")


def to_global_id(type_name: str, pk: int | str) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def from_global_id(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, pk = decoded.partition(":")
    return (type_name, pk) if sep and type_name and pk else None


def pk_of(text: str) -> int | None:
    """The integer pk `text` can name (ASCII digits within the id column), else None."""
    if not _PK.fullmatch(text):
        return None
    pk = int(text)
    return pk if pk <= MAX_PK else None


def global_pk(value: str, type_names: tuple[str, ...]) -> int | None:
    """The integer pk of a global id of one of the given types, or None."""
    parsed = from_global_id(value)
    if parsed is None or parsed[0] not in type_names:
        return None
    return pk_of(parsed[1])


def parse_pk(value: str, type_names: tuple[str, ...], *field: str) -> int:
    """The integer pk of a global id of one of the given types, or NOT_FOUND."""
    pk = global_pk(value, type_names)
    if pk is None:
        raise DomainError("NOT_FOUND", "No such object.", ["input", *field])
    return pk
