"""`keybin import KIND FILE`: load regions, members, listings or lockboxes, idempotently."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import cli_commands
from settings import Settings

# Kept here, not read from importers.kinds, so `keybin --help` stays quick to start.
KINDS = ("regions", "members", "listings", "lockboxes")


async def _import(args: argparse.Namespace, settings: Settings) -> int:
    import db
    from importers.kinds import IMPORTERS
    from importers.report import ImportFileError, ImportReport

    path: Path = args.file
    report = ImportReport(progress_to=sys.stderr)
    failure = None
    async with db.connected(settings):
        try:
            await IMPORTERS[args.kind](path, report)
        except ImportFileError as error:
            failure = str(error)
    for position, reason in sorted(report.warnings):
        print(f"{report.position} {position}: warning: {reason}")
    for position, reason in sorted(report.skipped):
        print(f"{report.position} {position}: skipped: {reason}")
    if failure is None or report.created or report.updated or report.skipped:
        print(report.summary())
    if failure is not None:
        # Rows before the failure have landed; re-running after a fix is safe.
        print(f"keybin: cannot import {path}: {failure}", file=sys.stderr)
        return 1
    return 0 if report.ok else 1


@cli_commands.register
def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "import",
        help="import regions, members, listings or lockboxes from a file",
        description='Members and listings are RESO Web API JSON ({"value": [...]}); '
        "regions (code,name,time_zone) and lockboxes (serial_number,model,ble,secret) are "
        "CSV with a header row. Re-importing updates what is there; bad rows are reported "
        "and skipped.",
    )
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("file", type=Path, metavar="FILE")
    parser.set_defaults(func=_import)
