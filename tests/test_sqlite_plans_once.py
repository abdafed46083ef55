"""The short reads every request makes are planned once, not at every run.

SQLite 3.50 reads a bound parameter's value when it plans some clauses (a bare `LIMIT ?`
among them), and then throws the plan away whenever the parameter is bound again: each run
prepares the statement anew. For the page statements that cost more than running them.
The authorizer is asked while a statement is being prepared, never while it runs, so a
second run that asks it was prepared again. Checked for the reads answered on the event loop
(models/sqlite_client.py): the bearer token's session, the pages, rows by id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from core.sqlite import driver
from models import sqlite_client
from models.messages import Message
from schema.fast.page_dialects import FUNCTIONS
from tests.conftest import POSTGRES_URL
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
)

pytestmark = pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's own planning")

APP_OPENS = """
query Opening {
  me {
    id firstName
    unreadMessageCount
    messages(first: 10) {
      edges { cursor node { id kind title body createdAt readAt } }
      pageInfo { hasNextPage endCursor }
    }
    ... on Contractor {
      grants(first: 20) { edges { node { id status listing { id } } } }
    }
  }
}
"""


def prepared_again(database: str, sql: str, params: Sequence[Any]) -> int:
    """How often the authorizer is asked on the statement's second run (0: it kept its plan)."""
    connection = driver.connect(f"file:{database}?mode=ro", uri=True, isolation_level=None)
    asked = 0

    def authorizer(*_: Any) -> int:
        nonlocal asked
        asked += 1
        return 0  # SQLITE_OK

    for name, (arity, function) in FUNCTIONS.items():
        connection.create_function(name, arity, function, deterministic=True)
    try:
        # Set first: setting it expires every statement the connection has prepared.
        connection.set_authorizer(authorizer)
        connection.execute(sql, params).fetchall()
        asked = 0
        connection.execute(sql, params).fetchall()
        return asked
    finally:
        connection.close()


async def test_the_reads_an_app_opens_with_are_planned_once(
    gql: GraphQLClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await make_agent()
    contractor = await make_contractor()
    listing = await make_listing(agent)
    lockbox = await make_lockbox(agent, listing=listing)
    for _ in range(3):
        await make_grant(agent, listing, lockbox, contractor)
    for n in range(12):
        await Message.create(account=contractor, kind="ACCOUNT", title=f"t{n}", body="b")
    token = await gql.sign_in(contractor.email or "")

    read: list[tuple[str, tuple[Any, ...]]] = []
    original = sqlite_client.SqliteClient.read_now

    def recording(self: Any, sql: str, params: Sequence[Any]) -> Any:
        rows = original(self, sql, params)
        if rows is not None:
            read.append((sql, tuple(params)))
        return rows

    monkeypatch.setattr(sqlite_client.SqliteClient, "read_now", recording)
    data = await gql(APP_OPENS, token=token)
    assert len(data["me"]["messages"]["edges"]) == 10
    assert len(data["me"]["grants"]["edges"]) == 3

    database = database_url.removeprefix("sqlite://")
    with_limit = [(sql, params) for sql, params in read if "LIMIT" in sql]
    assert with_limit, read  # the Message Center page
    for sql, params in read:
        assert prepared_again(database, sql, params) == 0, sql
