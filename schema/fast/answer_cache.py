"""Answers to repeated queries, kept while the database has not changed.

An app asks the same few queries again and again (the Message Center, the account, a
listing's grants) and most of the time nothing has changed in between. Whether anything
has is known exactly, for every writer (this process, another instance, the command line),
by asking the database for a version of its data before the answer is worked out:

- SQLite: `PRAGMA data_version` on a connection of our own changes whenever any other
  connection commits to the file; it is read in the event loop, a few microseconds.
- PostgreSQL: the current snapshot (`pg_current_snapshot()`: the oldest transaction still
  running, one past the newest completed, the ones in between still running). Two equal
  snapshots see the same committed transactions, so the same data; a commit that wrote
  anything changes it, reads and uncommitted work do not. One short statement.

A query's answer is kept with the version read before it was worked out, and the same
request (the same bytes, the same bearer token) is answered with it again only while the
version is unchanged and the session it was asked with has not expired: a sign-out, a
deleted account or a new message is a commit, and the next request works the answer out.

Only answers that depended on nothing else are kept: a query operation (never a
mutation) whose document has been admitted (schema/fast/admitted.py: it answered once without
any error), answered without any error, that never read the time (`clock.watched`: a
grant's status, a code's expiry) nor the client's address, status 200 and no cookie. A
query that writes (an audit entry, say) commits after the version was read, so its answer
is never used. Bounded in entries and bytes."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from asyncpg.exceptions import UndefinedFunctionError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tortoise import connections

from core import clock
from core.sqlite import driver as sqlite3
from schema.fast.asgi_body import read_body, replaying
from settings import Settings, sqlite_path
from web import metrics

log = logging.getLogger("keybin.answers")

MAX_ENTRIES = 1024
MAX_BYTES = 16 * 1024 * 1024  # request bodies and answers, all entries together
MAX_REQUEST = 64 * 1024  # larger requests are never kept (nor read ahead)
MAX_ANSWER = 256 * 1024
MAX_DOCUMENTS = 256  # documents known to read the time, like the admitted ones
# The request headers an answer may depend on (Strawberry's view reads no others).
KEYED_HEADERS = (b"authorization", b"content-type", b"accept")


class Pending:
    """What the request being answered depended on, noted while it runs."""

    __slots__ = ("answered_clean", "answered_unclean", "expires_at", "reads_time_or_client")

    def __init__(self) -> None:
        self.answered_clean = False
        self.answered_unclean = False
        # It read the time or the client's address: so will the document's next answers.
        self.reads_time_or_client = False
        self.expires_at: datetime | None = None

    def note(self, *, clean: bool, timed: bool = False) -> None:
        """One operation's result: every one must be a clean query's answer that never read
        the time (a batch with a mutation is not kept)."""
        if timed:
            self.reads_time_or_client = True
        if clean:
            self.answered_clean = True
        else:
            self.answered_unclean = True

    def cacheable(self) -> bool:
        """At least one clean query was answered, nothing else, and nothing read the time or
        the client's address."""
        return self.answered_clean and not self.answered_unclean and not self.reads_time_or_client


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
        current.reads_time_or_client = True


@dataclass(slots=True)
class Entry:
    version: Hashable
    expires_at: datetime | None
    start: Message
    body: bytes
    size: int


Key = tuple[bytes, ...]
Document = tuple[str, str | None]  # (query, operation name)


class Versions(Protocol):
    async def current(self) -> Hashable | None:
        """The data's version now; None when it cannot be read (nothing is kept then)."""

    def close(self) -> None: ...


class SqliteVersions:
    def __init__(self, path: str) -> None:
        self.path: str | None = path
        self._connection: sqlite3.Connection | None = None

    async def current(self) -> Hashable | None:
        if self.path is None:
            return None
        try:
            if self._connection is None:
                # Read-only and autocommit: it never holds a transaction open.
                self._connection = sqlite3.connect(
                    f"file:{self.path}?mode=ro",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                )
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


class PostgresVersions:
    SQL = "SELECT pg_current_snapshot()::text"

    def __init__(self) -> None:
        self.usable = True

    async def current(self) -> Hashable | None:
        if not self.usable:
            return None
        try:
            # Straight on a pooled connection: a statement of the cache's own, not the
            # request's (tests/sql_count.py counts the request's).
            async with connections.get("default").acquire_connection() as connection:
                snapshot = await connection.fetchval(self.SQL)
        except Exception as error:  # noqa: BLE001  (any failure: work the answer out)
            if isinstance(error, UndefinedFunctionError):  # before PostgreSQL 13
                self.usable = False
            log.warning("answer not kept: the snapshot cannot be read: %s", error)
            return None
        return str(snapshot)

    def close(self) -> None:
        return None


def versions_for(settings: Settings) -> Versions | None:
    if not settings.answer_cache:
        return None
    if not settings.is_sqlite:
        return PostgresVersions()
    path = sqlite_path(settings.database_url)
    return SqliteVersions(path) if path else None


class AnswerCache:
    """ASGI middleware for the GraphQL route's POST requests. `admitted(query, operation)`
    says whether a document is admitted: only those have answers kept, so a first request
    or a mutation costs nothing here (on PostgreSQL, the version is a statement)."""

    def __init__(
        self,
        app: ASGIApp,
        versions: Versions | None,
        admitted: Callable[[str, str | None], bool],
        named: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> None:
        self.app = app
        self.versions = versions
        self.admitted = admitted
        # The text a request without one names by id, when known (schema/persisted/).
        self.named = named
        self.entries: OrderedDict[Key, Entry] = OrderedDict()
        # Documents whose answers read the time or the client: never kept, not read ahead.
        self.uncacheable_documents: OrderedDict[Document, None] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.versions is None or scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        received, body = await read_body(receive, MAX_REQUEST)
        replay = replaying(received, receive)
        if body is None:
            await self.app(scope, replay, send)
            return
        key = _key(scope, body)
        entry = self.entries.get(key)
        version: Hashable | None = None
        if entry is not None:
            version = await self.versions.current()
            # While the version was read, another request may have dropped or replaced it.
            if self.entries.get(key) is not entry:
                entry = None
        if entry is not None:
            if entry.version == version and (
                entry.expires_at is None or clock.now() < entry.expires_at
            ):
                self.entries.move_to_end(key)
                self.hits += 1
                metrics.note_operation("query")  # only queries' answers are kept
                await send(entry.start)
                await send({"type": "http.response.body", "body": entry.body})
                return
            self._drop(key)
        document = _document(body, self.named)
        if (
            document is None
            or document in self.uncacheable_documents
            or not self.admitted(*document)
        ):
            await self.app(scope, replay, send)
            return
        if version is None:
            version = await self.versions.current()
        if version is None:
            await self.app(scope, replay, send)
            return
        self.misses += 1
        await self._answer(scope, replay, send, key, version, document)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        key: Key,
        version: Hashable,
        document: Document,
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
        if answer.reads_time_or_client:
            # Its next answers will read the time too: no version is asked for them.
            self.uncacheable_documents[document] = None
            if len(self.uncacheable_documents) > MAX_DOCUMENTS:
                self.uncacheable_documents.popitem(last=False)
        if start is None or not answer.cacheable() or size > MAX_ANSWER or not _plain(start):
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

    def close(self) -> None:
        if self.versions is not None:
            self.versions.close()
        self.entries.clear()
        self.bytes = 0


def _document(
    body: bytes, named: Callable[[dict[str, Any]], str | None] | None = None
) -> Document | None:
    """The query text and operation name of a JSON request body; None for anything else."""
    try:
        request = json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        return None
    if not isinstance(request, dict):
        return None
    query, operation = request.get("query"), request.get("operationName")
    if query is None and named is not None:
        query = named(request)
    if not isinstance(query, str) or not isinstance(operation, str | None):
        return None
    return query, operation


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
