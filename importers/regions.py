"""`keybin import regions`: CSV `code,name,time_zone`; each zone must be an IANA one."""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from importers import bulk
from importers.report import ImportReport, RowError
from importers.sources import batched, check_csv_shape, count_csv_rows, csv_rows, required
from models.listings import Region

COLUMNS = ("code", "name", "time_zone")
# What a re-import may change.
REGION_FIELDS = ("name", "time_zone")
ATTEMPTS = 3


@dataclass
class RegionRow:
    line: int
    code: str
    name: str
    time_zone: str


def parse_region(line: int, row: dict[str, str]) -> RegionRow:
    check_csv_shape(row)
    code = required(row, "code", 32)
    name = required(row, "name", 200)
    time_zone = required(row, "time_zone", 64)
    if not is_time_zone(time_zone):
        raise RowError(f"time_zone {time_zone!r} is not an IANA time zone")
    return RegionRow(line=line, code=code, name=name, time_zone=time_zone)


@cache
def _zone_names() -> frozenset[str]:
    # "localtime" is this machine's setting, not a zone every server would agree on.
    return frozenset(zoneinfo.available_timezones() - {"localtime"})


def is_time_zone(name: str) -> bool:
    if name not in _zone_names():
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


async def import_regions(path: Path, report: ImportReport) -> ImportReport:
    """Create or update one region per row, keyed by its code."""
    report.position = "line"
    progress = report.progress("regions", count_csv_rows(path) if report.progress_to else 0)
    done = 0
    for batch in batched(csv_rows(path, COLUMNS)):
        rows: dict[str, RegionRow] = {}
        repeats = 0
        for line, raw in batch:
            try:
                row = parse_region(line, raw)
            except RowError as error:
                report.skip(line, str(error))
                continue
            repeats += row.code in rows
            rows[row.code] = row
        created, updated = await _write(list(rows.values()))
        report.created += created
        report.updated += updated + repeats
        done += len(batch)
        progress.update(done)
    progress.finish(done)
    return report


async def _write(rows: Sequence[RegionRow]) -> tuple[int, int]:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with in_transaction() as db:
                return await _upsert(db, rows)
        except IntegrityError:
            # Another writer added one of these meanwhile: plan the batch again.
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


async def _upsert(db: BaseDBAsyncClient, rows: Sequence[RegionRow]) -> tuple[int, int]:
    if not rows:
        return 0, 0
    found = await Region.filter(code__in=[row.code for row in rows]).values_list(
        "code", "code", *REGION_FIELDS
    )
    existing = {old[1]: old for old in found}
    changes: list[list[Any]] = []
    new: list[list[Any]] = []
    for row in rows:
        values = [getattr(row, name) for name in REGION_FIELDS]
        old = existing.get(row.code)
        if old is None:
            new.append([row.code, *values])
        elif list(old[2:]) != values:
            changes.append([*values, old[0]])
    await bulk.update(db, Region, REGION_FIELDS, changes)
    await bulk.insert(db, Region, ("code", *REGION_FIELDS), new)
    return len(new), len(rows) - len(new)
