"""`keybin import lockboxes`: CSV `serial_number,model,ble,secret`, one lockbox per row."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ble.secret import InvalidSecret, normalize_secret
from ble.serials import normalize_serial
from importers.keyed_csv import KeyedCsv
from importers.report import ImportReport, RowError
from importers.sources import check_csv_shape, required
from models.listings import Lockbox

COLUMNS = ("serial_number", "model", "ble", "secret")
YES = {"true", "1", "yes"}
NO = {"false", "0", "no"}
# What a re-import may change; assignment and listing belong to the agents.
LOCKBOX_FIELDS = ("model", "ble", "secret")


@dataclass
class LockboxRow:
    line: int
    serial_number: str
    model: str
    ble: bool
    secret: str


def parse_lockbox(line: int, row: dict[str, str]) -> LockboxRow:
    check_csv_shape(row)
    # Canonical, as every lookup is: "lb 100234" and "LB100234" are one lockbox.
    serial_number = normalize_serial(required(row, "serial_number", 32))
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


_KIND = KeyedCsv(
    label="lockboxes",
    columns=COLUMNS,
    parse=parse_lockbox,
    model=Lockbox,
    key="serial_number",
    pk="id",
    fields=LOCKBOX_FIELDS,
)


async def import_lockboxes(path: Path, report: ImportReport) -> ImportReport:
    """Create or update one row per line, keyed by serial_number."""
    return await _KIND.run(path, report)
