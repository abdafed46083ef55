"""The contract's shared shapes: Node, PageInfo, cursor connections."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry

from core.ids import pk_of
from schema.errors import bad_argument

T = TypeVar("T")
MAX_FIRST = 100


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    counter: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field
    async def total_count(self) -> int:
        return await self.counter()


def encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(f"k:{key}".encode()).decode()


def decode_cursor(cursor: str | None) -> int | None:
    """Keyset cursors: the sort key of the last row seen, so growing feeds never repeat."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_argument("The cursor is not valid.") from None
    prefix, _, key = text.partition(":")
    pk = pk_of(key) if prefix == "k" else None
    if pk is None:
        raise bad_argument("The cursor is not valid.")
    return pk


def check_first(first: int | None) -> int:
    if first is None:
        return 20
    if first < 0 or first > MAX_FIRST:
        raise bad_argument(f"first must be between 0 and {MAX_FIRST}.")
    return first


C = TypeVar("C", bound=Connection[Any])


def build_connection(
    cls: type[C],
    nodes: Sequence[T],
    keys: Sequence[int],
    first: int,
    after: str | None,
    counter: Callable[[], Awaitable[int]],
) -> C:
    """Nodes fetched with one extra row past `first`, which tells whether there is more."""
    shown = list(zip(nodes[:first], keys[:first], strict=True))
    edges = [Edge(cursor=encode_cursor(key), node=node) for node, key in shown]
    page = PageInfo(
        has_next_page=len(nodes) > first,
        has_previous_page=after is not None,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return cls(edges=edges, page_info=page, counter=counter)
