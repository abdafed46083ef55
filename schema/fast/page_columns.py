"""What the page statements (schema/fast/page_sql.py) map, and how each field reads as SQL.

Only fields whose resolvers read straight from columns are here; each expression
reproduces what its resolver returns (global ids, ISO 8601 times, grant statuses from the
clock), in either dialect (page_dialects.py), and tests/test_projection.py compares the
two on both databases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from core import clock
from resolvers.grant_status import status_sql
from schema.fast.page_dialects import Dialect


class Params:
    """The statement's parameters: how to read each value at run time, in order, and the
    dialect the statement is written in."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.readers: list[Callable[[Bound], Any]] = []
        self._numbers: dict[tuple[Any, ...], str] = {}

    def add(self, key: tuple[Any, ...], reader: Callable[[Bound], Any], cast: str) -> str:
        if key not in self._numbers:
            bind = self.dialect.bind
            self.readers.append(lambda bound: bind(reader(bound), cast))
            self._numbers[key] = self.dialect.param(len(self.readers), cast)
        return self._numbers[key]


@dataclass
class Page:
    """One connection's arguments at run time: rows wanted, keyset position."""

    limit: int
    before_id: int | None


@dataclass
class Bound:
    """What a run reads its parameters from."""

    source: Any
    pages: list[Page]

    @cached_property
    def now(self) -> datetime:
        """Read only when a parameter asks (a grant's status): an answer whose statement
        never does has not depended on the time (schema/fast/answer_cache.py)."""
        return clock.now()


Render = Callable[[str, Params], str]


@dataclass(frozen=True)
class Leaf:
    """A scalar: an SQL expression over the row (alias given)."""

    render: Render


@dataclass(frozen=True)
class Embedded:
    """An object made of the same row's columns (a listing's address)."""


@dataclass(frozen=True)
class ToOne:
    """At most one row of another table; null when there is none."""

    table: str
    on: Callable[[str, str], str]  # (outer alias, inner alias) -> condition


@dataclass(frozen=True)
class Many:
    """A connection over another table, newest (highest id) first, like the resolvers'
    keyset pages; `filters` are the arguments that must be absent (or blank) for it."""

    table: str
    on: Callable[[str, str, Params], str]
    filters: tuple[str, ...] = ()


Mapping = Leaf | Embedded | ToOne | Many


def column(name: str) -> Leaf:
    return Leaf(lambda t, p: f'{t}."{name}"')


def boolean(name: str) -> Leaf:
    return Leaf(lambda t, p: p.dialect.boolean(f'{t}."{name}"'))


def text_or_empty(name: str) -> Leaf:
    """The resolvers' `value or ""`."""
    return Leaf(lambda t, p: f"COALESCE({t}.\"{name}\", '')")


def global_id(type_name: str) -> Leaf:
    """core.ids.to_global_id: base64 of "Type:pk"."""
    return Leaf(lambda t, p: p.dialect.global_id(type_name, f'{t}."id"'))


def timestamp(name: str) -> Leaf:
    """datetime.isoformat() of a UTC time: microseconds only when there are any."""
    return Leaf(lambda t, p: p.dialect.timestamp(f'{t}."{name}"'))


def day(name: str) -> Leaf:
    """date.isoformat()."""
    return Leaf(lambda t, p: p.dialect.day(f'{t}."{name}"'))


def _now(p: Params) -> str:
    return p.add(("now",), lambda bound: bound.now, "timestamptz")


def grant_status(t: str, p: Params) -> str:
    """resolvers.grant_status.status_of, against the same clock."""
    return status_sql(t, _now(p), p.dialect.comparable_time)


def _owned_by(column_name: str) -> Callable[[str, str, Params], str]:
    """Rows of the object the field is on (an agent's listings, an account's messages)."""

    def on(outer: str, inner: str, p: Params) -> str:
        owner = p.add(("owner",), lambda bound: bound.source.pk, "int")
        return f'{inner}."{column_name}" = {owner}'

    return on


def _is_self(source: Any, context: Any) -> bool:
    """The resolvers' _only_self and require_own: an account's own listings and messages."""
    return context.account is not None and context.account.id == source.pk


# Only what the resolvers read straight from columns; everything else has its resolver run.
TYPES: dict[str, dict[str, Mapping]] = {
    "Listing": {
        "id": global_id("Listing"),
        "mlsNumber": column("mls_number"),
        "address": Embedded(),
        "status": column("status"),
        "source": column("source"),
        "lockbox": ToOne("lockbox", lambda o, i: f'{i}."listing_id" = {o}."id"'),
        "grants": Many(
            "grant", lambda o, i, p: f'{i}."listing_id" = {o}."id"', filters=("status",)
        ),
    },
    "Address": {
        "line1": column("line1"),
        "line2": column("line2"),
        "city": column("city"),
        "state": column("state"),
        "postalCode": column("postal_code"),
    },
    "Lockbox": {
        "id": global_id("Lockbox"),
        "serialNumber": column("serial_number"),
        "model": column("model"),
        "bleCapable": boolean("ble"),
        "onListingSince": day("on_listing_since"),
        "lastAccessAt": timestamp("last_access_at"),
    },
    "Grant": {
        "id": global_id("Grant"),
        "granteeEmail": text_or_empty("grantee_email"),
        "startsAt": timestamp("starts_at"),
        "endsAt": timestamp("ends_at"),
        "status": Leaf(grant_status),
        "revocable": Leaf(lambda t, p: p.dialect.boolean(f"({grant_status(t, p)}) = 'SCHEDULED'")),
        "createdAt": timestamp("created_at"),
        "revokedAt": timestamp("revoked_at"),
        # Grant.grantee: a contractor's account (any that is not an agent's), while it exists.
        "grantee": ToOne(
            "account",
            lambda o, i: (
                f'{i}."id" = {o}."grantee_id" AND {i}."kind" <> \'AGENT\' '
                f'AND {i}."deleted_at" IS NULL'
            ),
        ),
    },
    "Message": {
        "id": global_id("Message"),
        "kind": column("kind"),
        "title": column("title"),
        "body": column("body"),
        "createdAt": timestamp("created_at"),
        "readAt": timestamp("read_at"),
    },
    # Reached only as a grantee on an agent's listings page: what another account may read
    # of it (email, phone and status are the contractor's own, left to their resolvers).
    "Contractor": {
        "id": global_id("Contractor"),
        "firstName": column("first_name"),
        "lastName": column("last_name"),
        "role": Leaf(lambda t, p: f"COALESCE({t}.\"role\", 'OTHER')"),
        "company": column("company"),
    },
}

# The fields a statement starts from, and the condition for taking it: one's own rows only.
_MESSAGES = Many("message", _owned_by("account_id"), filters=("unreadOnly", "kind"))
ROOTS: dict[tuple[str, str], tuple[Many, Callable[[Any, Any], bool]]] = {
    ("Agent", "listings"): (Many("listing", _owned_by("agent_id"), filters=("search",)), _is_self),
    ("Agent", "messages"): (_MESSAGES, _is_self),
    ("Contractor", "messages"): (_MESSAGES, _is_self),
}
