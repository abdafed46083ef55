"""Case 6: the nested and the small query against PostGraphile 4.14.1, both servers over the
same PostgreSQL data, one CPU each (the server and PostgreSQL share it; the client has the
other). Responses are checked to carry the same values before anything is timed.

PostGraphile comes from npm (`postgraphile@4.14.1`, kept in ~/.cache/keybin-bench) and
PostgreSQL from tools/pg_cluster.sh; when either cannot run here the case says why."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench import load, seed, stats
from bench.cases import nested, small
from bench.context import ROOT, CaseResult, Context, run_async
from bench.report import Row, unavailable
from bench.servers import HOST, Server, bench_python, free_port, pin, running

NAME = "peer"
VERSION = "4.14.1"
PACKAGE_DIR = Path(os.environ.get("KEYBIN_BENCH_CACHE", Path.home() / ".cache/keybin-bench"))
DATABASE = "keybin_bench"
CONNECTIONS = 8

NESTED = """
query Nested($agent: Int!) {
  accountById(id: $agent) {
    listingsByAgentId(first: 50, orderBy: ID_DESC) {
      edges {
        node {
          id
          mlsNumber
          line1
          city
          postalCode
          lockboxByListingId { id serialNumber }
          grantsByListingId(first: 20, orderBy: ID_DESC) {
            edges {
              node {
                id
                granteeEmail
                startsAt
                endsAt
                revokedAt
                accountByGranteeId { id firstName lastName }
              }
            }
          }
        }
      }
    }
  }
}
"""

SMALL = """
query Small($account: Int!) {
  accountById(id: $account) {
    id
    firstName
    lastName
    email
    messagesByAccountId(first: 10, orderBy: ID_DESC) {
      edges { cursor node { id kind title body createdAt readAt } }
    }
  }
}
"""


class Unavailable(Exception):
    """PostGraphile or PostgreSQL cannot run on this machine."""


def postgraphile_cli() -> Path:
    """The pinned PostGraphile, installed once into the cache with npm if missing."""
    prefix = PACKAGE_DIR / "postgraphile"
    package = prefix / "node_modules/postgraphile/package.json"
    if not package.exists() or json.loads(package.read_text())["version"] != VERSION:
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise Unavailable("Node.js/npm not installed")
        prefix.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(prefix),
                f"postgraphile@{VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0 or not package.exists():
            raise Unavailable(f"npm install postgraphile@{VERSION} failed: {done.stderr[-300:]}")
    return prefix / "node_modules/postgraphile/cli.js"


@contextlib.contextmanager
def cluster(cpu: int | None) -> Iterator[str]:
    """A throwaway cluster of this case's own, in a new directory on a free port: apart from
    the test suite's (/tmp/keybin-pg, 54329) and from any other benchmark run at the same
    time, so none stops or fills another's."""
    script = ROOT / "tools/pg_cluster.sh"
    directory = tempfile.mkdtemp(prefix="keybin-bench-pg-")
    port = str(free_port())
    done = subprocess.run(
        ["bash", str(script), "start", directory, port],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    url = ""
    try:
        if done.returncode != 0:
            raise Unavailable(f"PostgreSQL did not start: {done.stderr.strip()[-300:]}")
        url = done.stdout.strip().splitlines()[-1]
        _directories[url] = directory
        _pin_cluster(cpu, url)
        yield url
    finally:
        subprocess.run(
            ["bash", str(script), "stop", directory, port],
            capture_output=True,
            timeout=120,
            check=False,
        )
        _directories.pop(url, None)
        shutil.rmtree(directory, ignore_errors=True)


# Each running cluster's directory, by the URL `cluster` gave.
_directories: dict[str, str] = {}


def postmaster(url: str) -> int:
    """The process id of the cluster `cluster` started at this URL."""
    return int(Path(_directories[url], "postmaster.pid").read_text().split()[0])


def _pin_cluster(cpu: int | None, url: str) -> None:
    """PostgreSQL shares the server's CPU; new backends inherit the postmaster's placement."""
    if cpu is None:
        return
    parent = postmaster(url)
    pin(cpu, parent)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == parent:
                    pin(cpu, int(entry.name))


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _prepare(base: str) -> dict[str, Any]:
    admin = await asyncpg.connect(base.replace("postgres://", "postgresql://", 1))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    url = _with_database(base, DATABASE)
    await seed.migrate(url)
    async with seed.orm(url):
        grantees = await seed.contractors("nested", 250)
        portfolio = await seed.portfolio("n50", 50, nested.GRANTS_PER_LISTING, grantees)
        reader, token = await _reader()
    return {
        "url": url,
        "agent_id": portfolio.agent_id,
        "agent_token": portfolio.token,
        "reader": reader,
        "reader_token": token,
    }


def prepare(base: str) -> dict[str, Any]:
    """Seeded in a child process: Tortoise keeps SQL it compiled for SQLite in the earlier
    cases and would send it to PostgreSQL."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.cases.peer", base],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"seeding PostgreSQL failed: {done.stderr[-2000:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


async def _reader() -> tuple[int, str]:
    (account_id,) = await seed.contractors("small", 1)
    (token,) = await seed.sessions([account_id])
    await seed.messages(account_id, 10)
    return account_id, token


def _pk(global_id: str) -> int:
    return int(base64.b64decode(global_id).decode().split(":", 1)[1])


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


def _status(node: dict[str, Any]) -> str:
    return nested._status(
        datetime.fromisoformat(node["startsAt"]),
        datetime.fromisoformat(node["endsAt"]),
        _at(node["revokedAt"]),
        datetime.now(UTC),
    )


def nested_values(data: dict[str, Any], ours: bool) -> list[Any]:
    """Both answers reduced to the same values: ids as row keys, times as instants."""
    if ours:
        edges = data["me"]["listings"]["edges"]
    else:
        edges = data["accountById"]["listingsByAgentId"]["edges"]
    out = []
    for edge in edges:
        node = edge["node"]
        box = node["lockbox"] if ours else node["lockboxByListingId"]
        grants = node["grants"] if ours else node["grantsByListingId"]
        address = node["address"] if ours else node
        out.append(
            (
                _pk(node["id"]) if ours else node["id"],
                node["mlsNumber"],
                address["line1"],
                address["city"],
                address["postalCode"],
                box["serialNumber"],
                [
                    (
                        _pk(g["node"]["id"]) if ours else g["node"]["id"],
                        g["node"]["granteeEmail"],
                        _at(g["node"]["startsAt"]),
                        _at(g["node"]["endsAt"]),
                        g["node"]["status"] if ours else _status(g["node"]),
                        (g["node"]["grantee"] if ours else g["node"]["accountByGranteeId"])[
                            "firstName"
                        ],
                        (g["node"]["grantee"] if ours else g["node"]["accountByGranteeId"])[
                            "lastName"
                        ],
                    )
                    for g in grants["edges"]
                ],
            )
        )
    return out


def small_values(data: dict[str, Any], ours: bool) -> list[Any]:
    account = data["me"] if ours else data["accountById"]
    feed = account["messages"] if ours else account["messagesByAccountId"]
    return [account["firstName"], account["lastName"], account["email"]] + [
        (
            _pk(e["node"]["id"]) if ours else e["node"]["id"],
            e["node"]["kind"],
            e["node"]["title"],
            e["node"]["body"],
            _at(e["node"]["createdAt"]),
            e["node"]["readAt"],
        )
        for e in feed["edges"]
    ]


def _body(response: load.Response) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response.body)
    if response.status != 200 or body.get("errors"):
        raise RuntimeError(f"query failed: {response.status} {response.body[:500]!r}")
    data: dict[str, Any] = body["data"]
    return data


def run(ctx: Context) -> CaseResult:
    try:
        cli = postgraphile_cli()
        with cluster(ctx.server_cpu) as base:
            return _run(ctx, cli, base)
    except Unavailable as why:
        return CaseResult(
            [unavailable(NAME, "nested + small vs PostGraphile", str(why))],
            {"unavailable": str(why)},
        )


def _run(ctx: Context, cli: Path, base: str) -> CaseResult:
    seeded = prepare(base)
    url, reader, token = seeded["url"], seeded["reader"], seeded["reader_token"]
    portfolio = seed.Portfolio(seeded["agent_id"], seeded["agent_token"], [])
    rounds = ctx.size(3, 1, 1)
    keybin = nested.keybin_server(ctx, url, "keybin-peer", env=nested.NOT_KEPT)
    # keybin as it runs works every answer out; this one keeps the small query's answer while
    # the data is unchanged (schema/fast/answer_cache.py), for the row printed beside it. The
    # nested query reads the clock (grant statuses), so its answers are never kept anyway.
    kept = nested.keybin_server(ctx, url, "keybin-peer-kept", env=nested.KEPT)
    port = free_port()
    peer = Server(
        "postgraphile",
        [
            "node",
            str(cli),
            "--connection",
            url,
            "--schema",
            "public",
            "--host",
            HOST,
            "--port",
            str(port),
            "--disable-query-log",
            "--disable-graphiql",
            "--disable-default-mutations",
        ],
        port,
        ctx.log_dir,
        {"NODE_ENV": "production"},
        ctx.server_cpu,
        ready_path="/graphql",
    )
    # What the small target allows at all: the same two reads, the same answer, written by
    # hand (bench/serve.py, plain_pg_app), on the same CPU as the others.
    hand_port = free_port()
    by_hand = Server(
        "plain-pg",
        bench_python("bench.serve", "plain-pg", "--port", str(hand_port), "--url", url),
        hand_port,
        ctx.log_dir,
        {"PYTHONPATH": str(ROOT)},
        ctx.server_cpu,
        cwd=ROOT,
    )
    with running(keybin, kept, peer, by_hand):
        requests = {
            "nested": (
                load.graphql_request(
                    HOST, keybin.port, nested.QUERY, {"first": 50}, portfolio.token
                ),
                load.graphql_request(HOST, peer.port, NESTED, {"agent": portfolio.agent_id}),
                nested_values,
                None,
            ),
            "small": (
                load.graphql_request(HOST, keybin.port, small.QUERY, token=token),
                load.graphql_request(HOST, peer.port, SMALL, {"account": reader}),
                small_values,
                load.graphql_request(HOST, kept.port, small.QUERY, token=token),
            ),
        }
        hand_raw = load.graphql_request(HOST, by_hand.port, small.QUERY, token=token)

        async def measure() -> dict[str, Any]:
            found: dict[str, Any] = {}
            for name, (ours_raw, theirs_raw, values, kept_raw) in requests.items():
                ours_data = _body(await load.request_once(HOST, keybin.port, ours_raw))
                theirs_data = _body(await load.request_once(HOST, peer.port, theirs_raw))
                same = values(ours_data, True) == values(theirs_data, False)
                if not same:
                    raise RuntimeError(f"{name}: keybin and PostGraphile answer differently")
                ours, theirs, kept_runs = [], [], []

                async def load_run(port: int, raw: bytes) -> load.LoadResult:
                    return await load.run(
                        HOST,
                        port,
                        raw,
                        connections=CONNECTIONS,
                        seconds=ctx.seconds,
                        warmup=ctx.warmup,
                        check=lambda r: b'"errors"' not in r.body,
                    )

                if kept_raw is not None:
                    hand_data = _body(await load.request_once(HOST, by_hand.port, hand_raw))
                    if values(hand_data, True) != values(ours_data, True):
                        raise RuntimeError(f"{name}: keybin and the hand-written reads differ")
                for _ in range(rounds):
                    if kept_raw is not None:
                        kept_runs.append(await load_run(kept.port, kept_raw))
                        hand_runs.append(await load_run(by_hand.port, hand_raw))
                    ours.append(await load_run(keybin.port, ours_raw))
                    theirs.append(await load_run(peer.port, theirs_raw))
                found[name] = (ours, theirs, kept_runs)
            return found

        hand_runs: list[load.LoadResult] = []

        measured = run_async(measure())
    rows = []
    details: dict[str, Any] = {
        "postgraphile": VERSION,
        "connections": CONNECTIONS,
        "same_values": True,
    }
    for name, (ours, theirs, kept_runs) in measured.items():
        keybin_rps = stats.median([r.rps for r in ours])
        peer_rps = stats.median([r.rps for r in theirs])
        rows.append(
            Row(
                NAME,
                f"{name} query requests/s (PostgreSQL), worked out",
                "rps",
                keybin_rps,
                peer_rps,
                f"PostGraphile {VERSION}",
                "at_least",
                2.0,
            )
        )
        if kept_runs:
            rows.append(
                Row(
                    NAME,
                    f"{name} query requests/s, kept answers on",
                    "rps",
                    stats.median([r.rps for r in kept_runs]),
                    peer_rps,
                    f"PostGraphile {VERSION}",
                )
            )
        details[name] = {
            "keybin": [r.summary() for r in ours],
            "keybin_kept": [r.summary() for r in kept_runs],
            "postgraphile": [r.summary() for r in theirs],
        }
    hand_rps = stats.median([r.rps for r in hand_runs])
    small_rps = stats.median([r.rps for r in measured["small"][0]])
    peer_small = stats.median([r.rps for r in measured["small"][1]])
    rows += [
        Row(
            NAME,
            "small query requests/s of the same reads written by hand (not keybin)",
            "rps",
            hand_rps,
            peer_small,
            f"PostGraphile {VERSION}",
        ),
        Row(
            NAME,
            "small query requests/s worked out, against the same reads written by hand",
            "rps",
            small_rps,
            hand_rps,
            "Starlette + asyncpg by hand",
        ),
    ]
    details["small"]["by_hand"] = [r.summary() for r in hand_runs]
    return CaseResult(rows, details)


if __name__ == "__main__":
    print(json.dumps(run_async(_prepare(sys.argv[1]))))
