"""Opaque global ids: base64("Type:pk"), resolvable with Query.node."""

from __future__ import annotations

import base64
import binascii

from core.errors import DomainError


def to_global_id(type_name: str, pk: int | str) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def from_global_id(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, pk = decoded.partition(":")
    return (type_name, pk) if sep and type_name and pk else None


def parse_pk(value: str, type_names: tuple[str, ...], *field: str) -> int:
    """The integer pk of a global id of one of the given types, or NOT_FOUND."""
    parsed = from_global_id(value)
    if parsed is None or parsed[0] not in type_names or not parsed[1].isdigit():
        raise DomainError("NOT_FOUND", "No such object.", ["input", *field])
    return int(parsed[1])
