"""The staff audit trail for a SYSADMIN: a filtered page at a time, or all of it as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from console import params
from console.auth import client_address, staff_required
from console.pages import render
from core import clock
from models.enums import StaffAction, StaffRole
from resolvers import audit, support

FILTERS = ("staff", "account", "action", "from", "to")
CSV_HEADER = (
    "id",
    "when_utc",
    "staff_id",
    "staff",
    "action",
    "account",
    "account_state",
    "target_staff_id",
    "detail",
    "from_address",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection):
# such a cell is written with a leading apostrophe, which shows it as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Filters:
    where: audit.AuditFilter
    values: dict[str, str]  # as typed, to fill the form and the links again
    errors: list[str]


def _id(text: str) -> int | None:
    return params.number(text.strip().lstrip("#"))


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _action(text: str) -> StaffAction | None:
    return StaffAction(text) if text in StaffAction.__members__ else None


def read_filters(request: Request) -> Filters:
    """The filters in the query string; one that makes no sense is dropped and said so."""
    values = {name: request.query_params.get(name, "").strip()[:40] for name in FILTERS}
    errors: list[str] = []

    def parsed(name: str, parse: Any, what: str) -> Any:
        if not values[name]:
            return None
        value = parse(values[name])
        if value is None:
            errors.append(f"“{values[name]}” is not {what}: that filter is left out.")
            values[name] = ""
        return value

    where = audit.AuditFilter(
        staff_id=parsed("staff", _id, "a staff member"),
        account_id=parsed("account", _id, "an account number"),
        action=parsed("action", _action, "an action"),
        since=parsed("from", _day, "a date"),
        until=parsed("to", _day, "a date"),
    )
    return Filters(where, values, errors)


def _query(values: dict[str, str], **extra: int) -> str:
    given = {name: value for name, value in values.items() if value}
    return urlencode({**given, **{name: str(value) for name, value in extra.items()}})


def _position(request: Request, name: str) -> int | None:
    # A line's id (64-bit); one that is not starts at the newest page.
    return params.number(request.query_params.get(name, ""), params.MAX_BIG_ID)


@staff_required(StaffRole.SYSADMIN)
async def audit_page(request: Request) -> Response:
    filters = read_filters(request)
    after = _position(request, "after")
    before = None if after is not None else _position(request, "before")
    page = await audit.page(filters.where, before=before, after=after)
    account_id = filters.where.account_id
    context = {
        "filters": filters,
        "page": page,
        "members": await audit.staff_members(),
        "actions": list(StaffAction),
        "tombstone": await audit.tombstone(account_id) if account_id is not None else None,
        "live_account": await support.live_account(account_id) if account_id else None,
        "older_query": _query(filters.values, before=page.older) if page.older else None,
        "newer_query": _query(filters.values, after=page.newer) if page.newer else None,
        "csv_query": _query(filters.values),
    }
    return render(request, "audit.html", context)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _account_state(row: audit.AuditRow) -> str:
    if row.entry.account_id is None:
        return ""
    if row.account_kind is None:
        return "unknown"
    return "deleted" if row.account_deleted else row.account_kind.lower()


async def _csv_lines(where: audit.AuditFilter) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # quotes cells with commas, quotes or line breaks

    def line(cells: tuple[object, ...]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(cell) for cell in cells])
        return buffer.getvalue()

    yield line(CSV_HEADER)
    async for row in audit.export(where):
        entry = row.entry
        yield line(
            (
                entry.id,
                entry.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                entry.staff_id,  # type: ignore[attr-defined]
                entry.staff_label,
                entry.action.value,
                entry.account_id,
                _account_state(row),
                entry.target_staff_id,
                entry.detail,
                entry.client_address,
            )
        )


@staff_required(StaffRole.SYSADMIN)
async def audit_csv(request: Request) -> Response:
    filters = read_filters(request)
    # The export is itself a line of the trail, written before the first row is sent.
    await audit.record(
        StaffAction.AUDIT_EXPORTED,
        request.state.staff,
        detail=filters.where.describe(),
        client_address=client_address(request),
    )
    name = f"keybin-audit-{clock.now():%Y%m%d-%H%M%S}.csv"
    return StreamingResponse(
        _csv_lines(filters.where),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
