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
ASSOCIATION_KINDS = ("members", "listings")
ASSOCIATION_LENGTH = 128  # as accounts and listings store an association's name


async def _import(args: argparse.Namespace, settings: Settings) -> int:
    if args.association is not None and args.kind not in ASSOCIATION_KINDS:
        print("keybin: --association is for members and listings files", file=sys.stderr)
        return 2

    import db
    from importers.kinds import FROM_AN_ASSOCIATION, IMPORTERS
    from importers.report import ImportFileError, ImportReport

    path: Path = args.file
    report = ImportReport(progress_to=sys.stderr)
    failure = None
    async with db.connected(settings):
        try:
            if args.association is None:
                await IMPORTERS[args.kind](path, report)
            else:
                await FROM_AN_ASSOCIATION[args.kind](path, report, args.association)
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


def association_name(text: str) -> str:
    name = text.strip()
    if not name or len(name) > ASSOCIATION_LENGTH or not name.isprintable():
        raise argparse.ArgumentTypeError(
            f"an association's name is 1 to {ASSOCIATION_LENGTH} printable characters"
        )
    return name


@cli_commands.register
def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "import",
        help="import regions, members, listings or lockboxes from a file",
        description='Members and listings are RESO Web API JSON ({"value": [...]}); '
        "regions (code,name,time_zone) and lockboxes (serial_number,model,ble,secret) are "
        "CSV with a header row. Re-importing updates what is there; bad rows are reported "
        "and skipped. "
        "An agent is known by MemberMlsId within its association, a listing by ListingId "
        "within its association, since associations number theirs independently: one "
        "association's file never changes another's agents or listings. A roster row names "
        "its association in OriginatingSystemName, or --association names it for the whole "
        "file; a row with neither is skipped. A listing row with neither belongs to its list "
        "agent's association. A listing an agent added by hand is never changed by an import.",
    )
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("file", type=Path, metavar="FILE")
    parser.add_argument(
        "--association",
        type=association_name,
        metavar="NAME",
        help="the association (MLS) whose members or listings file this is, as "
        "OriginatingSystemName names it: rows naming none take it, rows naming another are "
        "skipped",
    )
    parser.set_defaults(func=_import)
