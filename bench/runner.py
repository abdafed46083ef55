"""Runs the chosen cases, prints the table of medians and ratios, and writes the JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import socket
import sys
import tempfile
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import machine
from bench.cases import CASES
from bench.context import CaseResult, Context
from bench.report import Row, table
from bench.servers import pin, placement, raise_file_limit

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="keybin against its floors and its peer."
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    parser.add_argument("--tiny", action="store_true", help="the smallest sizes (smoke test)")
    parser.add_argument("--only", default="", help=f"comma-separated cases: {','.join(CASES)}")
    parser.add_argument("--seconds", type=float, default=None, help="length of each load run")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or CASES
    unknown = [name for name in chosen if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    args.cases = [name for name in CASES if name in chosen]
    return args


def run_case(name: str, ctx: Context) -> tuple[CaseResult, str | None]:
    module = importlib.import_module(f"bench.cases.{name}")
    try:
        return module.run(ctx), None
    except Exception as error:  # noqa: BLE001  (one broken case must not hide the others)
        traceback.print_exc()
        reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        return CaseResult([Row(name, "(case failed)", "", None, note=f"error: {reason}")]), reason


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    raise_file_limit()
    server_cpu, client_cpu = placement()
    pin(client_cpu)  # the load client; servers go on server_cpu
    mode = "tiny" if args.tiny else "quick" if args.quick or args.tiny else "full"
    quick = mode != "full"
    seconds = args.seconds or (1.5 if quick else 5.0)
    workdir = Path(tempfile.mkdtemp(prefix="keybin-bench-"))
    ctx = Context(
        quick=quick,
        tiny=args.tiny,
        workdir=workdir,
        server_cpu=server_cpu,
        client_cpu=client_cpu,
        seconds=seconds,
        warmup=min(1.0, seconds / 3),
    )
    described = machine.describe()
    started = datetime.now().astimezone()
    print(
        f"keybin bench ({mode}) on {described['cpu_model']}, {described['cores']} cores, "
        f"load {described['loadavg_at_start']}; server CPU {server_cpu}, "
        f"client CPU {client_cpu}"
    )
    results: dict[str, Any] = {}
    rows: list[Row] = []
    try:
        for name in args.cases:
            print(f"[{name}] ...", flush=True)
            begin = time.monotonic()
            result, error = run_case(name, ctx)
            took = time.monotonic() - begin
            print(f"[{name}] done in {took:.1f}s", flush=True)
            rows.extend(result.rows)
            results[name] = {
                "seconds": round(took, 1),
                "error": error,
                "rows": [row.as_dict() for row in result.rows],
                "details": result.details,
            }
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"scratch directory kept: {workdir}")
    print()
    print(table(rows))
    document = {
        "date": started.isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "mode": mode,
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "machine": described,
        "settings": {
            "seconds_per_load_run": seconds,
            "server_cpu": server_cpu,
            "client_cpu": client_cpu,
        },
        "cases": results,
        "rows": [row.as_dict() for row in rows],
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    suffix = "" if mode == "full" else f"-{mode}"
    if args.cases != CASES:  # a partial run must not replace the day's whole one
        suffix += "-" + "-".join(args.cases)
    path = args.results_dir / f"{started:%Y-%m-%d}-{socket.gethostname()}{suffix}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults: {path}")
    return 0
