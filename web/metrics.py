"""What an operator watches: one app's Prometheus metrics, and `/metrics`, which serves them
to a scraper holding METRICS_TOKEN."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.types import ExecutionContext
from tortoise import connections
from tortoise.exceptions import OperationalError

from core import clock
from models.enums import OutboxChannel
from notify.metrics import DeliveryCounters

log = logging.getLogger("keybin.metrics")

# No `_created` series beside every counter and histogram: a scraper has no use for when a
# process started counting, and they double what it stores.
disable_created_metrics()  # type: ignore[no-untyped-call]

OPERATIONS = ("query", "mutation", "subscription", "invalid")
# From a kept answer (about 0.1 ms) to a request stuck behind a busy database.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Live messages are meant to arrive within tens of milliseconds, a burst within 250 ms.
LIVE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# One statement per scrape. The literal lets both databases use the partial index on pending
# rows (outbox_pending), so a scrape costs the backlog, not the outbox's whole history.
PENDING_BY_CHANNEL = (
    'SELECT "channel", COUNT(*) AS "depth", MIN("created_at") AS "oldest" FROM "outbox" '
    'WHERE "status" = \'PENDING\' GROUP BY "channel"'
)


class LiveCounts(Protocol):
    """What the pub/sub tells about this instance's live subscriptions."""

    def subscriber_count(self) -> int: ...


class AnswerCounts(Protocol):
    """What the kept answers (schema/fast/answer_cache.py) count as they go: queries answered
    from memory, and queries that could have been but were worked out (the first asked with
    a token, or anything committed since)."""

    hits: int
    misses: int


class Backlog:
    """The outbox's pending rows of one channel, as read at a scrape."""

    __slots__ = ("depth", "oldest")

    def __init__(self, depth: int = 0, oldest: datetime | None = None) -> None:
        self.depth = depth
        self.oldest = oldest


class ScrapeTime:
    """Values read when scraped rather than counted as they happen: the outbox backlog (read
    by `Metrics.exposition` just before), the pub/sub's live subscriptions, and the kept
    answers' counts (plain integers on the request path, not a Prometheus counter's lock)."""

    def __init__(self, live: LiveCounts) -> None:
        self.live = live
        self.backlog: dict[str, Backlog] | None = None
        self.answers: AnswerCounts | None = None

    def collect(self) -> Iterator[Metric]:
        if self.backlog is not None:
            yield from _outbox_families(self.backlog, clock.now())
        yield GaugeMetricFamily(
            "keybin_live_subscribers",
            "Live subscriptions (messageAdded) open on this instance",
            value=self.live.subscriber_count(),
        )
        connections = getattr(self.live, "connections", None)
        if connections is not None:
            yield GaugeMetricFamily(
                "keybin_live_connections",
                "Signed-in WebSocket connections open on this instance",
                value=len(connections),
            )
        if self.answers is not None:
            yield CounterMetricFamily(
                "keybin_kept_answer_hits",
                "Queries answered with the answer kept from the same request (nothing committed "
                "since)",
                value=self.answers.hits,
            )
            yield CounterMetricFamily(
                "keybin_kept_answer_misses",
                "Queries whose answer could be kept but was worked out (first asked with its "
                "token, or something committed since)",
                value=self.answers.misses,
            )


def _outbox_families(backlog: dict[str, Backlog], now: datetime) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "keybin_outbox_pending", "Outbox rows waiting to be delivered", labels=["channel"]
    )
    age = GaugeMetricFamily(
        "keybin_outbox_oldest_pending_seconds",
        "Age of the oldest outbox row waiting to be delivered (0 when none waits)",
        labels=["channel"],
    )
    for channel in OutboxChannel:
        found = backlog.get(channel.value, Backlog())
        depth.add_metric([channel.value], found.depth)
        waited = (now - found.oldest).total_seconds() if found.oldest is not None else 0.0
        age.add_metric([channel.value], max(waited, 0.0))
    yield depth
    yield age


async def read_backlog() -> dict[str, Backlog]:
    connection = connections.get("default")
    rows = await connection.execute_query_dict(PENDING_BY_CHANNEL)
    return {
        str(row["channel"]): Backlog(int(row["depth"]), _as_datetime(row["oldest"])) for row in rows
    }


def _as_datetime(value: object) -> datetime | None:
    """PostgreSQL answers a datetime; SQLite the text Tortoise stored."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Metrics(DeliveryCounters):
    """One app's metrics, in a registry of its own: several apps in one test process never
    count into each other's. The dispatcher counts into them as the DeliveryCounters it takes."""

    def __init__(self, live: LiveCounts) -> None:
        self.registry = CollectorRegistry()
        self.scrape_time = ScrapeTime(live)
        self.registry.register(self.scrape_time)
        super().__init__(self.registry)  # registered here: /metrics keeps its order
        self.live_delivery = Histogram(
            "keybin_live_delivery_seconds",
            "From a Message Center message's commit to its frame handed to a subscriber",
            buckets=LIVE_BUCKETS,
            registry=self.registry,
        )
        requests = Histogram(
            "keybin_graphql_request_seconds",
            "HTTP GraphQL requests (POST /graphql), by operation type",
            ["operation"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.refusals = Counter(
            "keybin_rate_limit_refusals",
            "Attempts refused by a rate limit, by action",
            ["action"],
            registry=self.registry,
        )
        # Children made once: every series exists (at 0) from the start, and the hot path
        # skips the label lookup.
        self.requests = {operation: requests.labels(operation) for operation in OPERATIONS}

    def rate_limited(self, action: str) -> None:
        self.refusals.labels(action).inc()

    def count_answers(self, answers: AnswerCounts) -> None:
        """Serve the kept answers' hits and misses (their own counts, read at each scrape)."""
        self.scrape_time.answers = answers

    def observe_live_delivery(self, seconds: float) -> None:
        self.live_delivery.observe(seconds)

    def timed(self, app: ASGIApp) -> RequestTimer:
        return RequestTimer(app, self.requests)

    async def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """What a scrape gets, in the format its Accept header asks for (Prometheus text by
        default, else OpenMetrics), and its content type: the outbox backlog read now, then
        every metric. If the database cannot be read, the outbox gauges are left out.
        Nothing is awaited between the read and the encoding: a scrape shows its own read."""
        try:
            self.scrape_time.backlog = await read_backlog()
        except (OSError, OperationalError) as error:
            log.warning("metrics: the outbox backlog cannot be read: %s", error)
            self.scrape_time.backlog = None
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type


# The live-delivery code runs in the event loop's fan-out, far from any app object: it
# records through the metrics of the app whose lifespan is running (`bind_live_delivery`).
# One app per serving process; in a test process with several apps, the last one started.
_bound: Metrics | None = None


def bind_live_delivery(metrics: Metrics) -> None:
    global _bound
    _bound = metrics


def unbind_live_delivery(metrics: Metrics) -> None:
    """At the app's shutdown, unless another app has bound its own since."""
    global _bound
    if _bound is metrics:
        _bound = None


def observe_live_delivery(seconds: float) -> None:
    """From a live message's commit to its frame handed to a subscriber's connection."""
    if _bound is not None:
        _bound.observe_live_delivery(seconds)


class TimedRequest:
    """Which operation the request being timed ran, noted by whoever learns it."""

    __slots__ = ("execution", "kind")

    def __init__(self) -> None:
        self.kind: str | None = None
        self.execution: ExecutionContext | None = None

    def label(self) -> str:
        if self.kind is not None:
            return self.kind
        execution = self.execution
        if execution is None or execution.graphql_document is None:
            return "invalid"  # not JSON, no query, or a document that does not parse
        try:
            return execution.operation_type.value
        except RuntimeError:  # no operation of the name asked for
            return "invalid"


_operation: ContextVar[TimedRequest | None] = ContextVar("keybin_graphql_operation", default=None)


def note_operation(kind: str) -> None:
    """The request being timed ran an operation of this kind (a kept or admitted answer)."""
    current = _operation.get()
    if current is not None:
        current.kind = kind


def note_execution(execution: ExecutionContext) -> None:
    """The request being timed runs through Strawberry: its type is read once it is done."""
    current = _operation.get()
    if current is not None:
        current.execution = execution


class RequestTimer:
    """ASGI middleware on the GraphQL route: the time of each POST, labelled by operation."""

    def __init__(self, app: ASGIApp, requests: dict[str, Histogram]) -> None:
        self.app = app
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        operation = TimedRequest()
        token = _operation.set(operation)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            _operation.reset(token)
            self.requests[operation.label()].observe(time.perf_counter() - started)


def bearer_refusal(authorization: str | None, token: str) -> Response | None:
    """401 without a bearer token, 403 with another one, None with METRICS_TOKEN."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return PlainTextResponse(
            "Unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )
    # In constant time: how long the comparison takes tells nothing of the token.
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return PlainTextResponse("Forbidden", status_code=403)
    return None


async def metrics_page(request: Request) -> Response:
    """Prometheus text format for a scraper holding METRICS_TOKEN; without the setting, the
    page does not exist."""
    token: str = request.app.state.settings.metrics_token
    if not token:
        return PlainTextResponse("Not Found", status_code=404)
    refusal = bearer_refusal(request.headers.get("authorization"), token)
    if refusal is not None:
        return refusal
    metrics: Metrics = request.app.state.metrics
    body, content_type = await metrics.exposition(request.headers.get("accept"))
    return Response(body, media_type=content_type)
