"""Case 2: a small query over HTTP, `me { ... messages(first: 10) }` with 10 messages.

Floor: a plain Starlette JSON endpoint answering the same bytes, under the same uvicorn
settings on the same CPU; beside it, the same reads written by hand (the token's session and
account, the ten newest messages, sqlite3 and the standard library's json, same bytes), which
says what any Python server answering this query from SQLite gets. Reported as requests per
second at a fixed number of connections, for keybin as it runs (every answer worked out)
and, printed beside it, with kept answers turned on (KEYBIN_ANSWER_CACHE=on: the repeated
answer kept while the database is unchanged, schema/fast/answer_cache.py), which a
deployment with steady writes rarely gets to use."""

from __future__ import annotations

from typing import Any

from bench import load, seed, stats
from bench.cases.nested import KEPT, NOT_KEPT, keybin_server
from bench.context import ROOT, CaseResult, Context, run_async
from bench.report import Row
from bench.servers import HOST, Server, bench_python, free_port, running

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
    worked_out = keybin_server(ctx, url, "keybin-small", env=NOT_KEPT)
    # The same server keeping the repeated answer (schema/fast/answer_cache.py), printed beside
    # the target row: what an unchanging database would give, not what traffic gets.
    kept = keybin_server(ctx, url, "keybin-small-kept", env=KEPT)
    with running(kept, worked_out):
        raw = load.graphql_request(HOST, worked_out.port, QUERY, token=token)
        expected = run_async(load.request_once(HOST, worked_out.port, raw)).body
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
        hand_port = free_port()
        database = url.removeprefix("sqlite://")
        by_hand = Server(
            "plain-sql-small",
            bench_python("bench.serve", "plain-sql", "--port", str(hand_port), "--file", database),
            hand_port,
            ctx.log_dir,
            {"PYTHONPATH": str(ROOT)},
            ctx.server_cpu,
            cwd=ROOT,
        )
        with running(floor, by_hand):
            servers = {
                "worked_out": worked_out,
                "kept": kept,
                "floor": floor,
                "by_hand": by_hand,
            }

            def same(response: load.Response) -> bool:
                return response.body == expected

            async def measure() -> dict[str, list[load.LoadResult]]:
                results: dict[str, list[load.LoadResult]] = {name: [] for name in servers}
                # Alternate rounds: a busy neighbour then weighs on all sides alike.
                for _ in range(rounds):
                    for name, server in servers.items():
                        request = load.graphql_request(HOST, server.port, QUERY, token=token)
                        results[name].append(
                            await load.run(
                                HOST,
                                server.port,
                                request,
                                connections=CONNECTIONS,
                                seconds=ctx.seconds,
                                warmup=ctx.warmup,
                                check=same,
                            )
                        )
                return results

            results = run_async(measure())
    rps = {name: stats.median([r.rps for r in rounds_]) for name, rounds_ in results.items()}
    every = [r for rounds_ in results.values() for r in rounds_]
    details: dict[str, Any] = {
        "response_bytes": len(expected),
        "connections": CONNECTIONS,
        "keybin_rounds": [r.summary() for r in results["worked_out"]],
        "keybin_kept_rounds": [r.summary() for r in results["kept"]],
        "floor_rounds": [r.summary() for r in results["floor"]],
        "by_hand_rounds": [r.summary() for r in results["by_hand"]],
    }
    failures = sum(r.failures for r in every)
    if failures:
        details["first_failure"] = next(r.first_failure for r in every if r.failures)
    return CaseResult(
        [
            Row(
                NAME,
                f"requests/s, {CONNECTIONS} connections, worked out",
                "rps",
                rps["worked_out"],
                rps["floor"],
                "plain Starlette",
                "at_least",
                0.4,
                note=f"{failures} failed" if failures else "",
            ),
            Row(
                NAME,
                "median latency under that load",
                "ms",
                stats.median([r.median_ms for r in results["worked_out"]]),
                stats.median([r.median_ms for r in results["floor"]]),
                "plain Starlette",
            ),
            # What the target allows at all: the same reads and the same bytes, written by
            # hand with nothing between HTTP and sqlite3 (bench/serve.py, plain_sql_app).
            Row(
                NAME,
                "requests/s of the same reads written by hand (not keybin)",
                "rps",
                rps["by_hand"],
                rps["floor"],
                "plain Starlette",
            ),
            Row(
                NAME,
                "requests/s worked out, against the same reads written by hand",
                "rps",
                rps["worked_out"],
                rps["by_hand"],
                "Starlette + sqlite3 by hand",
            ),
            Row(
                NAME,
                "requests/s, kept answers on",
                "rps",
                rps["kept"],
                rps["floor"],
                "plain Starlette",
            ),
        ],
        details,
    )
