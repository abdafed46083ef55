"""Case 3: subscription fan-out, N graphql-transport-ws subscribers, one event each.

Events are published straight into keybin's pub/sub (app.state.pubsub, through a bench-only
route in the server), i.e. what the message tail does for each committed message; keybin
then reads the messages (one statement for the burst), checks each is its subscriber's and
sends each a `next` frame (schema/fast/fanout.py). Floor: raw Starlette WebSockets sending a frame
of the same size from a queue per connection."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench import load, seed, stats
from bench.cases.nested import global_id, keybin_server
from bench.context import ROOT, CaseResult, Context, run_async
from bench.report import Row
from bench.servers import HOST, Server, bench_python, free_port

NAME = "fanout"
SUBSCRIPTION = "subscription Live { messageAdded { id kind title body createdAt readAt } }"
PROTOCOL = "graphql-transport-ws"


@dataclass
class Round:
    expected: int
    start: float = 0.0
    arrivals: list[float] = field(default_factory=list)
    wrong: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def arrive(self, ok: bool) -> None:
        self.arrivals.append(time.perf_counter() - self.start)
        self.wrong += not ok
        if len(self.arrivals) >= self.expected:
            self.done.set()


async def subscribe(url: str, token: str | None) -> ClientConnection:
    """One client connection, signed in with `token` and subscribed to messageAdded; without a
    token only opened (the raw WebSocket floors speak no protocol)."""
    ws = await connect(
        url,
        subprotocols=[Subprotocol(PROTOCOL)],
        open_timeout=60,
        ping_interval=None,
        compression=None,
        max_queue=16,
    )
    if token is not None:
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert ack["type"] == "connection_ack", ack
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
        )
    return ws


class Subscribers:
    """N client connections, each with a reader task reporting into the current round."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connections: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []
        self.round: Round | None = None
        self.expected_ids: list[str | None] = []
        self.sample_frame = ""

    async def open(self, tokens: Sequence[str | None]) -> None:
        gate = asyncio.Semaphore(50)  # a burst of 1,000 handshakes would overflow the backlog

        async def one(index: int, token: str | None) -> None:
            async with gate:
                ws = await subscribe(self.url, token)
                self.connections[index] = ws
                self.readers[index] = asyncio.create_task(self._read(index, ws))

        self.connections = [None] * len(tokens)  # type: ignore[list-item]
        self.readers = [None] * len(tokens)  # type: ignore[list-item]
        self.expected_ids = [None] * len(tokens)
        async with asyncio.timeout(180):
            await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))

    async def _read(self, index: int, ws: ClientConnection) -> None:
        async for frame in ws:
            current = self.round
            if current is None:
                continue
            text = frame if isinstance(frame, str) else frame.decode()
            expected = self.expected_ids[index]
            ok = True
            if expected is not None:
                message = json.loads(text)
                ok = (
                    message.get("type") == "next"
                    and message["payload"]["data"]["messageAdded"]["id"] == expected
                )
                if not self.sample_frame:
                    self.sample_frame = text
            current.arrive(ok)

    async def close(self) -> None:
        gate = asyncio.Semaphore(100)

        async def one(ws: ClientConnection) -> None:
            async with gate:
                await ws.close()

        async with asyncio.timeout(120):
            await asyncio.gather(*(one(ws) for ws in self.connections if ws is not None))
            for task in self.readers:
                if task is not None:
                    task.cancel()
            await asyncio.gather(
                *(t for t in self.readers if t is not None), return_exceptions=True
            )


async def wait_subscribed(port: int, count: int) -> None:
    raw = f"GET /__bench/subscribers HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = json.loads((await load.request_once(HOST, port, raw)).body)
        if body["count"] >= count:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"only {body['count']} of {count} subscribed")


async def _round(subscribers: Subscribers, port: int, payload: dict[str, Any], n: int) -> Round:
    current = Round(expected=n)
    raw = load.post_request(HOST, port, "/__bench/publish", json.dumps(payload).encode(), {})
    subscribers.round = current
    # The client's own collector stays out of the round: by this case the bench process
    # holds the earlier cases' data, and a pause here would be counted against the server.
    gc.disable()
    try:
        current.start = time.perf_counter()
        response = await load.request_once(HOST, port, raw)
        assert response.status == 200, response.body
        with contextlib.suppress(TimeoutError):  # a shortfall is reported, not raised
            await asyncio.wait_for(current.done.wait(), 60)
    finally:
        gc.enable()
    subscribers.round = None
    await asyncio.sleep(0.2)  # stragglers of this round must not count in the next
    return current


@dataclass
class Side:
    rounds: list[Round]
    rss_before: int
    rss_after: int
    connections: int
    # Once every round was delivered: what a subscriber keeps between events.
    rss_after_events: int = 0

    @property
    def all_ms(self) -> float:
        return stats.median([max(r.arrivals, default=float("nan")) * 1000 for r in self.rounds])

    @property
    def p99_ms(self) -> float:
        return stats.median([stats.percentile(r.arrivals, 99) * 1000 for r in self.rounds])

    @property
    def per_connection_kib(self) -> float:
        return (self.rss_after - self.rss_before) / self.connections / 1024

    @property
    def per_connection_after_events_kib(self) -> float:
        return (self.rss_after_events - self.rss_before) / self.connections / 1024

    def summary(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "rounds": [
                {
                    "delivered": len(r.arrivals),
                    "wrong": r.wrong,
                    "all_ms": round(max(r.arrivals, default=0) * 1000, 2),
                    "p50_ms": round(stats.median(r.arrivals) * 1000, 2) if r.arrivals else None,
                    "p99_ms": round(stats.percentile(r.arrivals, 99) * 1000, 2)
                    if r.arrivals
                    else None,
                }
                for r in self.rounds
            ],
            "rss_before_bytes": self.rss_before,
            "rss_after_bytes": self.rss_after,
            "rss_per_connection_kib": round(self.per_connection_kib, 1),
            "rss_after_events_bytes": self.rss_after_events,
            "rss_per_connection_after_events_kib": round(self.per_connection_after_events_kib, 1),
        }


async def _seed(url: str, n: int, rounds: int) -> tuple[list[int], list[str], list[dict[int, int]]]:
    async with seed.orm(url):
        accounts = await seed.contractors("fan", n)
        tokens = await seed.sessions(accounts)
        messages = [await seed.one_message_each(accounts, f"round {r}") for r in range(rounds)]
    return accounts, tokens, messages


def run(ctx: Context) -> CaseResult:
    n = ctx.size(1000, 200, 20)
    # Medians of several rounds: one full collection in the server (about 0.2 s with 1,000
    # connections, every tenth round or so) must not decide the result.
    rounds = ctx.size(7, 3, 1)
    url = ctx.database("fanout")
    accounts, tokens, messages = run_async(_seed(url, n, rounds))
    with keybin_server(ctx, url, "keybin-fanout") as server:

        async def keybin_side() -> tuple[Side, str]:
            # One connection first, so start-up allocations do not count per connection.
            warm = Subscribers(f"ws://{HOST}:{server.port}/graphql")
            await warm.open([tokens[0]])
            await wait_subscribed(server.port, 1)
            await warm.close()
            await asyncio.sleep(0.3)
            before = server.rss()
            subscribers = Subscribers(f"ws://{HOST}:{server.port}/graphql")
            await subscribers.open(tokens)
            await wait_subscribed(server.port, n)
            after = server.rss()
            done = []
            for r in range(rounds):
                events = [[a, messages[r][a]] for a in accounts]
                subscribers.expected_ids = [global_id("Message", messages[r][a]) for a in accounts]
                done.append(await _round(subscribers, server.port, {"events": events}, n))
            after_events = server.rss()
            await subscribers.close()
            return Side(done, before, after, n, after_events), subscribers.sample_frame

        ours, frame = run_async(keybin_side())
    frame_file = ctx.workdir / "fanout-frame.json"
    frame_file.write_text(frame)
    port = free_port()
    floor = Server(
        "websocket-floor",
        bench_python(
            "bench.serve", "websocket-floor", "--port", str(port), "--file", str(frame_file)
        ),
        port,
        ctx.log_dir,
        {"PYTHONPATH": str(ROOT)},
        ctx.server_cpu,
        cwd=ROOT,
    )
    with floor:

        async def floor_side() -> Side:
            warm = Subscribers(f"ws://{HOST}:{floor.port}/graphql")
            await warm.open([None])
            await wait_subscribed(floor.port, 1)
            await warm.close()
            await asyncio.sleep(0.3)
            before = floor.rss()
            subscribers = Subscribers(f"ws://{HOST}:{floor.port}/graphql")
            await subscribers.open([None] * n)
            await wait_subscribed(floor.port, n)
            after = floor.rss()
            done = [await _round(subscribers, floor.port, {}, n) for _ in range(rounds)]
            after_events = floor.rss()
            await subscribers.close()
            return Side(done, before, after, n, after_events)

        theirs = run_async(floor_side())
    shortfall = sum(n - len(r.arrivals) + r.wrong for r in ours.rounds + theirs.rounds)
    note = f"{shortfall} missing or wrong" if shortfall else ""
    return CaseResult(
        [
            Row(
                NAME,
                f"time until all {n} have it",
                "ms",
                ours.all_ms,
                theirs.all_ms,
                "raw WebSockets",
                "at_most",
                1.5,
                note=note,
            ),
            Row(
                NAME,
                "p99 delivery",
                "ms",
                ours.p99_ms,
                theirs.p99_ms,
                "raw WebSockets",
                "at_most",
                2.0,
            ),
            Row(
                NAME,
                "server memory per connection",
                "KiB",
                ours.per_connection_kib,
                theirs.per_connection_kib,
                "raw WebSockets",
                "at_most",
                1.3,
            ),
            Row(
                NAME,
                "the same, after the events",
                "KiB",
                ours.per_connection_after_events_kib,
                theirs.per_connection_after_events_kib,
                "raw WebSockets",
                "at_most",
                1.3,
            ),
        ],
        {
            "published_through": "app.state.pubsub.publish (the message tail's step)",
            "frame_bytes": len(frame.encode()),
            "keybin": ours.summary(),
            "floor": theirs.summary(),
        },
    )
