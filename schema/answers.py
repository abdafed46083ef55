"""Answers to repeated queries, kept while the SQLite database has not changed.

An app asks the same few queries again and again (the Message Center, the account, a
listing's grants) and most of the time nothing has changed in between. On SQLite, whether
anything has is known exactly and for almost nothing: `PRAGMA data_version` on a connection
of our own changes whenever any other connection commits to the database file, whether it
is this process's ORM, another server process or the command line. So a query's answer is
kept with the data version read before it was computed, and the same request (the same
bytes, the same bearer token) is answered with it again only while the version is unchanged
and the session it was asked with has not expired: a sign-out, a deleted account or a new
message is a commit, and the next request runs the query again.

Only answers that depended on nothing else are kept: a query operation (never a mutation)
whose answer has no error at all, that never read the time (`clock.watched`: a grant's
status, a code's expiry) nor the client's address, status 200 and no cookie. A query that
writes (an audit entry, say) commits after the version was read, so its answer is never
used. Bounded in entries and bytes; on PostgreSQL, or an in-memory database, there is no
such version to ask and nothing is kept."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resolvers import clock

log = logging.getLogger("keybin.answers")

MAX_ENTRIES = 1024
MAX_BYTES = 16 * 1024 * 1024  # request bodies and answers, all entries together
MAX_REQUEST = 64 * 1024  # larger requests are never kept (nor read ahead)
MAX_ANSWER = 256 * 1024
# The request headers an answer may depend on (Strawberry's view reads no others).
KEYED_HEADERS = (b"authorization", b"content-type", b"accept")


class Pending:
    """What the request being answered depended on, noted while it runs."""

    __slots__ = ("expires_at", "kept", "spoiled")

    def __init__(self) -> None:
        self.kept = False
        self.spoiled = False
        self.expires_at: datetime | None = None

    def note(self, *, keepable: bool) -> None:
        """One operation's result: every one must be keepable (a batch with a mutation is not)."""
        if keepable:
            self.kept = True
        else:
            self.spoiled = True

    def keepable(self) -> bool:
        return self.kept and not self.spoiled


_pending: ContextVar[Pending | None] = ContextVar("keybin_pending_answer", default=None)


def pending() -> Pending | None:
    """The request's Pending while an answer to it may be kept, else None."""
    return _pending.get()


def session_expires(expires_at: datetime) -> None:
    """The answer depends on a session valid until then."""
    current = _pending.get()
    if current is not None:
        current.expires_at = expires_at


def depends_on_client() -> None:
    """The answer depends on who is asking from where, beyond the request itself."""
    current = _pending.get()
    if current is not None:
        current.spoiled = True


@dataclass(slots=True)
class Entry:
    version: int
    expires_at: datetime | None
    start: Message
    body: bytes
    size: int


Key = tuple[bytes, ...]


def sqlite_path(database_url: str) -> str | None:
    """The database file of a sqlite:// URL; None for PostgreSQL or an in-memory database."""
    if not database_url.startswith("sqlite://"):
        return None
    path = database_url.split("://", 1)[1].split("?", 1)[0]
    return path if path and path != ":memory:" else None


class AnswerCache:
    """ASGI middleware for the GraphQL route's POST requests."""

    def __init__(self, app: ASGIApp, database_url: str, *, enabled: bool = True) -> None:
        self.app = app
        self.path = sqlite_path(database_url) if enabled else None
        self.entries: OrderedDict[Key, Entry] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._connection: sqlite3.Connection | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.path is None or scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        received, body = await _read_body(receive)
        replay = _replaying(received, receive)
        version = self._version() if body is not None else None
        if body is None or version is None:
            await self.app(scope, replay, send)
            return
        key = _key(scope, body)
        entry = self.entries.get(key)
        if entry is not None:
            if entry.version == version and (
                entry.expires_at is None or clock.now() < entry.expires_at
            ):
                self.entries.move_to_end(key)
                self.hits += 1
                await send(entry.start)
                await send({"type": "http.response.body", "body": entry.body})
                return
            self._drop(key)
        self.misses += 1
        await self._answer(scope, replay, send, key, version)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, key: Key, version: int
    ) -> None:
        answer = Pending()
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal start, size
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body" and size <= MAX_ANSWER:
                chunk = message.get("body", b"")
                chunks.append(chunk)
                size += len(chunk)
            await send(message)

        token = _pending.set(answer)
        try:
            await self.app(scope, receive, capture)
        finally:
            _pending.reset(token)
        if start is None or not answer.keepable() or size > MAX_ANSWER or not _plain(start):
            return
        body = b"".join(chunks)
        self._keep(
            key, Entry(version, answer.expires_at, start, body, len(body) + sum(map(len, key)))
        )

    def _keep(self, key: Key, entry: Entry) -> None:
        if entry.size > MAX_BYTES:
            return
        self._drop(key)
        self.entries[key] = entry
        self.bytes += entry.size
        while len(self.entries) > MAX_ENTRIES or self.bytes > MAX_BYTES:
            _, oldest = self.entries.popitem(last=False)
            self.bytes -= oldest.size

    def _drop(self, key: Key) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size

    def _version(self) -> int | None:
        """The database's data version, which changes whenever another connection (the
        ORM's included) commits; None when it cannot be read (nothing is kept then)."""
        try:
            if self._connection is None and self.path is not None:
                # Read-only, autocommit: it never holds a transaction open between asks.
                self._connection = sqlite3.connect(
                    f"file:{self.path}?mode=ro",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                )
            if self._connection is None:
                return None
            row = self._connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error as error:
            log.warning("answers no longer kept: the data version cannot be read: %s", error)
            self.close()
            self.path = None
            return None
        return int(row[0])

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.entries.clear()
        self.bytes = 0


def _key(scope: Scope, body: bytes) -> Key:
    headers = dict.fromkeys(KEYED_HEADERS, b"")
    for name, value in scope["headers"]:
        if name in headers:
            if headers[name]:
                headers[name] += b"\x00" + value  # repeated header: keyed as sent
            else:
                headers[name] = value
    # The bearer token itself is never kept in memory beyond the request: its digest is.
    authorization = hashlib.sha256(headers[b"authorization"]).digest()
    return (
        authorization,
        headers[b"content-type"],
        headers[b"accept"],
        scope["query_string"],
        body,
    )


def _plain(start: Message) -> bool:
    """A 200 answer that sets nothing on the client."""
    if start.get("status") != 200:
        return False
    return all(name.lower() != b"set-cookie" for name, _ in start.get("headers", ()))


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages read, and the whole body when it is small enough to key on."""
    received: list[Message] = []
    size = 0
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return received, None  # the client went away
        size += len(message.get("body", b""))
        if size > MAX_REQUEST:
            return received, None
        if not message.get("more_body", False):
            return received, b"".join(m.get("body", b"") for m in received)


def _replaying(received: list[Message], receive: Receive) -> Receive:
    """The messages already read, then the client's own."""
    queue = list(received)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
