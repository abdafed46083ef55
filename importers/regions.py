"""`keybin import regions`: CSV `code,name,time_zone`; each zone must be an IANA one."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from importers.keyed_csv import KeyedCsv
from importers.report import ImportReport, RowError
from importers.sources import check_csv_shape, required
from models.listings import Region

COLUMNS = ("code", "name", "time_zone")
# What a re-import may change.
REGION_FIELDS = ("name", "time_zone")


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


_KIND = KeyedCsv(
    label="regions",
    columns=COLUMNS,
    parse=parse_region,
    model=Region,
    key="code",
    pk="code",
    fields=REGION_FIELDS,
)


async def import_regions(path: Path, report: ImportReport) -> ImportReport:
    """Create or update one row per line, keyed by code."""
    return await _KIND.run(path, report)
