"""SQLite's short reads on the event loop (models/sqlite_client.py): they see every commit
made before them and nothing uncommitted, a transaction's reads stay in the transaction, and
closing leaves no WAL behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from tortoise import Tortoise, connections
from tortoise.exceptions import OperationalError
from tortoise.transactions import in_transaction

import db
from core import clock
from core.security import token_digest
from models import prepared
from models.accounts import Device, Session
from models.enums import MessageKind
from models.messages import Message
from models.sqlite_client import SqliteClient
from resolvers import messages
from resolvers.auth import authenticate
from settings import Settings
from tests.conftest import POSTGRES_URL
from tests.factories import make_contractor

pytestmark = pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's own client")


class Reads:
    """Which statements the loop's connection answered."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answered: list[str] = []
        original = SqliteClient.read_now

        def read_now(client: SqliteClient, sql: str, params: list[object]) -> object:
            rows = original(client, sql, params)
            if rows is not None:
                self.answered.append(sql)
            return rows

        monkeypatch.setattr(SqliteClient, "read_now", read_now)


@pytest.fixture
async def orm_client(orm: None) -> AsyncIterator[SqliteClient]:
    client = connections.get("default")
    assert isinstance(client, SqliteClient)
    await prepared.fetch(client, "SELECT 1", [])  # opens both connections
    yield client


async def new_session(account_id: int, token: str) -> None:
    device = await Device.create(account_id=account_id, device_id=token, name="phone")
    await Session.create(
        token_hash=token_digest(token),
        account_id=account_id,
        device=device,
        expires_at=clock.now() + timedelta(days=1),
    )


async def test_a_token_is_looked_up_on_the_loop_and_a_sign_out_seen_at_once(
    orm_client: SqliteClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    reads = Reads(monkeypatch)
    contractor = await make_contractor()
    await new_session(contractor.id, "copied-token")
    # when
    before = await authenticate("copied-token")
    await Session.filter(token_hash=token_digest("copied-token")).delete()
    after = await authenticate("copied-token")
    # then
    assert before is not None and before.account.id == contractor.id
    assert after is None, "a signed-out token must fail on the very next request"
    assert len(reads.answered) == 2


async def test_a_reader_sees_commits_and_never_waits_for_an_open_transaction(
    orm_client: SqliteClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a transaction that has written a message and has not committed yet
    reads = Reads(monkeypatch)
    contractor = await make_contractor()
    await Message.create(account=contractor, kind=MessageKind.ACCESS_GRANTED, title="old", body="")
    written, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with in_transaction():
            await Message.create(
                account=contractor, kind=MessageKind.ACCESS_GRANTED, title="new", body=""
            )
            written.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await written.wait()
    # when: the page is read while the writer holds the database's only connection
    async with asyncio.timeout(5):  # through Tortoise's connection it would wait forever
        during = await messages.page(contractor.id, 10, None, unread_only=False)
    release.set()
    await task
    after = await messages.page(contractor.id, 10, None, unread_only=False)
    # then
    assert [m.title for m in during] == ["old"], "nothing uncommitted is seen"
    assert [m.title for m in after] == ["new", "old"], "a commit is seen by the next read"
    assert len(reads.answered) == 2


async def test_reads_inside_a_transaction_see_its_own_writes(
    orm_client: SqliteClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    reads = Reads(monkeypatch)
    contractor = await make_contractor()
    # when
    async with in_transaction():
        await new_session(contractor.id, "fresh-token")
        inside = await authenticate("fresh-token")
        page = await messages.page(contractor.id, 10, None, unread_only=False)
    # then
    assert inside is not None and inside.account.id == contractor.id
    assert page == []
    assert reads.answered == [], "a transaction's reads go through its own connection"


async def test_filtered_pages_and_large_batches_stay_off_the_loop(
    orm_client: SqliteClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    reads = Reads(monkeypatch)
    contractor = await make_contractor()
    await Message.create(account=contractor, kind=MessageKind.ACCESS_GRANTED, title="t", body="")
    # when
    unread = await messages.page(contractor.id, 10, None, unread_only=True)
    of_kind = await messages.page(contractor.id, 10, None, False, [MessageKind.ACCESS_GRANTED])
    many = await prepared.by_ids(Message, list(range(1, prepared.SHORT_BATCH + 2)))
    # then
    assert [m.title for m in unread] == [m.title for m in of_kind] == ["t"]
    assert [m.title for m in many] == ["t"]
    assert reads.answered == []


async def test_a_statement_the_reader_refuses_fails_as_tortoise_fails_it(
    orm_client: SqliteClient,
) -> None:
    # when / then: the same error as without the reader, from Tortoise's own connection
    with pytest.raises(OperationalError, match="no such column"):
        await prepared.fetch(orm_client, "SELECT nope FROM message", [], short=True)


async def test_the_reader_never_writes(orm_client: SqliteClient) -> None:
    # when
    answer = orm_client.read_now('DELETE FROM "message"', [])
    # then: refused (read-only), and the caller would go on through Tortoise
    assert answer is None


async def test_functions_registered_for_the_reader_outlive_a_reopening(
    orm_client: SqliteClient,
) -> None:
    # given
    orm_client.create_reader_function("keybin_twice", 1, lambda n: n * 2)
    # when
    before = orm_client.read_now("SELECT keybin_twice(?)", [21])
    await orm_client.close()
    await orm_client.create_connection(with_db=True)
    after = orm_client.read_now("SELECT keybin_twice(?)", [4])
    # then
    assert before == [(42,)]
    assert after == [(8,)]


async def test_closing_removes_the_wal_file(settings: Settings) -> None:
    # given: the reader open beside Tortoise's connection, something written
    wal = Path(settings.database_url.removeprefix("sqlite://") + "-wal")
    await Tortoise.init(config=db.tortoise_config(settings), _enable_global_fallback=True)
    contractor = await make_contractor()
    assert await authenticate("no-such-token") is None
    assert await asyncio.to_thread(wal.exists)
    # when
    await Tortoise.close_connections()
    # then: the last connection to close checkpointed the WAL and removed it
    assert not await asyncio.to_thread(wal.exists), "the reader must close before the writer"
    assert contractor.id > 0


async def test_an_in_memory_database_has_no_reader() -> None:
    # given
    settings = Settings(database_url="sqlite://:memory:")
    await Tortoise.init(config=db.tortoise_config(settings), _enable_global_fallback=True)
    try:
        await Tortoise.generate_schemas()
        client = connections.get("default")
        # when
        rows = await prepared.fetch(client, "SELECT 7", [], short=True)
        # then
        assert isinstance(client, SqliteClient)
        assert client.read_now("SELECT 7", []) is None
        assert rows == [(7,)]
    finally:
        await Tortoise.close_connections()
