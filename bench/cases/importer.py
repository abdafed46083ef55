"""Case 5: importing RESO listings (`keybin import listings`) at 10,000 and 100,000 rows.

keybin: importers.listings.import_listings, in a child process so its peak RSS is its own.
Floor: the same file read the same way and its rows written with one sqlite3 executemany.
Memory must stay flat as the file grows: peak RSS at 100k against 10k."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.report import Row
from bench.servers import pin
from core.sqlite import driver as sqlite3

if TYPE_CHECKING:
    from bench.context import CaseResult, Context

# Not bench.context's: the floor's child process must not import the ORM it does not use.
ROOT = Path(__file__).resolve().parent.parent.parent

NAME = "importer"
AGENTS = 1000
ASSOCIATION = "Bench MLS"


def add_agents(path: Path) -> None:
    created = datetime.now(UTC).replace(microsecond=0).isoformat(" ")
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO account (kind, key_id, mls_id, association, first_name, last_name, "
            "email, status, failed_logins, failed_pins, created_at) "
            "VALUES ('AGENT', ?, ?, ?, 'Bench', ?, ?, 'ACTIVE', 0, 0, ?)",
            [
                (
                    f"{700000000 + i:09d}",
                    f"A{i}",
                    ASSOCIATION,
                    f"Agent{i}",
                    f"agent{i}@bench.example",
                    created,
                )
                for i in range(AGENTS)
            ],
        )


def write_listings(path: Path, count: int) -> None:
    """RESO Web API JSON as an MLS sends it, written in pieces so the writer stays small."""
    with path.open("w") as out:
        out.write('{"@odata.context": "bench", "value": [\n')
        for i in range(count):
            row = {
                "ListingId": f"RESO{i:07d}",
                "StandardStatus": ("Active", "Pending", "Coming Soon", "Closed")[i % 4],
                "StreetNumber": str(100 + i % 9000),
                "StreetName": f"{('Oak', 'Elm', 'Vine', 'Main', 'Race')[i % 5]} Street",
                "UnitNumber": str(i % 40) if i % 7 == 0 else None,
                "City": "Cincinnati",
                "StateOrProvince": "OH",
                "PostalCode": f"452{i % 100:02d}",
                "ListAgentMlsId": f"A{i % AGENTS}",
                "OriginatingSystemName": ASSOCIATION,
            }
            out.write(json.dumps(row) + (",\n" if i + 1 < count else "\n"))
        out.write("]}\n")


def _peak_rss() -> int:
    """This program's high-water mark. Not getrusage's ru_maxrss: that one survives exec
    and so reports the forking parent's size when it was the larger."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def _child_keybin(database: Path, file: Path) -> dict[str, Any]:
    from bench import seed
    from importers.listings import import_listings
    from importers.report import ImportReport

    async with seed.orm(f"sqlite://{database}"):
        start = time.perf_counter()
        report = await import_listings(file, ImportReport())
        took = time.perf_counter() - start
    return {
        "rows": report.created + report.updated,
        "skipped": len(report.skipped),
        "seconds": took,
    }


def _child_floor(database: Path, file: Path) -> dict[str, Any]:
    start = time.perf_counter()
    values = json.loads(file.read_bytes())["value"]
    conn = sqlite3.connect(database)
    agents = dict(conn.execute("SELECT mls_id, id FROM account WHERE kind = 'AGENT'"))
    created = datetime.now(UTC).isoformat(" ")
    statuses = {
        "Active": "ACTIVE",
        "Pending": "PENDING",
        "Coming Soon": "COMING_SOON",
        "Closed": "CLOSED",
    }
    rows = [
        (
            v["ListingId"],
            "IMPORTED",
            statuses[v["StandardStatus"]],
            f"{v['StreetNumber']} {v['StreetName']}",
            f"Unit {v['UnitNumber']}" if v.get("UnitNumber") else None,
            v["City"],
            v["StateOrProvince"],
            v["PostalCode"],
            created,
            agents[v["ListAgentMlsId"]],
        )
        for v in values
    ]
    with conn:
        conn.executemany(
            "INSERT INTO listing (mls_number, source, status, line1, line2, city, state, "
            "postal_code, created_at, agent_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    conn.close()
    return {"rows": len(rows), "skipped": 0, "seconds": time.perf_counter() - start}


def child(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cases.importer")
    parser.add_argument("side", choices=["keybin", "floor"])
    parser.add_argument("database", type=Path)
    parser.add_argument("file", type=Path)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args(argv)
    pin(args.cpu)
    if args.side == "keybin":
        result = asyncio.run(_child_keybin(args.database, args.file))
    else:
        result = _child_floor(args.database, args.file)
    result["peak_rss_bytes"] = _peak_rss()
    print(json.dumps(result))


def _run_child(ctx: Context, side: str, database: Path, file: Path) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.cases.importer", side, str(database), str(file)]
    if ctx.server_cpu is not None:
        argv += ["--cpu", str(ctx.server_cpu)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{side} import failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(ctx: Context) -> CaseResult:
    from bench.context import CaseResult

    small, large = ctx.size(10_000, 1_000, 200), ctx.size(100_000, 10_000, 1_000)
    results: dict[str, dict[int, dict[str, Any]]] = {"keybin": {}, "floor": {}}
    for size in (small, large):
        file = ctx.workdir / f"listings-{size}.json"
        write_listings(file, size)
        for side in ("keybin", "floor"):
            url = ctx.database(f"import-{side}-{size}")
            database = Path(url.removeprefix("sqlite://"))
            add_agents(database)
            results[side][size] = _run_child(ctx, side, database, file)
            if results[side][size]["rows"] != size:
                raise RuntimeError(f"{side} imported {results[side][size]} of {size} rows")
    ours, theirs = results["keybin"], results["floor"]

    def rate(side: dict[int, dict[str, Any]], size: int) -> float:
        return float(side[size]["rows"] / side[size]["seconds"])

    def growth(side: dict[int, dict[str, Any]]) -> float:
        return float(side[large]["peak_rss_bytes"] / side[small]["peak_rss_bytes"])

    mib = 1024 * 1024
    return CaseResult(
        [
            Row(
                NAME,
                f"rows/s, {large:,} listings",
                "rows/s",
                rate(ours, large),
                rate(theirs, large),
                "sqlite3 executemany",
                "at_least",
                0.3,
            ),
            Row(
                NAME,
                f"peak RSS, {large:,} listings",
                "MiB",
                ours[large]["peak_rss_bytes"] / mib,
                theirs[large]["peak_rss_bytes"] / mib,
                "sqlite3 executemany",
            ),
            Row(
                NAME,
                f"peak RSS growth {small:,} -> {large:,}",
                "x",
                growth(ours),
                growth(theirs),
                "sqlite3 executemany",
                "below",
                1.2,
            ),
        ],
        {"keybin": ours, "floor": theirs},
    )


if __name__ == "__main__":
    child(sys.argv[1:])
