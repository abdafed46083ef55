"""Case 7: live Message Center events, from a grant's answer to its last subscriber's frame.

An agent's app sends grantAccess over HTTP; the grantee's message leaves when its transaction
commits (notify/live_events.py) for its graphql-transport-ws subscribers (schema/fast/fanout.py).
A single grant reaches one contractor's 1,000 connections; a burst of 50 grants at once
reaches 50 contractors with 20 connections each, among invitations to new addresses (mail).
Each round goes in turn to two servers alike but for the mail relay: one answers, the other
accepts connections and never says a word. On SQLite (one instance) and on PostgreSQL (two
instances, the subscribers split between them, the grants sent to the first). Floor: raw
Starlette WebSockets sending frames of the same size, timed from a publish request's answer."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from websockets.asyncio.client import ClientConnection

from bench import load, seed, stats
from bench.cases import peer
from bench.cases.fanout import subscribe, wait_subscribed
from bench.cases.nested import global_id, keybin_server
from bench.context import ROOT, CaseResult, Context, run_async
from bench.report import Row, unavailable
from bench.servers import HOST, Server, bench_python, free_port, running
from resolvers.grants import local_time

NAME = "live"
PIN = "2468"
GRANT = """
mutation Grant($input: GrantAccessInput!) {
  grantAccess(input: $input) { grant { id } invitationSent userErrors { code message } }
}
"""
# The email lane's deliveries at once (KEYBIN_OUTBOX_EMAIL_CONCURRENCY's default): more
# invitations than that before the rounds keep a hanging relay's lane full, with more waiting.
EMAIL_LANE = 4
SINGLE = -1  # the group of the connections every single grant reaches
SETTLE = 0.1  # after a round: what the server still does for it stays out of the next
DATABASES = ("keybin_live_answering", "keybin_live_hanging")


@dataclass(frozen=True)
class Sizes:
    subscribers: int  # reached by one single grant; by one burst, in all
    burst: int  # grants at once, each to its own contractor
    singles: int  # single-grant rounds per server
    bursts: int  # burst rounds per server
    invitations: int  # grants to new addresses (mail) in each burst
    stall: int  # invitations before the rounds

    @property
    def per_grantee(self) -> int:
        return self.subscribers // self.burst


def sizes(ctx: Context) -> Sizes:
    return Sizes(
        subscribers=ctx.size(1000, 200, 20),
        burst=ctx.size(50, 8, 2),
        singles=ctx.size(20, 3, 2),
        bursts=ctx.size(4, 1, 1),
        invitations=ctx.size(5, 1, 1),
        stall=ctx.size(2 * EMAIL_LANE, EMAIL_LANE + 1, 2),
    )


@dataclass(frozen=True)
class Seeded:
    """Who signs in: agents (token, listing id) with a BLE lockbox each; the contractor every
    single grant goes to; one contractor per grant of a burst. Emails are proven."""

    agents: list[tuple[str, str]]
    single: tuple[str, str]  # (token, email)
    grantees: list[tuple[str, str]]


@dataclass(eq=False)  # each one itself, in sets
class Delivery:
    """One grant's message on its way to `expected` connections."""

    expected: int
    marker: str  # what only this grant's frame carries (its window)
    answered: float = float("nan")
    asked: float = float("nan")
    arrivals: list[float] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    wrong: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    frame: str = ""  # the first one

    def arrive(self, index: int, frame: str) -> None:
        at = time.perf_counter()
        if index in self.seen or self.marker not in frame:
            self.wrong += 1
            return
        if not self.seen:
            self.frame = frame
        self.seen.add(index)
        self.arrivals.append(at)
        if len(self.arrivals) >= self.expected:
            self.done.set()

    @property
    def ms(self) -> float | None:
        """From the answer to the last connection's frame; None when some never had it. The
        message leaves at commit, the answer after it: every frame may come first (then 0)."""
        if len(self.arrivals) < self.expected:
            return None
        return max(0.0, (max(self.arrivals) - self.answered) * 1000)

    @property
    def before_answer(self) -> bool:
        return len(self.arrivals) == self.expected and max(self.arrivals) < self.answered

    @property
    def answer_ms(self) -> float:
        return (self.answered - self.asked) * 1000

    @property
    def since_created_ms(self) -> float | None:
        """From the message's createdAt (set in its transaction, just before the commit, by
        the server's clock: this machine's) to the last frame; the answer plays no part."""
        if len(self.arrivals) < self.expected or not self.frame:
            return None
        created = json.loads(self.frame)["payload"]["data"]["messageAdded"]["createdAt"]
        last = time.time() - time.perf_counter() + max(self.arrivals)
        return (last - datetime.fromisoformat(created).timestamp()) * 1000


class Sockets:
    """Client connections in groups (one grantee's each); frames go to the group's delivery."""

    def __init__(self) -> None:
        self.connections: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []
        self.waiting: dict[int, Delivery] = {}
        self.strays = 0  # frames outside any round
        self.sample = ""

    async def open(self, entries: Sequence[tuple[str, str | None, int]]) -> None:
        """(url, token, group) per connection; opened 50 at a time, as the fan-out case does."""
        gate = asyncio.Semaphore(50)

        async def one(url: str, token: str | None, group: int) -> None:
            async with gate:
                ws = await subscribe(url, token)
            index = len(self.connections)
            self.connections.append(ws)
            self.readers.append(asyncio.create_task(self._read(index, group, ws)))

        async with asyncio.timeout(180):
            await asyncio.gather(*(one(*entry) for entry in entries))

    async def _read(self, index: int, group: int, ws: ClientConnection) -> None:
        async for frame in ws:
            text = frame if isinstance(frame, str) else frame.decode()
            delivery = self.waiting.get(group)
            if delivery is None:
                self.strays += 1
                continue
            if not self.sample:
                self.sample = text
            delivery.arrive(index, text)

    async def close(self) -> None:
        gate = asyncio.Semaphore(100)

        async def one(ws: ClientConnection) -> None:
            async with gate:
                await ws.close()

        async with asyncio.timeout(120):
            await asyncio.gather(*(one(ws) for ws in self.connections))
            for task in self.readers:
                task.cancel()
            await asyncio.gather(*self.readers, return_exceptions=True)


@dataclass(frozen=True)
class Window:
    starts: datetime
    ends: datetime

    @property
    def marker(self) -> str:
        """The grantee's message names its window (resolvers/grants.py); no other does."""
        return f"from {local_time(self.starts, 'UTC')} to {local_time(self.ends, 'UTC')}"


class Windows:
    """Each grant starts a minute after the one before, so its message names its own window."""

    def __init__(self) -> None:
        self.base = seed.now().replace(second=0) + timedelta(hours=1)
        self.count = 0
        self.invitees = 0

    def next(self) -> Window:
        starts = self.base + timedelta(minutes=self.count)
        self.count += 1
        return Window(starts, starts + timedelta(hours=2))

    def invitee(self) -> str:
        self.invitees += 1
        return f"invitee{self.invitees}@example.net"


@dataclass
class Side:
    """keybin behind one mail relay (its instances; grants go to the first), or the floor:
    raw WebSockets, where a publish request stands for each grant."""

    name: str
    servers: list[Server]
    floor: bool = False
    sockets: Sockets = field(default_factory=Sockets)
    singles: list[Delivery] = field(default_factory=list)
    bursts: list[Delivery] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.servers[0].port

    def url(self, index: int, group: int) -> str:
        """Connections take the instances in turn; the floor's say their group."""
        url = f"ws://{HOST}:{self.servers[index % len(self.servers)].port}/graphql"
        return f"{url}?group={group}" if self.floor else url


async def _grant(
    port: int, agent: tuple[str, str], email: str, window: Window
) -> tuple[float, float, dict[str, Any]]:
    """grantAccess as an agent's app sends it: (asked, answered, its payload)."""
    token, listing = agent
    variables = {
        "input": {
            "listingId": listing,
            "granteeEmail": email,
            "startsAt": window.starts.isoformat(),
            "endsAt": window.ends.isoformat(),
            "pin": PIN,
        }
    }
    raw = load.graphql_request(HOST, port, GRANT, variables, token)
    asked = time.perf_counter()
    # Longer than load.request_once allows: in a burst, the last answer waits for every
    # PIN check before it.
    async with asyncio.timeout(120):
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(raw)
            response = await load.read_response(reader)
            answered = time.perf_counter()
        finally:
            writer.close()
    body = json.loads(response.body)
    payload: dict[str, Any] | None = (body.get("data") or {}).get("grantAccess")
    if response.status != 200 or payload is None or payload["userErrors"] or not payload["grant"]:
        raise RuntimeError(f"grantAccess failed: {response.status} {response.body[:300]!r}")
    return asked, answered, payload


async def _invite(port: int, agent: tuple[str, str], email: str, window: Window) -> None:
    _, _, payload = await _grant(port, agent, email, window)
    if not payload["invitationSent"]:
        raise RuntimeError("a grant to a new address sent no invitation")


async def _granted(
    port: int, agent: tuple[str, str], email: str, window: Window, delivery: Delivery
) -> None:
    delivery.asked, delivery.answered, payload = await _grant(port, agent, email, window)
    if payload["invitationSent"]:
        raise RuntimeError(f"{email} got an invitation: its address is not proven")


async def _round(
    sockets: Sockets, deliveries: dict[int, Delivery], requests: Sequence[Awaitable[None]]
) -> None:
    """Send the requests at once; wait until every delivery is complete (or 60 s)."""
    sockets.waiting = deliveries
    # The client's own collector stays out of the round (see the fan-out case).
    gc.disable()
    try:
        await asyncio.gather(*requests)
        with contextlib.suppress(TimeoutError):  # a shortfall is reported, not raised
            async with asyncio.timeout(60):
                for delivery in set(deliveries.values()):
                    await delivery.done.wait()
    finally:
        gc.enable()
    sockets.waiting = {}
    await asyncio.sleep(SETTLE)


async def _single(side: Side, seeded: Seeded, windows: Windows, n: int) -> None:
    window = windows.next()
    delivery = Delivery(n, window.marker)
    grant = _granted(side.port, seeded.agents[0], seeded.single[1], window, delivery)
    await _round(side.sockets, {SINGLE: delivery}, [grant])
    side.singles.append(delivery)


async def _burst(side: Side, seeded: Seeded, windows: Windows, size: Sizes) -> None:
    agents = seeded.agents
    # Invitations first: their mail is queued while the burst's grants are still coming.
    requests = [
        _invite(side.port, agents[i % len(agents)], windows.invitee(), windows.next())
        for i in range(size.invitations)
    ]
    deliveries: dict[int, Delivery] = {}
    for g, (_, email) in enumerate(seeded.grantees):
        window = windows.next()
        deliveries[g] = Delivery(size.per_grantee, window.marker)
        requests.append(_granted(side.port, agents[g], email, window, deliveries[g]))
    await _round(side.sockets, deliveries, requests)
    side.bursts.extend(deliveries.values())


async def _publish(port: int, group: int | None, frame: str, delivery: Delivery) -> None:
    path = "/__bench/publish" + (f"?group={group}" if group is not None else "")
    raw = load.post_request(HOST, port, path, json.dumps({"frame": frame}).encode(), {})
    delivery.asked = time.perf_counter()
    response = await load.request_once(HOST, port, raw)
    delivery.answered = time.perf_counter()
    assert response.status == 200, response.body


async def _floor_single(side: Side, frame: str, size: Sizes) -> None:
    """Every connection; one delivery whatever group a frame comes to."""
    delivery = Delivery(size.subscribers, "")
    groups = dict.fromkeys(range(size.burst), delivery)
    await _round(side.sockets, groups, [_publish(side.port, None, frame, delivery)])
    side.singles.append(delivery)


async def _floor_burst(side: Side, frame: str, size: Sizes) -> None:
    deliveries = {g: Delivery(size.per_grantee, "") for g in range(size.burst)}
    publish = [_publish(side.port, g, frame, d) for g, d in deliveries.items()]
    await _round(side.sockets, deliveries, publish)
    side.bursts.extend(deliveries.values())


async def _all_subscribed(side: Side, *opened: list[tuple[str, str | None, int]]) -> None:
    """Until each instance counts the connections opened to it (an odd group splits unevenly
    between two instances)."""
    for server in side.servers:
        at = f":{server.port}/"
        await wait_subscribed(
            server.port, sum(at in url for group in opened for url, _, _ in group)
        )


async def _measure(sides: list[Side], seeded: Seeded, size: Sizes) -> dict[str, float]:
    """Every side gets the same rounds, in turn (the order reversed every other round), so
    the machine's ups and downs fall on all alike: keybin behind each relay, and the floor,
    which sends the frame keybin sent. Returns each phase's seconds."""
    windows = Windows()
    n, per = size.subscribers, size.per_grantee
    keybin = [side for side in sides if not side.floor]
    took: dict[str, float] = {}
    clock = time.monotonic()

    def phase(name: str) -> None:
        nonlocal clock
        took[name] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    def frame() -> str:
        return next(side.sockets.sample for side in keybin if side.sockets.sample)

    agent = seeded.agents[0]
    await asyncio.gather(
        *(
            _invite(side.port, agent, windows.invitee(), windows.next())
            for side in keybin
            for _ in range(size.stall)
        )
    )
    phase("invitations before the rounds")
    entries: list[tuple[str, str | None, int]]
    for side in sides:
        if side.floor:  # its connections in their groups from the start
            entries = [(side.url(0, g), None, g) for g in range(size.burst) for _ in range(per)]
        else:
            entries = [(side.url(i, SINGLE), seeded.single[0], SINGLE) for i in range(n)]
        await side.sockets.open(entries)
        await _all_subscribed(side, entries, [])
    phase("single grant's connections opened")
    for r in range(size.singles):
        for side in sides if r % 2 == 0 else sides[::-1]:
            if side.floor:
                await _floor_single(side, frame(), size)
            else:
                await _single(side, seeded, windows, n)
    phase("single grants")
    # The single grant's connections stay open, idle, through the bursts.
    for side in keybin:
        singles = [(side.url(i, SINGLE), None, SINGLE) for i in range(n)]
        entries = [
            (side.url(i, g), token, g)
            for g, (token, _) in enumerate(seeded.grantees)
            for i in range(per)
        ]
        await side.sockets.open(entries)
        await _all_subscribed(side, singles, entries)
    phase("burst grantees' connections opened")
    for r in range(size.bursts):
        for side in sides if r % 2 == 0 else sides[::-1]:
            if side.floor:
                await _floor_burst(side, frame(), size)
            else:
                await _burst(side, seeded, windows, size)
    phase("bursts")
    for side in sides:
        await side.sockets.close()
    phase("connections closed")
    return took


@dataclass
class Measured:
    label: str
    answering: Side
    hanging: Side
    floor: Side
    mail: dict[str, dict[str, int]]
    seconds: dict[str, float]


def _relays(ctx: Context) -> tuple[Server, Server]:
    """Outside the server's CPU, like the load client: they stand for the world outside."""
    servers = []
    for hang in (False, True):
        port = free_port()
        argv = bench_python("bench.serve", "mail-relay", "--port", str(port))
        name = "relay-hanging" if hang else "relay-answering"
        servers.append(
            Server(
                name,
                argv + (["--hang"] if hang else []),
                port,
                ctx.log_dir,
                {"PYTHONPATH": str(ROOT)},
                ctx.client_cpu,
                ready_path=None,
                cwd=ROOT,
            )
        )
    return servers[0], servers[1]


def _relay_env(relay: Server) -> dict[str, str]:
    return {
        "SMTP_HOST": HOST,
        "SMTP_PORT": str(relay.port),
        # One agent sends every single grant: its PIN checks must not be refused.
        "RATE_LIMIT_PER_ACCOUNT_PER_MINUTE": "1000000",
    }


def prepare(database_url: str, grantees: int) -> Seeded:
    """SQLite is seeded here; PostgreSQL in a child process, since Tortoise keeps SQL compiled
    for the earlier cases' SQLite (see the peer case), which makes both sides' databases."""
    if not database_url.startswith("postgres"):
        return _seeded(run_async(_seed(database_url, grantees)))
    done = subprocess.run(
        [sys.executable, "-m", "bench.cases.live", database_url, str(grantees)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed: {done.stderr[-2000:]}")
    return _seeded(json.loads(done.stdout.strip().splitlines()[-1]))


def _seeded(found: dict[str, Any]) -> Seeded:
    return Seeded(
        agents=[(token, listing) for token, listing in found["agents"]],
        single=(found["single"][0], found["single"][1]),
        grantees=[(token, email) for token, email in found["grantees"]],
    )


async def _seed(database_url: str, grantees: int) -> dict[str, Any]:
    from core.security import hash_secret
    from models.accounts import Account

    async with seed.orm(database_url):
        contractors = await seed.contractors("live", grantees + 1)
        # Proven addresses: a grant to an unproven one would go out as an invitation.
        await Account.filter(id__in=contractors).update(email_verified=True)
        tokens = await seed.sessions(contractors)
        emails = [f"live.contractor{i}@example.com" for i in range(grantees + 1)]
        agents, agent_ids = [], []
        for i in range(grantees):
            portfolio = await seed.portfolio(f"live{i}", 1, 0, contractors)
            agents.append([portfolio.token, global_id("Listing", portfolio.listing_ids[0])])
            agent_ids.append(portfolio.agent_id)
        await Account.filter(id__in=agent_ids).update(pin_hash=hash_secret(PIN))
    return {
        "agents": agents,
        "single": [tokens[0], emails[0]],
        "grantees": [[t, e] for t, e in zip(tokens[1:], emails[1:], strict=True)],
    }


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _admin(base: str, *statements: str) -> None:
    admin = await asyncpg.connect(base.replace("postgres://", "postgresql://", 1))
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()


async def _prepare_postgres(base: str, grantees: int) -> dict[str, Any]:
    first, second = DATABASES
    await _admin(
        base,
        f'DROP DATABASE IF EXISTS "{first}" WITH (FORCE)',
        f'DROP DATABASE IF EXISTS "{second}" WITH (FORCE)',
        f'CREATE DATABASE "{first}"',
    )
    url = _with_database(base, first)
    await seed.migrate(url)
    seeded = await _seed(url, grantees)
    # The second side's database is the first's copy: the same accounts and tokens.
    await _admin(base, f'CREATE DATABASE "{second}" TEMPLATE "{first}"')
    return seeded


def _copy_sqlite(url: str, name: str) -> str:
    source = Path(url.removeprefix("sqlite://"))
    target = source.with_name(f"{name}.sqlite3")
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")
    return f"sqlite://{target}"


def _mail_sqlite(url: str) -> dict[str, int]:
    from core.sqlite import driver as sqlite3

    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"))) as conn:
        rows = conn.execute(
            "SELECT status, COUNT(*), SUM(attempts) FROM outbox WHERE channel = 'EMAIL' "
            "GROUP BY status"
        ).fetchall()
    return _mail_summary(rows)


async def _mail(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        rows = await conn.fetch(
            "SELECT status, COUNT(*), SUM(attempts) FROM outbox WHERE channel = 'EMAIL' "
            "GROUP BY status"
        )
    finally:
        await conn.close()
    return _mail_summary([tuple(row) for row in rows])


def _mail_summary(rows: Sequence[tuple[Any, ...]]) -> dict[str, int]:
    """The invitations' mail at the end: how many sent, still pending, and attempts made."""
    summary = {"SENT": 0, "PENDING": 0, "DEAD": 0, "attempts": 0}
    for status, count, attempts in rows:
        summary[str(status)] = int(count)
        summary["attempts"] += int(attempts or 0)
    return summary


def _floor_side(ctx: Context) -> Side:
    port = free_port()
    argv = bench_python("bench.serve", "websocket-floor", "--port", str(port))
    server = Server(
        "live-floor", argv, port, ctx.log_dir, {"PYTHONPATH": str(ROOT)}, ctx.server_cpu, cwd=ROOT
    )
    return Side("raw WebSockets", [server], floor=True)


def _sqlite(ctx: Context, size: Sizes, relays: tuple[Server, Server]) -> Measured:
    begin = time.monotonic()
    url = ctx.database("live-answering")
    seeded = prepare(url, size.burst)
    urls = (url, _copy_sqlite(url, "live-hanging"))
    seconds = {"seeded": round(time.monotonic() - begin, 1)}
    sides = [
        Side(f"relay {name}", [keybin_server(ctx, u, f"keybin-live-{name}", env=_relay_env(r))])
        for u, r, name in zip(urls, relays, ("answering", "hanging"), strict=True)
    ]
    sides.append(_floor_side(ctx))
    begin = time.monotonic()
    with running(*(server for side in sides for server in side.servers)):
        seconds["servers started"] = round(time.monotonic() - begin, 1)
        seconds |= run_async(_measure(sides, seeded, size))
        mail = {"answering": _mail_sqlite(urls[0]), "hanging": _mail_sqlite(urls[1])}
        _kill_hung(sides[1])
    return Measured("SQLite", sides[0], sides[1], sides[2], mail, seconds)


def _postgres(ctx: Context, size: Sizes, relays: tuple[Server, Server]) -> Measured:
    """Two instances per side on one database; PostgreSQL on the servers' CPU too."""
    begin = time.monotonic()
    with peer.cluster(ctx.server_cpu) as base:
        seeded = prepare(base, size.burst)
        seconds = {"cluster started and seeded": round(time.monotonic() - begin, 1)}
        urls = [_with_database(base, name) for name in DATABASES]
        sides = [
            Side(
                f"relay {name}",
                [
                    keybin_server(ctx, u, f"keybin-live-pg-{name}-{i}", env=_relay_env(r))
                    for i in (1, 2)
                ],
            )
            for u, r, name in zip(urls, relays, ("answering", "hanging"), strict=True)
        ]
        sides.append(_floor_side(ctx))
        begin = time.monotonic()
        with running(*(server for side in sides for server in side.servers)):
            seconds["servers started"] = round(time.monotonic() - begin, 1)
            seconds |= run_async(_measure(sides, seeded, size))
            mail = {"answering": run_async(_mail(urls[0])), "hanging": run_async(_mail(urls[1]))}
            _kill_hung(sides[1])
    return Measured("PostgreSQL x2", sides[0], sides[1], sides[2], mail, seconds)


def _kill_hung(side: Side) -> None:
    """Its deliveries wait on a relay that never answers: a graceful stop would give them
    seconds (notify/dispatcher.py) for nothing. What they did is read by then."""
    for server in side.servers:
        server.kill()


def _ms(deliveries: Sequence[Delivery]) -> list[float]:
    return [ms for d in deliveries if (ms := d.ms) is not None]


def _since_created(deliveries: Sequence[Delivery]) -> list[float]:
    return [ms for d in deliveries if (ms := d.since_created_ms) is not None]


def _pct(deliveries: Sequence[Delivery], pct: float, created: bool = False) -> float | None:
    values = _since_created(deliveries) if created else _ms(deliveries)
    return stats.percentile(values, pct) if values else None


def _short(deliveries: Sequence[Delivery]) -> str:
    missing = sum(d.expected - len(d.arrivals) for d in deliveries)
    wrong = sum(d.wrong for d in deliveries)
    parts = [f"{missing} frames missing"] if missing else []
    return ", ".join(parts + ([f"{wrong} wrong"] if wrong else []))


def _rows(measured: Measured, size: Sizes) -> list[Row]:
    ours, hung, floor, where = measured.answering, measured.hanging, measured.floor, measured.label
    single = f"1 grant -> {size.subscribers:,} subscribers"
    burst = f"{size.burst} grants at once -> {size.per_grantee} each"
    raw = "raw WebSockets"
    rows = []
    for what, mine, theirs, bound in (
        (single, ours.singles, floor.singles, 50.0),
        (burst, ours.bursts, floor.bursts, 250.0),
    ):
        note = _short(mine)
        rows.append(
            Row(
                NAME,
                f"{what}, p50 ({where})",
                "ms",
                _pct(mine, 50),
                _pct(theirs, 50),
                raw,
                note=note,
            )
        )
        rows.append(
            Row(
                NAME,
                f"{what}, p99 ({where})",
                "ms",
                _pct(mine, 99),
                _pct(theirs, 99),
                raw,
                "below",
                bound,
                note=note,
            )
        )
    # Timed from the message's creation: on PostgreSQL an instance may send its frames before
    # writing the answer, and "from the answer" then reads 0 in some rounds and not others.
    for what, mine, theirs in (
        (single, hung.singles, ours.singles),
        (burst, hung.bursts, ours.bursts),
    ):
        p99 = _pct(mine, 99, created=True), _pct(theirs, 99, created=True)
        note = f"p99 {p99[0]:.1f} vs {p99[1]:.1f} ms" if None not in p99 else ""
        note = ", ".join(n for n in (note, _short(mine)) if n)
        rows.append(
            Row(
                NAME,
                f"{what}, relay hanging, p50 from creation ({where})",
                "ms",
                _pct(mine, 50, created=True),
                _pct(theirs, 50, created=True),
                "relay answering",
                "at_most",
                1.2,
                note=note,
            )
        )
    return rows


def _rounded(value: float) -> float:
    return round(value, 2)


def _side_details(side: Side) -> dict[str, Any]:
    def summary(deliveries: list[Delivery]) -> dict[str, Any]:
        values = _ms(deliveries)
        answers = [d.answer_ms for d in deliveries]
        created = _since_created(deliveries)
        return {
            "grants": len(deliveries),
            "complete": len(values),
            "wrong_frames": sum(d.wrong for d in deliveries),
            "p50_ms": round(stats.percentile(values, 50), 2) if values else None,
            "p99_ms": round(stats.percentile(values, 99), 2) if values else None,
            "max_ms": round(max(values), 2) if values else None,
            "all_before_the_answer": sum(d.before_answer for d in deliveries),
            "last_after_answer_ms": [round(v, 2) for v in values],
            "since_created_p50_ms": _rounded(stats.percentile(created, 50)) if created else None,
            "since_created_p99_ms": _rounded(stats.percentile(created, 99)) if created else None,
            # From the request to its answer: in a burst, the PIN checks queue up here.
            "answer_p50_ms": round(stats.percentile(answers, 50), 1) if answers else None,
            "answer_max_ms": round(max(answers), 1) if answers else None,
        }

    return {
        "instances": len(side.servers),
        "single": summary(side.singles),
        "burst": summary(side.bursts),
        "frames_outside_rounds": side.sockets.strays,
    }


def _details(measured: Measured) -> dict[str, Any]:
    floor = measured.floor
    return {
        "relay_answering": _side_details(measured.answering),
        "relay_hanging": _side_details(measured.hanging),
        "raw_websockets": {
            "frame_bytes": len(floor.sockets.sample.encode()),
            "frame": floor.sockets.sample,
            "single": {"p50_ms": _pct(floor.singles, 50), "p99_ms": _pct(floor.singles, 99)},
            "burst": {"p50_ms": _pct(floor.bursts, 50), "p99_ms": _pct(floor.bursts, 99)},
        },
        # The invitations' mail at the end: sent through the answering relay; pending and
        # tried again and again behind the hanging one.
        "mail": measured.mail,
        "seconds": measured.seconds,
    }


def run(ctx: Context) -> CaseResult:
    size = sizes(ctx)
    relays = _relays(ctx)
    rows: list[Row] = []
    details: dict[str, Any] = {"sizes": asdict(size)}
    with running(*relays):
        measured = _sqlite(ctx, size, relays)
        rows += _rows(measured, size)
        details["sqlite"] = _details(measured)
        try:
            measured = _postgres(ctx, size, relays)
        except peer.Unavailable as why:
            print(f"[{NAME}] PostgreSQL unavailable ({why}): its rows are left out", flush=True)
            rows.append(unavailable(NAME, "live on PostgreSQL, two instances", str(why)))
            details["postgres_unavailable"] = str(why)
        else:
            rows += _rows(measured, size)
            details["postgres"] = _details(measured)
    return CaseResult(rows, details)


if __name__ == "__main__":
    print(json.dumps(run_async(_prepare_postgres(sys.argv[1], int(sys.argv[2])))))
