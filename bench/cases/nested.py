"""Case 1: an agent's listings -> lockbox -> 20 grants each -> grantee, over HTTP.

Floors: graphql-core's own `graphql()` over the same data pre-fetched into dicts (a minimal
schema of the same shape), and the same rows fetched with plain sqlite3. Also counts the SQL
statements one request sends, for 10 and for 50 listings: they must not grow with listings."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

from graphql import build_schema, graphql

from bench import load, seed, stats
from bench.context import ROOT, CaseResult, Context, run_async
from bench.report import Row
from bench.servers import HOST, Server, bench_python, free_port, on_cpu
from core.sqlite import driver as sqlite3

NAME = "nested"
NOT_KEPT = {"KEYBIN_ANSWER_CACHE": "off"}
KEPT = {"KEYBIN_ANSWER_CACHE": "on"}  # off by default (settings.py)
GRANTS_PER_LISTING = 20

QUERY = """
query Nested($first: Int!) {
  me {
    ... on Agent {
      listings(first: $first) {
        edges {
          node {
            id
            mlsNumber
            address { line1 city postalCode }
            lockbox { id serialNumber }
            grants(first: 20) {
              edges {
                node {
                  id
                  granteeEmail
                  startsAt
                  endsAt
                  status
                  grantee { id firstName lastName }
                }
              }
            }
          }
        }
      }
    }
  }
}
"""

FLOOR_SDL = """
type Query { me: Agent }
type Agent { listings(first: Int): ListingConnection! }
type ListingConnection { edges: [ListingEdge!]! }
type ListingEdge { node: Listing! }
type Listing {
  id: ID!
  mlsNumber: String
  address: Address!
  lockbox: Lockbox
  grants(first: Int): GrantConnection!
}
type Address { line1: String! city: String! postalCode: String! }
type Lockbox { id: ID! serialNumber: String! }
type GrantConnection { edges: [GrantEdge!]! }
type GrantEdge { node: Grant! }
enum GrantStatus { SCHEDULED ACTIVE EXPIRED REVOKED }
type Grant {
  id: ID!
  granteeEmail: String!
  startsAt: String!
  endsAt: String!
  status: GrantStatus!
  grantee: Contractor
}
type Contractor { id: ID! firstName: String! lastName: String! }
"""


def global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def fetch_rows(conn: sqlite3.Connection, agent_id: int, first: int) -> tuple[list[Any], ...]:
    """The sqlite3 floor: the same rows in three statements, nothing else."""
    listings = conn.execute(
        "SELECT l.id, l.mls_number, l.line1, l.city, l.postal_code, b.id, b.serial_number "
        "FROM listing l LEFT JOIN lockbox b ON b.listing_id = l.id "
        "WHERE l.agent_id = ? ORDER BY l.id DESC LIMIT ?",
        (agent_id, first),
    ).fetchall()
    ids = [row[0] for row in listings]
    marks = ",".join("?" * len(ids))
    grants = conn.execute(
        "SELECT id, listing_id, grantee_email, starts_at, ends_at, revoked_at, grantee_id FROM "
        "(SELECT *, row_number() OVER (PARTITION BY listing_id ORDER BY id DESC) AS n "
        f' FROM "grant" WHERE listing_id IN ({marks})) WHERE n <= ? ORDER BY listing_id, id DESC',
        (*ids, GRANTS_PER_LISTING),
    ).fetchall()
    grantee_ids = sorted({row[6] for row in grants if row[6] is not None})
    marks = ",".join("?" * len(grantee_ids))
    grantees = conn.execute(
        f"SELECT id, first_name, last_name FROM account WHERE id IN ({marks})", grantee_ids
    ).fetchall()
    return listings, grants, grantees


def _status(starts: datetime, ends: datetime, revoked: datetime | None, now: datetime) -> str:
    if revoked is not None:
        return "REVOKED"
    if now < starts:
        return "SCHEDULED"
    return "ACTIVE" if now < ends else "EXPIRED"


def to_dicts(rows: tuple[list[Any], ...]) -> dict[str, Any]:
    """The pre-fetched root value the graphql-core floor executes over."""
    listings, grants, grantees = rows
    now = datetime.now(UTC)
    people = {
        pk: {"id": global_id("Contractor", pk), "firstName": first, "lastName": last}
        for pk, first, last in grantees
    }
    by_listing: dict[int, list[dict[str, Any]]] = {}
    for pk, listing_id, email, starts, ends, revoked, grantee_id in grants:
        start, end = _when(starts), _when(ends)
        assert start is not None and end is not None
        by_listing.setdefault(listing_id, []).append(
            {
                "node": {
                    "id": global_id("Grant", pk),
                    "granteeEmail": email,
                    "startsAt": start.isoformat(),
                    "endsAt": end.isoformat(),
                    "status": _status(start, end, _when(revoked), now),
                    "grantee": people.get(grantee_id),
                }
            }
        )
    edges = [
        {
            "node": {
                "id": global_id("Listing", pk),
                "mlsNumber": mls,
                "address": {"line1": line1, "city": city, "postalCode": postal},
                "lockbox": {"id": global_id("Lockbox", box), "serialNumber": serial}
                if box
                else None,
                "grants": {"edges": by_listing.get(pk, [])},
            }
        }
        for pk, mls, line1, city, postal, box, serial in listings
    ]
    return {"me": {"listings": {"edges": edges}}}


def _timed(fn: Any, repeats: int, budget: float) -> list[float]:
    times: list[float] = []
    stop = time.perf_counter() + budget
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if time.perf_counter() > stop:
            break
    return times


async def _floor_graphql(
    root: dict[str, Any], repeats: int, budget: float
) -> tuple[list[float], Any]:
    schema = build_schema(FLOOR_SDL)
    variables = {"first": 50}
    result = await graphql(schema, QUERY, root_value=root, variable_values=variables)
    assert not result.errors, result.errors
    times: list[float] = []
    stop = time.perf_counter() + budget
    for _ in range(repeats):
        start = time.perf_counter()
        await graphql(schema, QUERY, root_value=root, variable_values=variables)
        times.append(time.perf_counter() - start)
        if time.perf_counter() > stop:
            break
    return times, result.data


async def _seed(url: str) -> tuple[seed.Portfolio, seed.Portfolio]:
    async with seed.orm(url):
        grantees = await seed.contractors("nested", 250)
        big = await seed.portfolio("n50", 50, GRANTS_PER_LISTING, grantees)
        small = await seed.portfolio("n10", 10, GRANTS_PER_LISTING, grantees)
    return big, small


async def _sql_count(port: int, portfolio: seed.Portfolio, first: int) -> tuple[int, Any]:
    raw = load.graphql_request(HOST, port, QUERY, {"first": first}, portfolio.token)
    raw = raw.replace(b"\r\n\r\n", b"\r\nx-bench-count-sql: 1\r\n\r\n", 1)
    response = await load.request_once(HOST, port, raw)
    body = json.loads(response.body)
    assert "errors" not in body, body
    return int(response.headers["x-bench-sql-count"]), body["data"]


def keybin_server(
    ctx: Context, url: str, name: str, count_sql: bool = False, env: dict[str, str] | None = None
) -> Server:
    port = free_port()
    argv = bench_python("bench.serve", "keybin", "--port", str(port))
    if count_sql:
        argv.append("--count-sql")
    environment = {**ctx.keybin_env(url), **(env or {})}
    return Server(name, argv, port, ctx.log_dir, environment, ctx.server_cpu, cwd=ROOT)


def run(ctx: Context) -> CaseResult:
    url = ctx.database("nested")
    big, small = run_async(_seed(url))
    details: dict[str, Any] = {"listings": 50, "grants_per_listing": GRANTS_PER_LISTING}
    # Execution is what is measured here, and the statements a request sends: every
    # request works its answer out (none is kept, see schema/fast/answer_cache.py).
    with keybin_server(ctx, url, "keybin-nested", count_sql=True, env=NOT_KEPT) as server:

        async def measure() -> tuple[int, int, Any, load.LoadResult]:
            await _sql_count(server.port, big, 50)  # warm
            count10, _ = await _sql_count(server.port, small, 10)
            count50, data = await _sql_count(server.port, big, 50)
            raw = load.graphql_request(HOST, server.port, QUERY, {"first": 50}, big.token)
            result = await load.run(
                HOST,
                server.port,
                raw,
                connections=1,
                seconds=ctx.seconds,
                warmup=ctx.warmup,
                check=lambda r: b'"errors"' not in r.body,
            )
            return count10, count50, data, result

        count10, count50, keybin_data, result = run_async(measure())

    path = url.removeprefix("sqlite://")
    conn = sqlite3.connect(path)
    repeats = ctx.size(400, 100, 20)
    rows = fetch_rows(conn, big.agent_id, 50)
    with on_cpu(ctx.server_cpu):
        sql_times = _timed(lambda: fetch_rows(conn, big.agent_id, 50), repeats, ctx.seconds)
        floor_times, floor_data = run_async(_floor_graphql(to_dicts(rows), repeats, ctx.seconds))
    conn.close()

    details.update(
        sql_statements={"10_listings": count10, "50_listings": count50},
        keybin=result.summary(),
        floor_graphql_core_ms=round(stats.median(floor_times) * 1000, 3),
        floor_sqlite3_ms=round(stats.median(sql_times) * 1000, 3),
        same_data_as_floor=keybin_data == floor_data,
    )
    print(
        f"  nested: SQL statements per request: {count10} for 10 listings, "
        f"{count50} for 50 listings"
    )
    if keybin_data != floor_data:
        print("  nested: WARNING keybin's data differs from the graphql-core floor's")
    keybin_ms = result.median_ms
    return CaseResult(
        [
            Row(
                NAME,
                "median latency, 50 listings x 20 grants",
                "ms",
                keybin_ms,
                stats.median(floor_times) * 1000,
                "graphql-core",
                "at_most",
                1.3,
            ),
            Row(
                NAME,
                "median latency vs plain SQL",
                "ms",
                keybin_ms,
                stats.median(sql_times) * 1000,
                "sqlite3",
                "at_most",
                5.0,
            ),
            Row(
                NAME,
                "SQL statements/request, 50 vs 10 listings",
                "stmts",
                count50,
                count10,
                "10 listings",
                "at_most",
                1.0,
            ),
        ],
        details,
    )
