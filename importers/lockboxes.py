"""`keybin import lockboxes`: CSV `serial_number,model,ble,secret`, one lockbox per row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from ble.secret import InvalidSecret, normalize_secret
from importers import bulk
from importers.report import ImportReport, RowError
from importers.sources import batched, check_csv_shape, count_csv_rows, csv_rows, required
from models.listings import Lockbox

COLUMNS = ("serial_number", "model", "ble", "secret")
YES = {"true", "1", "yes"}
NO = {"false", "0", "no"}
# What a re-import may change; assignment and listing belong to the agents.
LOCKBOX_FIELDS = ("model", "ble", "secret")
ATTEMPTS = 3


@dataclass
class LockboxRow:
    line: int
    serial_number: str
    model: str
    ble: bool
    secret: str


def parse_lockbox(line: int, row: dict[str, str]) -> LockboxRow:
    check_csv_shape(row)
    serial_number = required(row, "serial_number", 32)
    model = required(row, "model", 64)
    raw_ble = required(row, "ble", 32).lower()
    if raw_ble not in YES | NO:
        raise RowError(f"ble {raw_ble!r} is not one of true/false/1/0/yes/no")
    try:
        secret = normalize_secret(required(row, "secret", 128))
    except InvalidSecret as error:
        raise RowError(f"secret: {error}") from error
    return LockboxRow(
        line=line,
        serial_number=serial_number,
        model=model,
        ble=raw_ble in YES,
        secret=secret,
    )


async def import_lockboxes(path: Path, report: ImportReport) -> ImportReport:
    """Create or update one lockbox per row, keyed by serial number."""
    report.position = "line"
    progress = report.progress("lockboxes", count_csv_rows(path) if report.progress_to else 0)
    done = 0
    for batch in batched(csv_rows(path, COLUMNS)):
        rows: dict[str, LockboxRow] = {}
        repeats = 0
        for line, raw in batch:
            try:
                row = parse_lockbox(line, raw)
            except RowError as error:
                report.skip(line, str(error))
                continue
            repeats += row.serial_number in rows
            rows[row.serial_number] = row
        created, updated = await _write(list(rows.values()))
        report.created += created
        report.updated += updated + repeats
        done += len(batch)
        progress.update(done)
    progress.finish(done)
    return report


async def _write(rows: Sequence[LockboxRow]) -> tuple[int, int]:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with in_transaction() as db:
                return await _upsert(db, rows)
        except IntegrityError:
            # Another writer added one of these meanwhile: plan the batch again.
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


async def _upsert(db: BaseDBAsyncClient, rows: Sequence[LockboxRow]) -> tuple[int, int]:
    if not rows:
        return 0, 0
    found = await Lockbox.filter(serial_number__in=[row.serial_number for row in rows]).values_list(
        "id", "serial_number", *LOCKBOX_FIELDS
    )
    existing = {old[1]: old for old in found}
    changes: list[list[Any]] = []
    new: list[list[Any]] = []
    for row in rows:
        values = [getattr(row, name) for name in LOCKBOX_FIELDS]
        old = existing.get(row.serial_number)
        if old is None:
            new.append([row.serial_number, *values])
        elif list(old[2:]) != values:
            changes.append([*values, old[0]])
    await bulk.update(db, Lockbox, LOCKBOX_FIELDS, changes)
    await bulk.insert(db, Lockbox, ("serial_number", *LOCKBOX_FIELDS), new)
    return len(new), len(rows) - len(new)
