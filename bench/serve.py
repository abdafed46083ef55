"""The servers the benchmarks talk to, one per process: keybin itself (with a few bench-only
routes), the floors (a plain Starlette JSON endpoint, raw Starlette WebSockets), and a mail
relay that answers or hangs."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextvars
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bench.servers import pin, raise_file_limit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COUNT_HEADER = b"x-bench-count-sql"
# The statements of the request being counted; DataLoader batches inherit it.
_statements: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "bench_statements", default=None
)


def count_sql_statements() -> None:
    """Wrap every way Tortoise's SQLite client sends SQL, counting per request."""
    from tortoise.backends.sqlite.client import SqliteClient

    for name in (
        "execute_query",
        "execute_query_dict",
        "execute_insert",
        "execute_many",
        "execute_script",
    ):
        original = getattr(SqliteClient, name)

        def counted(original: Any = original) -> Any:
            async def wrapper(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                seen = _statements.get()
                if seen is not None:
                    seen.append(query)
                return await original(self, query, *args, **kwargs)

            return wrapper

        setattr(SqliteClient, name, counted())

    # The short reads keybin's own client answers on the event loop.
    from models.sqlite_client import SqliteClient as Reading

    original_read = Reading.read_now

    def read_now(self: Any, query: str, *args: Any) -> Any:
        rows = original_read(self, query, *args)
        seen = _statements.get()
        if rows is not None and seen is not None:  # else execute_query counts it
            seen.append(query)
        return rows

    Reading.read_now = read_now  # type: ignore[method-assign]


def with_sql_count(app: ASGIApp) -> ASGIApp:
    """Requests carrying x-bench-count-sql get the count back in x-bench-sql-count."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or COUNT_HEADER not in dict(scope["headers"]):
            await app(scope, receive, send)
            return
        seen: list[str] = []
        token = _statements.set(seen)

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-bench-sql-count", str(len(seen)).encode()),
                ]
            await send(message)

        try:
            await app(scope, receive, counting_send)
        finally:
            _statements.reset(token)

    return middleware


def keybin_app(count_sql: bool) -> ASGIApp:
    from app import create_app

    app = create_app(serving=True)  # as `keybin serve` runs it

    async def subscribers(request: Request) -> Response:
        return JSONResponse({"count": request.app.state.pubsub.subscriber_count()})

    async def publish(request: Request) -> Response:
        # What the message tail hands the subscribers after a commit (notify/live_events.py).
        events = (await request.json())["events"]
        for account_id, message_id in events:
            await request.app.state.pubsub.publish(int(account_id), int(message_id))
        return JSONResponse({"published": len(events)})

    app.router.routes[:0] = [
        Route("/__bench/subscribers", subscribers),
        Route("/__bench/publish", publish, methods=["POST"]),
    ]
    if count_sql:
        count_sql_statements()
        return with_sql_count(app)
    return app


def plain_app(body_file: Path) -> Starlette:
    """The floor for a small query: the same response bytes, no GraphQL, no database."""
    body = body_file.read_bytes()

    async def graphql(request: Request) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"]), Route("/healthz", healthz)]
    )


# The small query's reads, written by hand (the floors below): the bearer token's session and
# account, then the ten newest messages; ? parameters (numbered for PostgreSQL).
_ACCOUNT_SQL = (
    'SELECT a."id", a."kind", a."first_name", a."last_name", a."email", s."expires_at" '
    'FROM "session" s JOIN "account" a ON a."id" = s."account_id" '
    'WHERE s."token_hash" = ? AND a."deleted_at" IS NULL'
)
_MESSAGES_SQL = (
    'SELECT "id", "kind", "title", "body", "created_at", "read_at" FROM "message" '
    'WHERE "account_id" = ? ORDER BY "id" DESC LIMIT 10'
)
_SIGN_IN = {"errors": [{"message": "sign in"}]}


def _token_digest(request: Request) -> str:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _small_answer(
    account: Sequence[Any], messages: Iterable[Sequence[Any]], time_text: Callable[[Any], Any]
) -> Response:
    """keybin's answer to the small query, from the two reads' rows, with the standard
    library's json."""
    account_id, kind, first_name, last_name, email = account[:5]
    edges = [
        {
            "cursor": _b64(f"k:{pk}"),
            "node": {
                "id": _b64(f"Message:{pk}"),
                "kind": message_kind,
                "title": title,
                "body": body,
                "createdAt": time_text(created_at),
                "readAt": time_text(read_at),
            },
        }
        for pk, message_kind, title, body, created_at, read_at in messages
    ]
    me = {
        "id": _b64(f"{kind.title()}:{account_id}"),
        "firstName": first_name,
        "lastName": last_name,
        "email": email,
        "messages": {"edges": edges},
    }
    answer = json.dumps({"data": {"me": me}}, separators=(",", ":"), ensure_ascii=False)
    return Response(answer.encode(), media_type="application/json")


async def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def plain_sql_app(database: Path) -> Starlette:
    """A second floor for the small query: the least its answer needs, written by hand. The
    bearer token's session and account (one indexed read, expiry checked), the ten newest
    messages (one), on a read-only sqlite3 connection of the same SQLite library keybin runs
    on, read on the event loop as keybin's short reads are; the JSON built with the standard
    library. No GraphQL and no middleware; an unknown token is a 401."""
    from core.sqlite import driver

    reader = driver.connect(
        f"file:{database}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
    )

    def time_text(stored: str | None) -> str | None:
        return None if stored is None else stored.replace(" ", "T")

    async def graphql(request: Request) -> Response:
        await request.body()
        found = reader.execute(_ACCOUNT_SQL, (_token_digest(request),)).fetchone()
        if found is None or datetime.fromisoformat(found[5]) <= datetime.now(UTC):
            return JSONResponse(_SIGN_IN, status_code=401)
        messages = reader.execute(_MESSAGES_SQL, (found[0],))
        return _small_answer(found, messages, time_text)

    return Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"]), Route("/healthz", _healthz)]
    )


def plain_pg_app(url: str) -> Starlette:
    """The same hand-written reads as plain_sql_app, on PostgreSQL: an asyncpg pool, the two
    statements prepared by asyncpg as keybin's are, the JSON built with the standard library."""
    import asyncpg

    from models.prepared import numbered

    account_sql, messages_sql = numbered(_ACCOUNT_SQL), numbered(_MESSAGES_SQL)
    pools: list[Any] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(url.replace("postgres://", "postgresql://", 1))
        pools.append(pool)
        try:
            yield
        finally:
            await pool.close()

    def time_text(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(UTC).isoformat()

    async def graphql(request: Request) -> Response:
        await request.body()
        async with pools[0].acquire() as connection:
            found = await connection.fetchrow(account_sql, _token_digest(request))
            if found is None or found[5] <= datetime.now(UTC):
                return JSONResponse(_SIGN_IN, status_code=401)
            messages = await connection.fetch(messages_sql, found[0])
        return _small_answer(found, messages, time_text)

    return Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"]), Route("/healthz", _healthz)],
        lifespan=lifespan,
    )


def websocket_floor_app(frame_file: Path | None) -> Starlette:
    """The floor for fan-out: raw WebSockets, one queue per connection, one frame per event.
    A connection opened with `?group=G` also gets the events published to that group alone
    (one grantee's connections, for the live case's bursts). A publish request may bring the
    frame to send (`{"frame": ...}`: the one keybin sent in the same round)."""
    frame = frame_file.read_text() if frame_file is not None else ""
    queues: set[asyncio.Queue[str]] = set()
    groups: dict[str, set[asyncio.Queue[str]]] = {}

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol="graphql-transport-ws")
        queue: asyncio.Queue[str] = asyncio.Queue(100)
        queues.add(queue)
        group = groups.setdefault(websocket.query_params.get("group", ""), set())
        group.add(queue)
        try:
            while True:
                receive = asyncio.ensure_future(websocket.receive())
                event = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({receive, event}, return_when="FIRST_COMPLETED")
                if event in done:
                    await websocket.send_text(event.result())
                else:
                    event.cancel()
                if receive in done:
                    if receive.result()["type"] == "websocket.disconnect":
                        return
                else:
                    receive.cancel()
        except WebSocketDisconnect:
            return
        finally:
            queues.discard(queue)
            group.discard(queue)

    async def publish(request: Request) -> Response:
        group = request.query_params.get("group")
        chosen = queues if group is None else groups.get(group, set())
        sent = (await request.json()).get("frame", frame)
        for queue in list(chosen):
            queue.put_nowait(sent)
        return JSONResponse({"published": len(chosen)})

    async def subscribers(request: Request) -> Response:
        return JSONResponse({"count": len(queues)})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            WebSocketRoute("/graphql", socket),
            Route("/__bench/publish", publish, methods=["POST"]),
            Route("/__bench/subscribers", subscribers),
            Route("/healthz", healthz),
        ]
    )


class MailSink:
    """aiosmtpd's handler: every mail is taken and forgotten."""

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 Message accepted"


async def mail_relay(port: int, hang: bool) -> None:
    """A relay on loopback: one that answers (aiosmtpd), or one that accepts each connection
    and never says a word, not even its greeting, the usual way for a relay to hang."""
    from aiosmtpd.smtp import SMTP

    held: set[asyncio.StreamWriter] = set()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.add(writer)
        try:
            while await reader.read(4096):  # until the client gives up and closes
                pass
        finally:
            held.discard(writer)
            writer.close()

    if hang:
        server = await asyncio.start_server(never_answer, "127.0.0.1", port, backlog=1024)
    else:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(MailSink()), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument(
        "kind",
        choices=["keybin", "plain", "plain-sql", "plain-pg", "websocket-floor", "mail-relay"],
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--count-sql", action="store_true")
    parser.add_argument(
        "--file", type=Path, help="response body / frame / SQLite database for the floors"
    )
    parser.add_argument("--hang", action="store_true", help="mail relay: never answer")
    parser.add_argument("--url", help="plain-pg: the PostgreSQL database")
    args = parser.parse_args()
    pin(args.cpu)
    raise_file_limit()
    if args.kind == "mail-relay":
        asyncio.run(mail_relay(args.port, args.hang))
        return
    app: Any
    if args.kind == "keybin":
        app = keybin_app(args.count_sql)
    elif args.kind == "plain":
        app = plain_app(args.file)
    elif args.kind == "plain-sql":
        app = plain_sql_app(args.file)
    elif args.kind == "plain-pg":
        app = plain_pg_app(args.url)
    else:
        app = websocket_floor_app(args.file)
    # The same settings for keybin and its floors: one process, uvloop, httptools.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
