"""A grant's status, derived from the clock and never stored: the one definition.

The status is the first rule of RULES that holds. The Python test (`status_of`), the
WHERE clause that picks statuses (`status_filter`) and the SQL expression the page
statements read (`status_sql`) are all written from that one table, and
tests/test_grant_status.py holds the database's answer against `status_of`."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from tortoise.expressions import Q

from core import clock


class GrantStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


@dataclass(frozen=True)
class Rule:
    """`status` when the grant's `column` is set ("set") or still ahead of now ("ahead")."""

    status: GrantStatus
    column: str
    holds_when: Literal["set", "ahead"]

    def holds(self, grant: Any, now: datetime) -> bool:
        value = getattr(grant, self.column)
        if self.holds_when == "set":
            return value is not None
        return bool(now < value)

    def where(self, now: datetime, holds: bool) -> Q:
        lookup: dict[str, Any]
        if self.holds_when == "set":
            lookup = {f"{self.column}__isnull": not holds}
        else:
            lookup = {f"{self.column}__gt" if holds else f"{self.column}__lte": now}
        return Q(**lookup)

    def sql(self, table: str, now: str, comparable: Callable[[str], str]) -> str:
        column = f'{table}."{self.column}"'
        if self.holds_when == "set":
            return f"{column} IS NOT NULL"
        return f"{now} < {comparable(column)}"


# In order: a revoked grant is REVOKED whatever its times say.
RULES = (
    Rule(GrantStatus.REVOKED, "revoked_at", "set"),
    Rule(GrantStatus.SCHEDULED, "starts_at", "ahead"),
    Rule(GrantStatus.ACTIVE, "ends_at", "ahead"),
)
OTHERWISE = GrantStatus.EXPIRED


def status_of(grant: Any, now: datetime | None = None) -> GrantStatus:
    """The status of a grant row (anything with revoked_at, starts_at and ends_at)."""
    now = now or clock.now()
    return next((rule.status for rule in RULES if rule.holds(grant, now)), OTHERWISE)


def _where(status: GrantStatus, now: datetime) -> Q:
    """Rows whose first rule that holds is `status`'s: every rule before it fails."""
    clauses: list[Q] = []
    for rule in RULES:
        if rule.status == status:
            return Q(*clauses, rule.where(now, holds=True))
        clauses.append(rule.where(now, holds=False))
    return Q(*clauses)  # OTHERWISE: no rule holds


def status_filter(statuses: Collection[str] | None, now: datetime) -> Q | None:
    """The chosen statuses as a WHERE clause (None: every status)."""
    if not statuses:
        return None
    chosen = [_where(GrantStatus(s), now) for s in sorted(set(statuses))]
    return Q(*chosen, join_type="OR")


def in_status(status: GrantStatus, now: datetime) -> Q:
    """Grants whose status is `status` at `now`, as a WHERE clause."""
    return _where(status, now)


def not_over(now: datetime) -> Q:
    """Grants still SCHEDULED or ACTIVE: someone may yet come with a key."""
    return Q(
        in_status(GrantStatus.SCHEDULED, now), in_status(GrantStatus.ACTIVE, now), join_type="OR"
    )


def status_sql(table: str, now: str, comparable: Callable[[str], str] = str) -> str:
    """The status as an SQL CASE over `table`'s columns, `now` being a parameter;
    `comparable` turns a time column into what compares with `now` (SQLite: text in UTC)."""
    cases = " ".join(
        f"WHEN {rule.sql(table, now, comparable)} THEN '{rule.status}'" for rule in RULES
    )
    return f"CASE {cases} ELSE '{OTHERWISE}' END"
