"""Case 2: a small query over HTTP, `me { ... messages(first: 10) }` with 10 messages.

Floor: a plain Starlette JSON endpoint answering the same bytes, under the same uvicorn
settings on the same CPU. Reported as requests per second at a fixed number of connections."""

from __future__ import annotations

from typing import Any

from bench import load, seed, stats
from bench.cases.nested import keybin_server
from bench.context import ROOT, CaseResult, Context, run_async
from bench.report import Row
from bench.servers import HOST, Server, bench_python, free_port

NAME = "small"
CONNECTIONS = 16

QUERY = """
query Small {
  me {
    id
    firstName
    lastName
    email
    messages(first: 10) {
      edges { cursor node { id kind title body createdAt readAt } }
    }
  }
}
"""


async def seed_reader(url: str) -> tuple[int, str]:
    async with seed.orm(url):
        (account_id,) = await seed.contractors("small", 1)
        (token,) = await seed.sessions([account_id])
        await seed.messages(account_id, 10)
    return account_id, token


def run(ctx: Context) -> CaseResult:
    url = ctx.database("small")
    _, token = run_async(seed_reader(url))
    rounds = ctx.size(3, 1, 1)
    with keybin_server(ctx, url, "keybin-small") as keybin:
        raw = load.graphql_request(HOST, keybin.port, QUERY, token=token)
        expected = run_async(load.request_once(HOST, keybin.port, raw)).body
        assert b'"errors"' not in expected and b'"edges"' in expected, expected[:300]
        body_file = ctx.workdir / "small-response.json"
        body_file.write_bytes(expected)
        port = free_port()
        floor = Server(
            "plain-small",
            bench_python("bench.serve", "plain", "--port", str(port), "--file", str(body_file)),
            port,
            ctx.log_dir,
            {"PYTHONPATH": str(ROOT)},
            ctx.server_cpu,
            cwd=ROOT,
        )
        with floor:
            floor_raw = load.graphql_request(HOST, floor.port, QUERY, token=token)

            def same(response: load.Response) -> bool:
                return response.body == expected

            async def measure() -> tuple[list[load.LoadResult], list[load.LoadResult]]:
                ours, theirs = [], []
                # Alternate rounds: a busy neighbour then weighs on both sides alike.
                for _ in range(rounds):
                    ours.append(
                        await load.run(
                            HOST,
                            keybin.port,
                            raw,
                            connections=CONNECTIONS,
                            seconds=ctx.seconds,
                            warmup=ctx.warmup,
                            check=same,
                        )
                    )
                    theirs.append(
                        await load.run(
                            HOST,
                            floor.port,
                            floor_raw,
                            connections=CONNECTIONS,
                            seconds=ctx.seconds,
                            warmup=ctx.warmup,
                            check=same,
                        )
                    )
                return ours, theirs

            ours, theirs = run_async(measure())
    keybin_rps = stats.median([r.rps for r in ours])
    floor_rps = stats.median([r.rps for r in theirs])
    details: dict[str, Any] = {
        "response_bytes": len(expected),
        "connections": CONNECTIONS,
        "keybin_rounds": [r.summary() for r in ours],
        "floor_rounds": [r.summary() for r in theirs],
    }
    failures = sum(r.failures for r in ours + theirs)
    if failures:
        details["first_failure"] = next(r.first_failure for r in ours + theirs if r.failures)
    return CaseResult(
        [
            Row(
                NAME,
                f"requests/s, {CONNECTIONS} connections",
                "rps",
                keybin_rps,
                floor_rps,
                "plain Starlette",
                "at_least",
                0.5,
                note=f"{failures} failed" if failures else "",
            ),
            Row(
                NAME,
                "median latency under that load",
                "ms",
                stats.median([r.median_ms for r in ours]),
                stats.median([r.median_ms for r in theirs]),
                "plain Starlette",
            ),
        ],
        details,
    )
