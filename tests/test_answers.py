"""Kept answers (schema/answers.py): the same query asked again with the same token is
answered from memory while the SQLite database is unchanged, and never once anything it
could depend on has changed: a commit from any connection, the session's expiry, the time
for an answer that read it. Errors, mutations and other accounts' requests are never
answered from memory."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from models.accounts import Account
from models.enums import MessageKind
from models.messages import Message as MessageModel
from resolvers import clock
from schema import answers
from schema.answers import AnswerCache, sqlite_path
from schema.ids import to_global_id
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

sqlite_only = pytest.mark.skipif(
    bool(POSTGRES_URL), reason="answers are kept on SQLite only (no data version to ask)"
)

ME = """
query Me {
  me {
    id firstName lastName email
    messages(first: 10) { edges { cursor node { id kind title body createdAt readAt } } }
  }
}
"""
GRANT = "query G($id: ID!) { node(id: $id) { id ... on Grant { status } } }"
TOO_MANY = "query { me { messages(first: 1000) { edges { cursor } } } }"
SIGN_OUT = "mutation { signOut { ok } }"
MARK_READ = "mutation { markMessagesRead(input: {ids: []}) { count userErrors { code } } }"


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


@sqlite_only
async def test_the_same_query_again_is_answered_from_memory_without_a_statement(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette, sql: StatementCounter
) -> None:
    # given an agent with three messages, who asked for them once
    _, token = await signed_in_agent(gql)
    first = await post(http, ME, token)
    hits = kept(app).hits
    # when the same request comes again
    again = await sql.count(post(http, ME, token))
    # then it was answered from memory: no statement, the same bytes and headers
    assert kept(app).hits == hits + 1
    assert sql.statements == []
    assert again.content == first.content
    assert again.headers == first.headers
    assert len(first.json()["data"]["me"]["messages"]["edges"]) == 3


@sqlite_only
async def test_a_commit_from_the_orm_or_another_connection_is_seen_at_once(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette, database_url: str
) -> None:
    # given a kept answer
    agent, token = await signed_in_agent(gql)
    await post(http, ME, token)
    # when a message is added through the ORM
    await MessageModel.create(account=agent, kind=MessageKind.ACCOUNT, title="new", body="b")
    # then the next answer has it
    edges = (await post(http, ME, token)).json()["data"]["me"]["messages"]["edges"]
    assert len(edges) == 4
    # and when another connection (the command line, another process) renames the agent
    path = sqlite_path(database_url)
    assert path is not None
    with sqlite3.connect(path) as other:
        other.execute("UPDATE account SET first_name = 'Renamed' WHERE id = ?", (agent.id,))
    # then the next answer has that too
    assert (await post(http, ME, token)).json()["data"]["me"]["firstName"] == "Renamed"


@sqlite_only
async def test_a_signed_out_token_is_refused_at_once(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    # given a kept answer for a token
    _, token = await signed_in_agent(gql)
    await post(http, ME, token)
    await post(http, ME, token)
    assert kept(app).hits >= 1
    # when the token signs out
    assert (await gql(SIGN_OUT, token=token))["signOut"]["ok"]
    # then the same request no longer names anyone
    assert (await post(http, ME, token)).json()["data"]["me"] is None


@sqlite_only
async def test_an_expired_session_is_never_answered_from_memory(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    # given a kept answer, and nothing changed in the database since
    _, token = await signed_in_agent(gql)
    await post(http, ME, token)
    # when the session's 30 days are over
    clock.travel(timedelta(days=30, seconds=1).total_seconds())
    # then the request names nobody, though the data version is the same
    assert (await post(http, ME, token)).json()["data"]["me"] is None


@sqlite_only
async def test_an_answer_that_read_the_clock_is_not_kept(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    # given a grant that starts in an hour, for two hours
    agent = await make_agent()
    listing = await make_listing(agent)
    grant = await make_grant(agent, listing, await make_lockbox(agent, listing))
    token = await gql.sign_in(agent.email or "")
    variables = {"id": to_global_id("Grant", grant.id)}
    hits = kept(app).hits
    # when its status is asked before it starts and again after it ended
    before = (await post(http, GRANT, token, variables)).json()["data"]["node"]["status"]
    clock.travel(4 * 3600)
    after = (await post(http, GRANT, token, variables)).json()["data"]["node"]["status"]
    # then each was worked out then: the status depends on the time
    assert (before, after) == ("SCHEDULED", "EXPIRED")
    assert kept(app).hits == hits


@sqlite_only
async def test_each_token_has_its_own_answers(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    # given one agent's answer kept
    _, token = await signed_in_agent(gql)
    mine = (await post(http, ME, token)).json()["data"]["me"]
    # when another account and nobody send the very same request body
    other = await make_contractor()
    other_token = await gql.sign_in(other.email)
    theirs = (await post(http, ME, other_token)).json()["data"]["me"]
    nobody = (await post(http, ME, None)).json()["data"]["me"]
    # then each gets its own answer
    assert theirs["email"] == other.email and theirs["id"] != mine["id"]
    assert theirs["messages"]["edges"] == []
    assert nobody is None


@sqlite_only
async def test_errors_and_mutations_are_never_answered_from_memory(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    _, token = await signed_in_agent(gql)
    hits, entries = kept(app).hits, len(kept(app).entries)
    # when a query with an error and a mutation are each sent twice
    for _ in range(2):
        failed = (await post(http, TOO_MANY, token)).json()
        assert failed["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
        assert (await post(http, MARK_READ, token)).json()["data"]["markMessagesRead"]["count"] == 0
    # then none was kept
    assert kept(app).hits == hits
    assert len(kept(app).entries) == entries


@sqlite_only
@pytest.mark.parametrize("settings_overrides", [{"answer_cache": False}])
async def test_nothing_is_kept_when_turned_off(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    _, token = await signed_in_agent(gql)
    for _ in range(3):
        await post(http, ME, token)
    assert kept(app).hits == 0 and not kept(app).entries


async def test_answers_are_kept_only_where_the_database_tells_of_changes(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    # given the same query asked three times
    _, token = await signed_in_agent(gql)
    bodies = [(await post(http, ME, token)).content for _ in range(3)]
    # then the answers are the same, kept on SQLite and worked out each time on PostgreSQL
    assert bodies[0] == bodies[1] == bodies[2]
    assert kept(app).hits == (0 if POSTGRES_URL else 2)


def test_only_a_sqlite_file_has_a_data_version() -> None:
    assert sqlite_path("sqlite://./keybin.sqlite3?busy_timeout=5000") == "./keybin.sqlite3"
    assert sqlite_path("sqlite://:memory:") is None
    assert sqlite_path("postgres://keybin@127.0.0.1/keybin") is None


@sqlite_only
async def test_kept_answers_are_bounded_in_number_and_size(
    gql: GraphQLClient,
    http: httpx.AsyncClient,
    app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, token = await signed_in_agent(gql)
    kept(app).close()
    monkeypatch.setattr(answers, "MAX_ENTRIES", 2)
    # when three different queries are asked
    for n in (1, 2, 3):
        await post(http, f"query Q{n} {{ me {{ id }} }}", token)
    # then the two latest are kept, and their sizes add up
    assert len(kept(app).entries) == 2
    assert kept(app).bytes == sum(entry.size for entry in kept(app).entries.values())
    # and an answer over the size limit is not kept
    monkeypatch.setattr(answers, "MAX_ANSWER", 10)
    await post(http, "query Q4 { me { id } }", token)
    assert len(kept(app).entries) == 2


@sqlite_only
async def test_a_request_too_large_to_key_on_is_answered_the_usual_way(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token = await signed_in_agent(gql)
    monkeypatch.setattr(answers, "MAX_REQUEST", 64)
    misses = kept(app).misses
    for _ in range(2):
        body = (await post(http, ME, token)).json()
        assert len(body["data"]["me"]["messages"]["edges"]) == 3
    assert kept(app).misses == misses and kept(app).hits == 0


# The middleware alone, around a stand-in application that says what its answer depended on.


class Inner:
    def __init__(self, path: str) -> None:
        self.path = path
        self.calls = 0
        self.keepable = True
        self.client = False
        self.commit = False
        self.status = 200
        self.headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        request = await receive()
        pending = answers.pending()
        assert pending is not None
        pending.note(keepable=self.keepable)
        if self.client:
            answers.depends_on_client()
        if self.commit:  # another connection commits while this answer is worked out
            with sqlite3.connect(self.path) as other:
                other.execute("INSERT INTO t VALUES (1)")
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": b"answer to " + request["body"]})


async def ask(cache: AnswerCache, body: bytes = b"{}") -> bytes:
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
    return inner, AnswerCache(inner, f"sqlite://{path}")


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
    assert await ask(cache) == await ask(cache) == b"answer to {}"
    assert inner.calls == 1
    # with any of these, it is worked out every time
    for name, value in change.items():
        setattr(inner, name, value)
    assert await ask(cache, b"[]") == await ask(cache, b"[]") == b"answer to []"
    assert inner.calls == 3
    cache.close()


async def test_a_batch_with_one_operation_not_keepable_is_not_kept(
    standalone: tuple[Inner, AnswerCache],
) -> None:
    inner, cache = standalone

    async def two_operations(scope: Scope, receive: Receive, send: Send) -> None:
        pending = answers.pending()
        assert pending is not None
        pending.note(keepable=True)
        pending.note(keepable=False)
        await inner(scope, receive, send)

    cache.app = two_operations
    await ask(cache)
    await ask(cache)
    assert inner.calls == 2
    cache.close()
