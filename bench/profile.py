"""Where a worked-out request's time goes: py-spy on a keybin server under load.

    python -m bench.profile small            # me + 10 messages, 16 connections
    python -m bench.profile nested           # 50 listings x 20 grants, one connection

The server runs as in the benchmarks (production settings, every answer worked out) on a
seeded SQLite copy; py-spy samples it while the load runs and writes a flame graph (SVG)
and the folded stacks to the output directory (two recordings, one after the other, each
half the time), then prints where the folded stacks' samples fell: by layer (the deepest
frame on each stack from keybin or a library named below) and by the functions with the
most samples of their own. `pip install py-spy` first; it reads the
server's memory, so it needs ptrace (root, or kernel.yama.ptrace_scope=0)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from bench import load
from bench.cases import nested, small
from bench.cases.nested import NOT_KEPT, keybin_server
from bench.context import Context, run_async
from bench.servers import HOST, Server, placement

# Where a sample's time is counted: the deepest frame on its stack from one of these (each
# frame named by the first that matches, so schema/fast/ before schema/, strawberry/ before
# both); a stack with none of them is "other". The standard library and C code count for the
# layer that called them.
LAYERS = (
    ("uvicorn", "uvicorn/"),
    ("starlette", "starlette/"),
    ("strawberry", "strawberry/"),
    ("graphql-core", "graphql/"),
    ("tortoise", "tortoise/"),
    ("pypika", "pypika"),
    ("asyncpg", "asyncpg/"),
    ("aiosqlite", "aiosqlite/"),
    ("keybin schema/fast", "schema/fast/"),
    ("keybin schema", "schema/"),
    ("keybin resolvers", "resolvers/"),
    ("keybin models", "models/"),
    ("keybin web", "web/"),
    ("keybin core", "core/"),
)


def _request(case: str, url: str, port: int) -> tuple[bytes, int]:
    if case == "small":
        _, token = run_async(small.seed_reader(url))
        return load.graphql_request(HOST, port, small.QUERY, token=token), small.CONNECTIONS
    big, _ = run_async(nested._seed(url))
    return load.graphql_request(HOST, port, nested.QUERY, {"first": 50}, big.token), 1


def _layer(frame: str) -> str | None:
    for name, marker in LAYERS:
        if marker in frame:
            return name
    return None


def summarise(folded: Path, top: int = 15) -> str:
    """Samples by the deepest layer each stack reaches and the busiest functions of their own."""
    layers: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        deepest = next((name for f in reversed(frames) if (name := _layer(f))), "other")
        layers[deepest] += count
    lines = [f"{total} samples", "", "where the samples ended, by layer:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in layers.most_common()]
    lines += ["", f"the {top} functions with the most samples of their own:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("case", choices=["small", "nested"])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to sample")
    parser.add_argument("--rate", type=int, default=200, help="samples a second")
    parser.add_argument("--out", type=Path, default=Path("bench/profiles"))
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        parser.error("py-spy is not installed: pip install py-spy")
    server_cpu, client_cpu = placement()
    workdir = Path(tempfile.mkdtemp(prefix="keybin-profile-"))
    ctx = Context(False, False, workdir, server_cpu, client_cpu, args.seconds, 1.0)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        url = ctx.database(args.case)
        with keybin_server(ctx, url, f"keybin-{args.case}-profile", env=NOT_KEPT) as server:
            raw, connections = _request(args.case, url, server.port)
            _profile(spy, server, raw, connections, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    folded = args.out / f"{args.case}.folded"
    print(summarise(folded))
    print(f"\nflame graph: {args.out / f'{args.case}.svg'}")
    return 0


def _profile(
    spy: str, server: Server, raw: bytes, connections: int, args: argparse.Namespace
) -> None:
    seconds = args.seconds + 3  # load runs past the sampling on both ends
    loaded = threading.Thread(
        target=lambda: asyncio.run(
            load.run(HOST, server.port, raw, connections=connections, seconds=seconds, warmup=1)
        )
    )
    loaded.start()
    try:
        for fmt, suffix in (("flamegraph", "svg"), ("raw", "folded")):
            subprocess.run(
                [spy, "record", "--pid", str(server.pid), "--duration", str(int(args.seconds / 2))]
                + ["--rate", str(args.rate), "--format", fmt, "--nonblocking"]
                + ["--output", str(args.out / f"{args.case}.{suffix}")],
                check=True,
                capture_output=True,
            )
    finally:
        loaded.join()


if __name__ == "__main__":
    raise SystemExit(main())
