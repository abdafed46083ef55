"""Kept answers (schema/fast/answer_cache.py): the same query asked again with the same token is
answered from memory while the database is unchanged (SQLite's data version, PostgreSQL's
snapshot), and never once anything it could depend on has changed: a commit from any
connection, even one whose transaction was open when the answer was worked out, the
session's expiry, the time for an answer that read it. Errors, mutations and other
accounts' requests are never answered from memory. Runs on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from core import clock
from core.ids import to_global_id
from core.sqlite import driver as sqlite3
from models.accounts import Account
from models.enums import MessageKind
from models.messages import Message as MessageModel
from schema.fast import answer_cache
from schema.fast.answer_cache import AnswerCache, PostgresVersions, SqliteVersions, versions_for
from settings import Settings, sqlite_path
from tests.conftest import POSTGRES_URL
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
)
from tests.sql_count import StatementCounter

ME = """
query Me {
  me {
    id firstName lastName email
    messages(first: 10) { edges { cursor node { id kind title body createdAt readAt } } }
  }
}
"""
GRANT = "query G($id: ID!) { node(id: $id) { id ... on Grant { status } } }"
PAGE = "query Page($first: Int) { me { messages(first: $first) { edges { cursor } } } }"
SIGN_OUT = "mutation { signOut { ok } }"
MARK_READ = "mutation { markMessagesRead(input: {ids: []}) { count userErrors { code } } }"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Kept answers are off by default (settings.py): these tests turn them on."""
    return {"answer_cache": True}


def kept(app: Starlette) -> AnswerCache:
    cache: AnswerCache = app.state.answers
    return cache


async def post(
    http: httpx.AsyncClient, query: str, token: str | None, variables: dict[str, Any] | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response


async def signed_in_agent(gql: GraphQLClient, messages: int = 3) -> tuple[Account, str]:
    agent = await make_agent()
    for n in range(messages):
        await MessageModel.create(
            account=agent, kind=MessageKind.ACCOUNT, title=f"t{n}", body=f"b{n}"
        )
    return agent, await gql.sign_in(agent.email or "")


async def kept_answer(
    http: httpx.AsyncClient, query: str, token: str | None, variables: dict[str, Any] | None = None
) -> httpx.Response:
    """Asked twice: the first answer admits the document, the second is kept."""
    await post(http, query, token, variables)
    return await post(http, query, token, variables)


@asynccontextmanager
async def elsewhere(database_url: str) -> AsyncIterator[Any]:
    """Another connection to the same database (the command line, another instance), in
    autocommit; `.run(sql, *args)` with ? parameters."""
    path = sqlite_path(database_url)
    if path is not None:
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            yield _Sqlite(connection)
        finally:
            connection.close()
        return
    raw = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        yield _Postgres(raw)
    finally:
        await raw.close()


class _Sqlite:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    async def run(self, sql: str, *args: Any) -> None:
        self.connection.execute(sql, args)


class _Postgres:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def run(self, sql: str, *args: Any) -> None:
        parts = sql.split("?")
        numbered = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))
        await self.connection.execute(numbered, *args)


async def test_the_same_query_again_is_answered_from_memory_without_a_statement(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette, sql: StatementCounter
) -> None:
    # given an agent with three messages, whose answer was kept
    _, token = await signed_in_agent(gql)
    first = await kept_answer(http, ME, token)
    hits = kept(app).hits
    # when the same request comes again
    again = await sql.count(post(http, ME, token))
    # then it was answered from memory: no statement of the request's, the same bytes
    assert kept(app).hits == hits + 1
    assert sql.statements == []
    assert again.content == first.content
    # the same headers, but for the id each request gets of its own
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    del again.headers["x-request-id"], first.headers["x-request-id"]
    assert again.headers == first.headers
    assert len(first.json()["data"]["me"]["messages"]["edges"]) == 3


async def test_a_first_request_and_a_mutation_are_never_kept(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    _, token = await signed_in_agent(gql)
    # a document asked once is only admitted; a mutation is never admitted
    await post(http, ME, token)
    for _ in range(3):
        assert (await post(http, MARK_READ, token)).json()["data"]["markMessagesRead"]["count"] == 0
    assert not kept(app).entries and kept(app).misses == 0


async def test_a_commit_from_the_orm_or_another_connection_is_seen_at_once(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette, database_url: str
) -> None:
    # given a kept answer
    agent, token = await signed_in_agent(gql)
    await kept_answer(http, ME, token)
    # when a message is added through the ORM
    await MessageModel.create(account=agent, kind=MessageKind.ACCOUNT, title="new", body="b")
    # then the next answer has it
    edges = (await post(http, ME, token)).json()["data"]["me"]["messages"]["edges"]
    assert len(edges) == 4
    # and when another connection (the command line, another instance) renames the agent
    async with elsewhere(database_url) as other:
        await other.run("UPDATE account SET first_name = 'Renamed' WHERE id = ?", agent.id)
    # then the next answer has that too
    assert (await post(http, ME, token)).json()["data"]["me"]["firstName"] == "Renamed"


async def test_a_transaction_open_while_the_answer_was_worked_out_is_seen_once_committed(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette, database_url: str
) -> None:
    agent, token = await signed_in_agent(gql)
    async with elsewhere(database_url) as other:
        # given another connection's transaction, written but not committed
        await other.run("BEGIN")
        await other.run("UPDATE account SET first_name = 'Later' WHERE id = ?", agent.id)
        # when the answer is worked out and kept meanwhile
        before = await kept_answer(http, ME, token)
        assert before.json()["data"]["me"]["firstName"] == "Alice"
        assert (await post(http, ME, token)).content == before.content
        # and the transaction commits
        await other.run("COMMIT")
    # then the next answer has its change
    assert (await post(http, ME, token)).json()["data"]["me"]["firstName"] == "Later"


async def test_a_signed_out_token_is_refused_at_once(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    # given a kept answer for a token, answered from memory once
    _, token = await signed_in_agent(gql)
    await kept_answer(http, ME, token)
    await post(http, ME, token)
    assert kept(app).hits >= 1
    # when the token signs out
    assert (await gql(SIGN_OUT, token=token))["signOut"]["ok"]
    # then the same request no longer names anyone
    assert (await post(http, ME, token)).json()["data"]["me"] is None


async def test_an_expired_session_is_never_answered_from_memory(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    # given a kept answer, and nothing changed in the database since
    _, token = await signed_in_agent(gql)
    await kept_answer(http, ME, token)
    # when the session's 30 days are over
    clock.travel(timedelta(days=30, seconds=1).total_seconds())
    # then the request names nobody, though the data's version is the same
    assert (await post(http, ME, token)).json()["data"]["me"] is None


async def test_an_answer_that_read_the_clock_is_not_kept(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    # given a grant that starts in an hour, for two hours
    agent = await make_agent()
    listing = await make_listing(agent)
    grant = await make_grant(agent, listing, await make_lockbox(agent, listing))
    token = await gql.sign_in(agent.email or "")
    variables = {"id": to_global_id("Grant", grant.id)}
    # when its status is asked (twice) before it starts and again after it ended
    before = (await kept_answer(http, GRANT, token, variables)).json()["data"]["node"]["status"]
    clock.travel(4 * 3600)
    after = (await post(http, GRANT, token, variables)).json()["data"]["node"]["status"]
    # then each was worked out then: the status depends on the time
    assert (before, after) == ("SCHEDULED", "EXPIRED")
    assert kept(app).hits == 0 and not kept(app).entries
    # and the document is known to: its next request asks the database for no version
    assert (GRANT, None) in kept(app).uncacheable_documents
    versions = kept(app).versions
    assert versions is not None
    asked = []
    current = versions.current

    async def counted() -> Any:
        asked.append(1)
        return await current()

    versions.current = counted  # type: ignore[method-assign]
    assert (await post(http, GRANT, token, variables)).json()["data"]["node"]["status"] == "EXPIRED"
    assert asked == []


async def test_each_token_has_its_own_answers(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    # given one agent's answer kept
    _, token = await signed_in_agent(gql)
    mine = (await kept_answer(http, ME, token)).json()["data"]["me"]
    # when another account and nobody send the very same request body
    other = await make_contractor()
    other_token = await gql.sign_in(other.email or "")
    theirs = (await post(http, ME, other_token)).json()["data"]["me"]
    nobody = (await post(http, ME, None)).json()["data"]["me"]
    # then each gets its own answer
    assert theirs["email"] == other.email and theirs["id"] != mine["id"]
    assert theirs["messages"]["edges"] == []
    assert nobody is None


async def test_answers_with_errors_are_never_kept(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    _, token = await signed_in_agent(gql)
    await kept_answer(http, PAGE, token, {"first": 5})  # admitted and kept
    # when the admitted document is asked with variables it refuses, three times
    for _ in range(3):
        failed = (await post(http, PAGE, token, {"first": 1000})).json()
        assert failed["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    # then none of those was kept
    assert len(kept(app).entries) == 1 and kept(app).hits == 0


@pytest.mark.parametrize("settings_overrides", [{"answer_cache": False}])
async def test_nothing_is_kept_when_turned_off(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    _, token = await signed_in_agent(gql)
    for _ in range(3):
        await post(http, ME, token)
    assert kept(app).hits == 0 and not kept(app).entries


def test_the_version_asked_follows_the_database() -> None:
    assert sqlite_path("sqlite://./keybin.sqlite3?busy_timeout=5000") == "./keybin.sqlite3"
    on = Settings(database_url="sqlite://./k.sqlite3", answer_cache=True)
    assert isinstance(versions_for(on), SqliteVersions)
    assert versions_for(Settings(database_url="sqlite://:memory:", answer_cache=True)) is None
    pg = Settings(database_url="postgres://k@h/k", answer_cache=True)
    assert isinstance(versions_for(pg), PostgresVersions)
    assert versions_for(Settings(database_url="postgres://k@h/k", answer_cache=False)) is None
    assert versions_for(Settings(database_url="sqlite://./k.sqlite3")) is None  # off by default


async def test_kept_answers_are_bounded_in_number_and_size(
    gql: GraphQLClient,
    http: httpx.AsyncClient,
    app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, token = await signed_in_agent(gql)
    monkeypatch.setattr(answer_cache, "MAX_ENTRIES", 2)
    # when three different queries are kept
    for n in (1, 2, 3):
        await kept_answer(http, f"query Q{n} {{ me {{ id }} }}", token)
    # then the two latest are, and their sizes add up
    assert len(kept(app).entries) == 2
    assert kept(app).bytes == sum(entry.size for entry in kept(app).entries.values())
    # and an answer over the size limit is not kept
    monkeypatch.setattr(answer_cache, "MAX_ANSWER", 10)
    await kept_answer(http, "query Q4 { me { id } }", token)
    assert len(kept(app).entries) == 2


async def test_a_request_too_large_to_key_on_is_answered_the_usual_way(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token = await signed_in_agent(gql)
    monkeypatch.setattr(answer_cache, "MAX_REQUEST", 64)
    for _ in range(3):
        body = (await post(http, ME, token)).json()
        assert len(body["data"]["me"]["messages"]["edges"]) == 3
    assert kept(app).misses == 0 and kept(app).hits == 0 and not kept(app).entries


# The middleware alone, around a stand-in application that says what its answer depended on.


class Inner:
    def __init__(self, path: str) -> None:
        self.path = path
        self.calls = 0
        self.watched: list[bool] = []  # per call: whether its answer could be kept
        self.keepable = True
        self.client = False
        self.commit = False
        self.status = 200
        self.headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        request = await receive()
        pending = answer_cache.pending()
        self.watched.append(pending is not None)
        if pending is not None:
            pending.note(clean=self.keepable)
        if self.client:
            answer_cache.depends_on_client()
        if self.commit:  # another connection commits while this answer is worked out
            with sqlite3.connect(self.path) as other:
                other.execute("INSERT INTO t VALUES (1)")
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": b"answer to " + request["body"]})


async def ask(cache: AnswerCache, body: bytes = b'{"query": "a"}') -> bytes:
    sent: list[Message] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "headers": [], "query_string": b""}
    await cache(scope, receive, send)
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.fixture
def standalone(tmp_path: Any) -> tuple[Inner, AnswerCache]:
    path = str(tmp_path / "v.sqlite3")
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (a)")
    inner = Inner(path)
    return inner, AnswerCache(inner, SqliteVersions(path), lambda query, operation: True)


@pytest.mark.parametrize(
    "change",
    [
        {"keepable": False},
        {"client": True},
        {"commit": True},
        {"status": 400},
        {"headers": [(b"set-cookie", b"a=b")]},
    ],
)
async def test_an_answer_is_kept_only_when_it_depended_on_nothing_else(
    standalone: tuple[Inner, AnswerCache], change: dict[str, Any]
) -> None:
    inner, cache = standalone
    # the same request twice: kept the first time, answered from memory the second
    assert await ask(cache) == await ask(cache) == b'answer to {"query": "a"}'
    assert inner.calls == 1
    # with any of these, it is worked out every time
    for name, value in change.items():
        setattr(inner, name, value)
    other = b'{"query": "b"}'
    assert await ask(cache, other) == await ask(cache, other) == b"answer to " + other
    assert inner.calls == 3
    cache.close()


class DroppedWhileRead:
    """Versions whose reading lets another request drop every kept answer, as a request that
    found its own answer stale does while this one waits for the database."""

    def __init__(self, inner: SqliteVersions) -> None:
        self.inner = inner
        self.cache: AnswerCache | None = None

    async def current(self) -> Hashable | None:
        version = await self.inner.current()
        if self.cache is not None:
            for key in list(self.cache.entries):
                self.cache._drop(key)
        return version

    def close(self) -> None:
        self.inner.close()


async def test_an_answer_dropped_while_its_version_is_read_is_worked_out_again(
    standalone: tuple[Inner, AnswerCache],
) -> None:
    inner, cache = standalone
    assert isinstance(cache.versions, SqliteVersions)
    versions = DroppedWhileRead(cache.versions)
    cache.versions = versions
    # given a kept answer
    assert await ask(cache) == b'answer to {"query": "a"}'
    assert inner.calls == 1 and len(cache.entries) == 1
    # when it is dropped by another request while this one reads the version
    versions.cache = cache
    # then this one is worked out again, not a KeyError (a 500)
    assert await ask(cache) == b'answer to {"query": "a"}'
    assert inner.calls == 2 and cache.hits == 0
    cache.close()


async def test_a_batch_with_one_operation_not_keepable_is_not_kept(
    standalone: tuple[Inner, AnswerCache],
) -> None:
    inner, cache = standalone

    async def two_operations(scope: Scope, receive: Receive, send: Send) -> None:
        pending = answer_cache.pending()
        assert pending is not None
        pending.note(clean=True)
        pending.note(clean=False)
        await inner(scope, receive, send)

    cache.app = two_operations
    await ask(cache)
    await ask(cache)
    assert inner.calls == 2
    cache.close()


@pytest.mark.parametrize("body", [b'{"query": "a"}', b"[]", b"{", b'{"query": 1}', b"\xff"])
async def test_a_document_not_admitted_is_passed_through_untouched(
    standalone: tuple[Inner, AnswerCache], body: bytes
) -> None:
    inner, cache = standalone
    cache.admitted = lambda query, operation: False

    async def unasked() -> None:
        raise AssertionError("no version is read for a request that cannot be kept")

    cache.versions.current = unasked  # type: ignore[method-assign, union-attr]
    for _ in range(2):
        assert await ask(cache, body) == b"answer to " + body
    assert inner.watched == [False, False] and not cache.entries
    cache.close()


async def test_postgresql_snapshots_change_when_a_transaction_commits_and_only_then(
    database_url: str, orm: None
) -> None:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL's snapshot: runs in the `postgres` tox env")
    agent = await make_agent()
    versions = PostgresVersions()
    first = await versions.current()
    assert first is not None and first == await versions.current()  # reads change nothing
    async with elsewhere(database_url) as other:
        await other.run("SELECT count(*) FROM account")
        assert await versions.current() == first
        await other.run("BEGIN")
        await other.run("UPDATE account SET first_name = 'Same' WHERE id = ?", agent.id)
        during = await versions.current()
        await other.run("COMMIT")
    after = await versions.current()
    # an uncommitted change is seen by nobody, so the version stays; the commit changes it
    assert during == first and after != first, (first, during, after)
