"""Case 8: traffic that looks like production, with the kept answers on and off.

1,000 signed-in contractors, each with a token of their own, open their Message Center and
their grants list at a steady rate, spread over all of them; meanwhile about 20 writes a
second go through the GraphQL API as apps send them (agents create and revoke grants,
contractors mark messages read and sign in), so the data changes all the time, as in use.
The same data and the same schedule run twice: kept answers on (schema/fast/answer_cache.py)
and off (`KEYBIN_ANSWER_CACHE=off`, the floor), to say what keeping answers gives under such
load. On SQLite (one instance) and on PostgreSQL (two instances on one database, each user's
and each agent's requests always to the same one, as a load balancer keeping them apart would).

Open loop: requests leave when a seeded random schedule says (reads a Poisson stream, writes
evenly spaced), whether or not earlier answers have come, and each is timed from the moment it
was due. A thousand phones do not wait for each other; a closed loop would send less as the
server slows down and hide the very slowdown this measures. Requests reach each instance over
a pool of keep-alive connections, as from a reverse proxy's upstream pool. At an offered rate
the server keeps up with, throughput only says that it did: a short closed-loop run after it
(many connections, the same mix, the writes still at their rate) gives the reads per second
each configuration sustains. The hit rate comes from the servers' /metrics
(`keybin_kept_answer_hits_total`, `keybin_kept_answer_misses_total`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench import load, seed, stats
from bench.cases import peer
from bench.cases.nested import KEPT, NOT_KEPT, global_id, keybin_server
from bench.context import ROOT, CaseResult, Context, run_async
from bench.report import Row, unavailable
from bench.servers import HOST, Server, running

NAME = "traffic"
PIN = "2468"
PASSWORD = "Traffic123"
DEVICE = "bench-phone"  # seed.sessions' device: signing in again reuses it
METRICS_TOKEN = "bench-metrics-token-" + "m" * 16
SEED = 20261207
POOL = 32  # keep-alive connections per instance
IDLE = 4.0  # uvicorn closes a connection idle for 5 s: one idle this long is opened again
SLOW = 1.0  # seconds: a read this slow waited in a queue (they take milliseconds)
READ_MIX = 0.6  # the share of reads that open the Message Center; the rest the grants list
# Writes in every two seconds, by kind: mostly cheap ones. grantAccess and signIn each check
# an argon2 hash (about 140 ms of CPU here, on nice-10 threads of their own, core/security.py):
# one and a half a second is already a quarter of the server's CPU.
WRITE_DECK = ("mark_read",) * 29 + ("revoke",) * 8 + ("grant",) * 2 + ("sign_in",)
READS = ("messages", "grants")
WRITES = ("mark_read", "revoke", "grant", "sign_in")
DATABASES = ("keybin_traffic_on", "keybin_traffic_off")
CONFIGS = ("on", "off")

MESSAGE_CENTER = """
query MessageCenter {
  me {
    id
    unreadMessageCount
    messages(first: 20) {
      pageInfo { hasNextPage endCursor }
      edges { cursor node { id kind title body createdAt readAt } }
    }
  }
}
"""
GRANTS = """
query MyGrants {
  me {
    id
    ... on Contractor {
      grants(first: 20) {
        totalCount
        edges {
          node {
            id status startsAt endsAt revocable
            listing { id address { line1 city postalCode } }
            grantedBy { firstName lastName }
          }
        }
      }
    }
  }
}
"""
MARK_READ = """
mutation MarkRead($ids: [ID!]!) {
  markMessagesRead(input: {ids: $ids}) { count userErrors { code } }
}
"""
REVOKE = """
mutation Revoke($id: ID!) {
  revokeAccess(input: {grantId: $id}) { grant { id status } userErrors { code } }
}
"""
GRANT = """
mutation Grant($input: GrantAccessInput!) {
  grantAccess(input: $input) { grant { id status } invitationSent userErrors { code } }
}
"""
SIGN_IN = """
mutation SignIn($input: SignInInput!) {
  signIn(input: $input) { token userErrors { code } }
}
"""
STATUSES = {"SCHEDULED", "ACTIVE", "EXPIRED", "REVOKED"}


@dataclass(frozen=True)
class Sizes:
    users: int
    agents: int
    listings: int  # per agent, each with a lockbox
    grants_per_listing: int  # a quarter of them scheduled: what agents revoke
    messages: int  # per user
    reads_per_second: float  # offered, open loop
    writes_per_second: float
    warmup: float  # per configuration, not measured
    seconds: float  # measured open loop, per configuration
    rounds: int  # the open loop's segments, each run by both configurations in turn
    saturation: float  # closed loop, per configuration
    closed_rounds: int
    saturating: int  # connections per instance in the closed loop


def _seconds(ctx: Context, full: float, quick: float, tiny: float) -> float:
    return tiny if ctx.tiny else quick if ctx.quick else full


def sizes(ctx: Context) -> Sizes:
    return Sizes(
        users=ctx.size(1000, 500, 20),
        agents=ctx.size(20, 20, 2),
        listings=ctx.size(25, 25, 10),
        grants_per_listing=10,
        messages=20,
        reads_per_second=ctx.size(120, 120, 20),
        writes_per_second=20,
        warmup=_seconds(ctx, 3, 0.5, 0.5),
        seconds=_seconds(ctx, 60, 3, 2),
        rounds=ctx.size(6, 2, 2),
        saturation=_seconds(ctx, 16, 1, 1),
        closed_rounds=ctx.size(2, 1, 1),
        saturating=16,
    )


# -- seeding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    """users: (token, global id, email); their messages' global ids; agents: (token, listing
    global ids, global ids of their grants still scheduled, which they may revoke)."""

    users: list[tuple[str, str, str]]
    messages: list[list[str]]
    agents: list[tuple[str, list[str], list[str]]]


async def _seed(database_url: str, size: Sizes) -> dict[str, Any]:
    from core.security import hash_secret
    from models.accounts import Account
    from models.enums import MessageKind
    from models.grants import Grant
    from models.messages import Message

    async with seed.orm(database_url):
        users = await seed.contractors(NAME, size.users)
        # Proven addresses (a grant to one reaches its owner) and a password to sign in with.
        await Account.filter(id__in=users).update(
            email_verified=True, password_hash=hash_secret(PASSWORD)
        )
        tokens = await seed.sessions(users)
        at = seed.now()
        kinds = [MessageKind.ACCESS_GRANTED, MessageKind.ACCESS_REVOKED, MessageKind.ACCOUNT]
        await Message.bulk_create(
            [
                Message(
                    account_id=user,
                    kind=kinds[i % len(kinds)],
                    title=f"Access granted #{i}",
                    body=f"You can open the lockbox at {100 + i} Main Street, Cincinnati "
                    "from Tuesday 09:00 to Friday 17:00.",
                    created_at=at - timedelta(minutes=size.messages - i),
                )
                for user in users
                for i in range(size.messages)
            ],
            batch_size=1000,
        )
        messages: dict[int, list[str]] = {user: [] for user in users}
        rows = (
            await Message.filter(account_id__in=users)
            .order_by("id")
            .values_list("account_id", "id")
        )
        for account, message in rows:
            messages[int(account)].append(global_id("Message", int(message)))
        agents, agent_ids = [], []
        per_agent = size.listings * size.grants_per_listing
        for k in range(size.agents):
            # Each agent's grants go to the next stretch of contractors, shifted by one more
            # each time, so a contractor's grants come in every status, from several agents.
            shift = (k * (per_agent + 1)) % len(users)
            grantees = users[shift:] + users[:shift]
            portfolio = await seed.portfolio(
                f"{NAME}{k}", size.listings, size.grants_per_listing, grantees
            )
            revocable = (
                await Grant.filter(
                    granted_by_id=portfolio.agent_id,
                    revoked_at__isnull=True,
                    starts_at__gt=at + timedelta(days=1),
                )
                .order_by("id")
                .values_list("id", flat=True)
            )
            agents.append(
                [
                    portfolio.token,
                    [global_id("Listing", pk) for pk in portfolio.listing_ids],
                    [global_id("Grant", int(pk)) for pk in revocable],  # type: ignore[call-overload]
                ]
            )
            agent_ids.append(portfolio.agent_id)
        await Account.filter(id__in=agent_ids).update(pin_hash=hash_secret(PIN))
    return {
        "users": [
            [token, global_id("Contractor", user), f"{NAME}.contractor{i}@example.com"]
            for i, (user, token) in enumerate(zip(users, tokens, strict=True))
        ],
        "messages": [messages[user] for user in users],
        "agents": agents,
    }


def _seeded(found: dict[str, Any]) -> Seeded:
    return Seeded(
        users=[(t, i, e) for t, i, e in found["users"]],
        messages=found["messages"],
        agents=[(t, listings, grants) for t, listings, grants in found["agents"]],
    )


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _admin(base: str, *statements: str) -> None:
    admin = await asyncpg.connect(base.replace("postgres://", "postgresql://", 1))
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()


async def _prepare_postgres(base: str, size: Sizes) -> dict[str, Any]:
    on, off = DATABASES
    await _admin(
        base,
        f'DROP DATABASE IF EXISTS "{on}" WITH (FORCE)',
        f'DROP DATABASE IF EXISTS "{off}" WITH (FORCE)',
        f'CREATE DATABASE "{on}"',
    )
    url = _with_database(base, on)
    await seed.migrate(url)
    seeded = await _seed(url, size)
    # The cache-off run's database is the first's copy: the same rows, tokens and ids.
    await _admin(base, f'CREATE DATABASE "{off}" TEMPLATE "{on}"')
    return seeded


def _prepare(database_url: str, size: Sizes) -> Seeded:
    """SQLite is seeded here; PostgreSQL in a child process, since Tortoise keeps SQL it
    compiled for the earlier cases' SQLite (see the peer case)."""
    if not database_url.startswith("postgres"):
        return _seeded(run_async(_seed(database_url, size)))
    done = subprocess.run(
        [sys.executable, "-m", "bench.cases.traffic", database_url, json.dumps(asdict(size))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"seeding PostgreSQL failed: {done.stderr[-2000:]}")
    return _seeded(json.loads(done.stdout.strip().splitlines()[-1]))


def _copy_sqlite(url: str, name: str) -> str:
    source = Path(url.removeprefix("sqlite://"))
    target = source.with_name(f"{name}.sqlite3")
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")
    return f"sqlite://{target}"


# -- the schedule ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One request: due `at` seconds into its segment, to the instance of `route`."""

    at: float
    kind: str
    route: int
    token: str
    body: bytes
    expect: str  # what the answer must name: the user's id, the grant revoked


def _body(query: str, variables: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables or {}}).encode()


class Planner:
    """Draws the requests from one seeded generator: both configurations get the very same
    ones, in the same order, at the same times. Writes pick their targets as they go (the next
    unread message, the next grant still scheduled), so every one of them must succeed."""

    def __init__(self, seeded: Seeded, size: Sizes) -> None:
        self.seeded = seeded
        self.size = size
        self.rng = random.Random(SEED)
        self.read_at = [0] * len(seeded.users)
        self.revoked = [0] * len(seeded.agents)
        self.granted = 0
        self.deck: list[str] = []  # the kinds of writes still to come in the current deck
        self.windows = seed.now().replace(second=0) + timedelta(days=1)

    def read(self, at: float, user: int | None = None) -> Op:
        rng = self.rng
        if user is None:
            user = rng.randrange(len(self.seeded.users))
        token, user_id, _ = self.seeded.users[user]
        if rng.random() < READ_MIX:
            return Op(at, "messages", user, token, _body(MESSAGE_CENTER), user_id)
        return Op(at, "grants", user, token, _body(GRANTS), user_id)

    def write(self, at: float, kind: str) -> Op:
        rng, users, agents = self.rng, self.seeded.users, self.seeded.agents
        if kind == "mark_read":
            for _ in range(1000):
                user = rng.randrange(len(users))
                if self.read_at[user] < len(self.seeded.messages[user]):
                    break
            else:
                raise RuntimeError("every message has been read: seed more")
            message = self.seeded.messages[user][self.read_at[user]]
            self.read_at[user] += 1
            body = _body(MARK_READ, {"ids": [message]})
            return Op(at, kind, user, users[user][0], body, "1")
        if kind == "revoke":
            left = [k for k in range(len(agents)) if self.revoked[k] < len(agents[k][2])]
            if not left:
                raise RuntimeError("no scheduled grant left to revoke: seed more")
            agent = rng.choice(left)
            grant = agents[agent][2][self.revoked[agent]]
            self.revoked[agent] += 1
            body = _body(REVOKE, {"id": grant})
            return Op(at, kind, agent, agents[agent][0], body, grant)
        if kind == "grant":
            agent = rng.randrange(len(agents))
            token, listings, _ = agents[agent]
            starts = self.windows + timedelta(minutes=self.granted)
            self.granted += 1
            variables = {
                "input": {
                    "listingId": rng.choice(listings),
                    "granteeEmail": users[rng.randrange(len(users))][2],
                    "startsAt": starts.isoformat(),
                    "endsAt": (starts + timedelta(hours=2)).isoformat(),
                    "pin": PIN,
                }
            }
            return Op(at, kind, agent, token, _body(GRANT, variables), "")
        user = rng.randrange(len(users))
        variables = {
            "input": {
                "login": users[user][2],
                "password": PASSWORD,
                "deviceId": DEVICE,
                "deviceName": "Bench phone",
            }
        }
        return Op(at, "sign_in", user, "", _body(SIGN_IN, variables), "")

    def segment(self, seconds: float, reads: bool = True) -> list[Op]:
        """`seconds` of traffic: reads as a Poisson stream, writes evenly spaced, their kinds
        dealt from a shuffled deck (WRITE_DECK) again and again."""
        ops: list[Op] = []
        if reads:
            at = self.rng.expovariate(self.size.reads_per_second)
            while at < seconds:
                ops.append(self.read(at))
                at += self.rng.expovariate(self.size.reads_per_second)
        gap = 1 / self.size.writes_per_second
        for n in range(int(seconds * self.size.writes_per_second)):
            if not self.deck:
                self.deck = list(WRITE_DECK)
                self.rng.shuffle(self.deck)
            ops.append(self.write((n + 0.5) * gap, self.deck.pop()))
        ops.sort(key=lambda op: op.at)
        return ops


# -- the client -----------------------------------------------------------------------------


@dataclass(eq=False)
class Connection:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    used: float = float("-inf")


class Pool:
    """Keep-alive connections to one instance, used in turn (first in, first out); a request
    waits for one when all are busy, and that wait is part of its time."""

    def __init__(self, port: int, size: int = POOL) -> None:
        self.port = port
        self.idle: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(Connection())

    async def exchange(self, raw: bytes) -> load.Response:
        connection = await self.idle.get()
        try:
            if connection.writer is None or time.perf_counter() - connection.used > IDLE:
                if connection.writer is not None:
                    connection.writer.close()
                connection.reader, connection.writer = await asyncio.open_connection(
                    HOST, self.port
                )
            assert connection.reader is not None
            connection.writer.write(raw)
            response = await load.read_response(connection.reader)
            connection.used = time.perf_counter()
            if response.headers.get("connection", "").lower() == "close":
                connection.used = float("-inf")
            return response
        except BaseException:
            connection.used = float("-inf")  # opened again before its next use
            raise
        finally:
            self.idle.put_nowait(connection)

    def close(self) -> None:
        while not self.idle.empty():
            connection = self.idle.get_nowait()
            if connection.writer is not None:
                connection.writer.close()


@dataclass(frozen=True)
class Outcome:
    kind: str
    due: float
    done: float
    error: str | None

    @property
    def seconds(self) -> float:
        return self.done - self.due


def problem(op: Op, response: load.Response) -> str | None:
    """What is wrong with an answer, or None: the status, errors, and the shape each kind of
    request must have (reads: the asking user's own account)."""
    if response.status != 200:
        return f"{op.kind}: HTTP {response.status} {response.body[:200]!r}"
    try:
        body = json.loads(response.body)
        data = body["data"]
        if body.get("errors"):
            return f"{op.kind}: errors {body['errors']!r:.200}"
        if op.kind in READS:
            me = data["me"]
            if me["id"] != op.expect:
                return f"{op.kind}: the answer is {me['id']}'s, asked by {op.expect}"
            if op.kind == "messages":
                edges = me["messages"]["edges"]
                ok = isinstance(me["unreadMessageCount"], int) and all(
                    e["node"]["id"] and e["cursor"] for e in edges
                )
            else:
                edges = me["grants"]["edges"]
                ok = me["grants"]["totalCount"] >= len(edges) > 0 and all(
                    e["node"]["status"] in STATUSES and e["node"]["listing"]["id"] for e in edges
                )
            return None if ok else f"{op.kind}: unexpected shape {response.body[:200]!r}"
        payload = data[
            {
                "mark_read": "markMessagesRead",
                "revoke": "revokeAccess",
                "grant": "grantAccess",
                "sign_in": "signIn",
            }[op.kind]
        ]
        if payload["userErrors"]:
            return f"{op.kind}: {payload['userErrors']!r}"
        if op.kind == "mark_read":
            ok = payload["count"] == 1
        elif op.kind == "revoke":
            ok = payload["grant"]["id"] == op.expect and payload["grant"]["status"] == "REVOKED"
        elif op.kind == "grant":
            ok = bool(payload["grant"]["id"]) and payload["invitationSent"] is False
        else:
            ok = bool(payload["token"])
        return None if ok else f"{op.kind}: unexpected answer {response.body[:200]!r}"
    except (ValueError, KeyError, TypeError) as error:
        return f"{op.kind}: {type(error).__name__} {error} in {response.body[:200]!r}"


async def _send(pools: Sequence[Pool], op: Op, due: float, outcomes: list[Outcome]) -> None:
    pool = pools[op.route % len(pools)]
    headers = {"Authorization": f"Bearer {op.token}"} if op.token else {}
    raw = load.post_request(HOST, pool.port, "/graphql", op.body, headers)
    try:
        async with asyncio.timeout(60):
            response = await pool.exchange(raw)
        error = problem(op, response)
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as failure:
        error = f"{op.kind}: {type(failure).__name__} {failure}"
    outcomes.append(Outcome(op.kind, due, time.perf_counter(), error))


async def open_loop(pools: Sequence[Pool], ops: Sequence[Op]) -> list[Outcome]:
    """Each request leaves when it is due, whatever is still waiting for its answer."""
    outcomes: list[Outcome] = []
    tasks = []
    start = time.perf_counter() + 0.01
    for op in ops:
        due = start + op.at
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_send(pools, op, due, outcomes)))
    await asyncio.gather(*tasks)
    return outcomes


async def closed_loop(
    pools: Sequence[Pool], planner: Planner, writes: Sequence[Op], seconds: float, per_pool: int
) -> tuple[list[Outcome], float]:
    """`per_pool` connections per instance asking one read after another for `seconds`, the
    writes going on at their rate meanwhile. Returns the outcomes and the reads' time."""
    outcomes: list[Outcome] = []
    users = len(planner.seeded.users)
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(instance: int) -> None:
        # The users this instance serves (user % instances == instance).
        mine = range(instance, users, len(pools))
        while time.perf_counter() < deadline:
            op = planner.read(0.0, planner.rng.choice(mine))
            await _send(pools, op, time.perf_counter(), outcomes)

    writing = asyncio.create_task(open_loop(pools, writes))
    await asyncio.gather(*(worker(i) for i in range(len(pools)) for _ in range(per_pool)))
    # The reads' time: the writes' last answers (argon2 checks queued behind the reads) may
    # come seconds later, when no read is asked any more.
    took = time.perf_counter() - start
    written = await writing
    return outcomes + written, took


# -- what the servers and the machine tell ----------------------------------------------------


async def answer_counts(servers: Sequence[Server]) -> tuple[int, int]:
    """The kept answers' hits and misses, summed over the instances' /metrics."""
    hits = misses = 0
    for server in servers:
        raw = (
            f"GET /metrics HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n"
            f"Authorization: Bearer {METRICS_TOKEN}\r\nConnection: close\r\n\r\n"
        ).encode()
        response = await load.request_once(HOST, server.port, raw)
        if response.status != 200:
            raise RuntimeError(f"/metrics answered {response.status}: {response.body[:200]!r}")
        for line in response.body.decode().splitlines():
            name, _, value = line.partition(" ")
            if name == "keybin_kept_answer_hits_total":
                hits += int(float(value))
            elif name == "keybin_kept_answer_misses_total":
                misses += int(float(value))
    return hits, misses


TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    """User and system CPU seconds of a process, all its threads."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _request_threads(pid: int) -> dict[int, float]:
    """CPU seconds of each live thread of a server at normal priority: the event loop and the
    database driver's, not the argon2 checks (nice 10, core/security.py, with the lanes they
    start), which only signIn and grantAccess use and which would swamp the difference."""
    found = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[16]) == 0:
                    found[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICK
    return found


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == parent:
                    found.append(int(entry.name))
    return found


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all CPUs), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


class Meter:
    """CPU used while it runs: by the servers of one configuration (with PostgreSQL's
    processes, shared by both), by this load client, and by the machine as a whole; what
    the machine used beyond these is other people's work."""

    def __init__(self, servers: Sequence[Server], postmaster: int | None) -> None:
        self.servers = servers
        self.postmaster = postmaster

    def _database_pids(self) -> list[int]:
        if self.postmaster is None:
            return []
        return [self.postmaster, *_children(self.postmaster)]

    def read(self) -> dict[str, Any]:
        return {
            "servers": sum(_cpu(s.pid) for s in self.servers),
            "threads": {
                tid: cpu for s in self.servers for tid, cpu in _request_threads(s.pid).items()
            },
            "database": {pid: _cpu(pid) for pid in self._database_pids()},
            "client": _cpu(os.getpid()),
            "machine": _machine_busy(),
            "wall": time.perf_counter(),
        }

    @staticmethod
    def used(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
        database = sum(
            seconds - before["database"].get(pid, 0.0) for pid, seconds in after["database"].items()
        )
        mine = after["servers"] - before["servers"] + database
        requests = database + sum(
            seconds - before["threads"].get(tid, 0.0) for tid, seconds in after["threads"].items()
        )
        client = after["client"] - before["client"]
        machine = after["machine"] - before["machine"]
        return {
            "wall": after["wall"] - before["wall"],
            "servers": mine,
            "request_path": requests,
            "client": client,
            "machine": machine,
            # Other benchmarks' and people's work, and the idle configuration's servers.
            "others": max(machine - mine - client, 0.0),
        }


# -- running a database's two configurations ------------------------------------------------


@dataclass
class Config:
    name: str  # "on" or "off"
    servers: list[Server]
    meter: Meter
    pools: list[Pool] = field(default_factory=list)
    open: list[Outcome] = field(default_factory=list)
    saturated: list[Outcome] = field(default_factory=list)
    saturated_seconds: float = 0.0
    saturated_hits: tuple[int, int] = (0, 0)  # hits, misses
    hits: int = 0
    misses: int = 0
    cpu: dict[str, float] = field(default_factory=dict)

    def add_cpu(self, used: dict[str, float]) -> None:
        for key, value in used.items():
            self.cpu[key] = self.cpu.get(key, 0.0) + value


async def _phase(config: Config, ops: Sequence[Op], measured: bool) -> None:
    hits, misses = await answer_counts(config.servers)
    before = config.meter.read()
    outcomes = await open_loop(config.pools, ops)
    if not measured:
        return
    config.add_cpu(Meter.used(before, config.meter.read()))
    after = await answer_counts(config.servers)
    config.hits += after[0] - hits
    config.misses += after[1] - misses
    config.open.extend(outcomes)


async def _measure(configs: list[Config], seeded: Seeded, size: Sizes) -> dict[str, float]:
    """Both configurations get the same segments of the schedule, in turn, the order
    reversed every other round (on, off, off, on, on, off, ...): a change in the machine's
    load during the run weighs on both alike."""
    took: dict[str, float] = {}
    clock = time.monotonic()

    def phase(name: str) -> None:
        nonlocal clock
        took[name] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    def turn(r: int) -> list[Config]:
        return configs if r % 2 == 0 else configs[::-1]

    planner = Planner(seeded, size)
    warmup = planner.segment(size.warmup)
    rounds = [planner.segment(size.seconds / size.rounds) for _ in range(size.rounds)]
    closed = size.saturation / size.closed_rounds
    writes = [planner.segment(closed, reads=False) for _ in range(size.closed_rounds)]
    for config in configs:
        config.pools = [Pool(server.port) for server in config.servers]
        # Every document admitted, every connection opened, the servers' code warm.
        await _phase(config, warmup, measured=False)
    phase("warm-up")
    for r, ops in enumerate(rounds):
        for config in turn(r):
            await _phase(config, ops, measured=True)
    phase("open loop")
    for r, ops in enumerate(writes):
        for config in turn(r):
            # The same reads for both: a generator seeded alike.
            reader = Planner(seeded, size)
            reader.rng = random.Random(SEED + 1 + r)
            hits, misses = await answer_counts(config.servers)
            outcomes, seconds = await closed_loop(
                config.pools, reader, ops, closed, size.saturating
            )
            after = await answer_counts(config.servers)
            config.saturated += outcomes
            config.saturated_seconds += seconds
            config.saturated_hits = (
                config.saturated_hits[0] + after[0] - hits,
                config.saturated_hits[1] + after[1] - misses,
            )
    phase("closed loop")
    for config in configs:
        for pool in config.pools:
            pool.close()
    return took


def _sqlite(ctx: Context, size: Sizes) -> tuple[list[Config], dict[str, Any]]:
    begin = time.monotonic()
    url = ctx.database("traffic-on")
    seeded = _prepare(url, size)
    urls = (url, _copy_sqlite(url, "traffic-off"))
    seconds: dict[str, float] = {"seeded": round(time.monotonic() - begin, 1)}
    configs = []
    for name, database in zip(CONFIGS, urls, strict=True):
        server = keybin_server(ctx, database, f"keybin-traffic-{name}", env=_env(name))
        configs.append(Config(name, [server], Meter([server], None)))
    begin = time.monotonic()
    with running(*(s for c in configs for s in c.servers)):
        seconds["servers started"] = round(time.monotonic() - begin, 1)
        seconds |= run_async(_measure(configs, seeded, size))
    return configs, {"seconds": seconds, "load_after": list(os.getloadavg())}


def _postgres(ctx: Context, size: Sizes) -> tuple[list[Config], dict[str, Any]]:
    """Two instances per configuration on one database; PostgreSQL on the servers' CPU."""
    begin = time.monotonic()
    with peer.cluster(ctx.server_cpu) as base:
        seeded = _prepare(base, size)
        seconds: dict[str, float] = {
            "cluster started and seeded": round(time.monotonic() - begin, 1)
        }
        postmaster = peer.postmaster(base)
        configs = []
        for name, database in zip(CONFIGS, DATABASES, strict=True):
            url = _with_database(base, database)
            servers = [
                keybin_server(ctx, url, f"keybin-traffic-pg-{name}-{i}", env=_env(name))
                for i in (1, 2)
            ]
            configs.append(Config(name, servers, Meter(servers, postmaster)))
        begin = time.monotonic()
        with running(*(s for c in configs for s in c.servers)):
            seconds["servers started"] = round(time.monotonic() - begin, 1)
            seconds |= run_async(_measure(configs, seeded, size))
    return configs, {"seconds": seconds, "load_after": list(os.getloadavg())}


def _env(config: str) -> dict[str, str]:
    return {
        "METRICS_TOKEN": METRICS_TOKEN,
        # Sign-ins and PIN checks come from one address, some accounts several times.
        "RATE_LIMIT_PER_ACCOUNT_PER_MINUTE": "1000000",
        **(NOT_KEPT if config == "off" else KEPT),
    }


# -- the report -----------------------------------------------------------------------------


def _ms(outcomes: Sequence[Outcome], kinds: Sequence[str], pct: float) -> float | None:
    values = [o.seconds for o in outcomes if o.kind in kinds and o.error is None]
    return stats.percentile(values, pct) * 1000 if values else None


def _rate(outcomes: Sequence[Outcome], kinds: Sequence[str], seconds: float) -> float:
    done = sum(1 for o in outcomes if o.kind in kinds and o.error is None)
    return done / seconds if seconds else 0.0


def _open_rate(config: Config, kinds: Sequence[str]) -> float:
    """Answered requests per second over the measured open-loop time."""
    return _rate(config.open, kinds, config.cpu.get("wall", 0.0))


def _cpu_per_request(config: Config) -> float:
    """CPU the servers' request path (and the database) used per answered request."""
    answered = sum(1 for o in config.open if o.error is None)
    return 1000 * config.cpu["request_path"] / answered if answered else 0.0


def _slow_reads(config: Config) -> float:
    """The share of the open loop's reads answered after SLOW or later."""
    times = [o.seconds for o in config.open if o.kind in READS and o.error is None]
    return sum(1 for t in times if t >= SLOW) / len(times) if times else 0.0


def _fell_behind(config: Config) -> bool:
    """More than 1% of reads took a second: requests were queueing, the server (on the CPU
    the machine's other work left it) could not keep up with the offered rate."""
    return _slow_reads(config) > 0.01


def _errors(config: Config) -> list[Outcome]:
    return [o for o in config.open + config.saturated if o.error is not None]


def _hit_rate(config: Config) -> float:
    reads = sum(1 for o in config.open if o.kind in READS)
    return 100 * config.hits / reads if reads else 0.0


def _rows(configs: list[Config], size: Sizes, where: str) -> list[Row]:
    on, off = configs
    offered = f"{size.reads_per_second:g} reads/s + {size.writes_per_second:g} writes/s"
    floor = "cache off"
    errors = len(_errors(on)) + len(_errors(off))
    rows = [
        Row(
            NAME,
            f"requests/s answered, offered {offered} ({where})",
            "rps",
            _open_rate(on, READS + WRITES),
            _open_rate(off, READS + WRITES),
            floor,
        ),
        Row(
            NAME,
            f"cache pays? reads/s sustained, closed loop, {size.saturating} conn/instance"
            f" + writes ({where})",
            "rps",
            _rate(on.saturated, READS, on.saturated_seconds),
            _rate(off.saturated, READS, off.saturated_seconds),
            floor,
            "at_least",
            1.0,
        ),
    ]
    behind = [c.name for c in configs if _fell_behind(c)]
    for pct in (50, 95, 99):
        target = ("at_most", 1.0) if pct == 95 else ("", None)
        label = "cache pays? read p95" if pct == 95 else f"read p{pct}"
        row = Row(
            NAME,
            f"{label}, open loop ({where})",
            "ms",
            _ms(on.open, READS, pct),
            _ms(off.open, READS, pct),
            floor,
            target[0],
            target[1],
        )
        if pct == 95 and len(behind) == len(configs):
            # Both queued up behind the offered rate: their p95 is how long the queue grew
            # in each one's turns, which the neighbours' load decides as much as keybin.
            row.metric += ", both fell behind: not decided"
            row.met = None
        rows.append(row)
    for pct in (50, 95, 99):
        rows.append(
            Row(
                NAME,
                f"write p{pct}, open loop ({where})",
                "ms",
                _ms(on.open, WRITES, pct),
                _ms(off.open, WRITES, pct),
                floor,
            )
        )
    rows += [
        Row(
            NAME,
            f"kept answers hit rate, % of reads, open loop ({where})",
            "%",
            _hit_rate(on),
        ),
        Row(
            NAME,
            f"server CPU per request{' (and PostgreSQL)' if on.meter.postmaster else ''},"
            f" argon2 threads aside, open loop ({where})",
            "ms",
            _cpu_per_request(on),
            _cpu_per_request(off),
            floor,
        ),
        Row(
            NAME,
            f"other work on the machine meanwhile, cores of {os.cpu_count()} ({where})",
            "cores",
            on.cpu["others"] / on.cpu["wall"],
            off.cpu["others"] / off.cpu["wall"],
            "during cache off",
        ),
        Row(
            NAME,
            f"errors, both configurations, answers checked ({where})",
            "",
            float(errors),
            target_kind="below",
            bound=0.0,
        ),
    ]
    return rows


def _config_details(config: Config) -> dict[str, Any]:
    def rounded(value: float | None) -> float | None:
        return round(value, 2) if value is not None else None

    by_kind = {
        kind: {
            "answered": sum(1 for o in config.open if o.kind == kind and o.error is None),
            "p50_ms": rounded(_ms(config.open, [kind], 50)),
            "p95_ms": rounded(_ms(config.open, [kind], 95)),
            "p99_ms": rounded(_ms(config.open, [kind], 99)),
            "max_ms": rounded(_ms(config.open, [kind], 100)),
        }
        for kind in READS + WRITES
    }
    errors = _errors(config)
    reads = sum(1 for o in config.open if o.kind in READS)
    return {
        "instances": len(config.servers),
        "open_loop": by_kind,
        "open_loop_seconds": rounded(config.cpu.get("wall")),
        "reads_over_1s_percent": rounded(100 * _slow_reads(config)),
        "fell_behind": _fell_behind(config),
        "closed_loop": {
            "seconds": rounded(config.saturated_seconds),
            "reads": sum(1 for o in config.saturated if o.kind in READS and o.error is None),
            "writes": sum(1 for o in config.saturated if o.kind in WRITES and o.error is None),
            "read_p50_ms": rounded(_ms(config.saturated, READS, 50)),
            "read_p99_ms": rounded(_ms(config.saturated, READS, 99)),
            "kept_answer_hits": config.saturated_hits[0],
            "kept_answer_misses": config.saturated_hits[1],
        },
        "kept_answers": {
            "hits": config.hits,
            "misses": config.misses,
            "reads": reads,
            "hit_rate_of_reads": rounded(100 * config.hits / reads) if reads else None,
            "hit_rate_of_keepable": rounded(100 * config.hits / (config.hits + config.misses))
            if config.hits + config.misses
            else None,
        },
        "cpu_seconds": {key: rounded(value) for key, value in config.cpu.items()},
        "errors": len(errors),
        "first_errors": [o.error for o in errors[:5]],
    }


def run(ctx: Context) -> CaseResult:
    size = sizes(ctx)
    rows: list[Row] = []
    details: dict[str, Any] = {"sizes": asdict(size), "write_deck": list(WRITE_DECK)}
    configs, extra = _sqlite(ctx, size)
    rows += _rows(configs, size, "SQLite")
    details["sqlite"] = {c.name: _config_details(c) for c in configs} | extra
    try:
        configs, extra = _postgres(ctx, size)
    except peer.Unavailable as why:
        print(f"[{NAME}] PostgreSQL unavailable ({why}): its rows are left out", flush=True)
        rows.append(unavailable(NAME, "traffic on PostgreSQL, two instances", str(why)))
        details["postgres_unavailable"] = str(why)
    else:
        rows += _rows(configs, size, "PostgreSQL x2")
        details["postgres"] = {c.name: _config_details(c) for c in configs} | extra
    return CaseResult(rows, details)


if __name__ == "__main__":
    print(json.dumps(run_async(_prepare_postgres(sys.argv[1], Sizes(**json.loads(sys.argv[2]))))))
