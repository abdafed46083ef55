"""Sessions that end, announced to every instance so their open WebSockets close at once."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

log = logging.getLogger("keybin.sessions")

# graphql-transport-ws close codes: the session is over (sign in again), or it still
# holds but the account may not be told anything live (its status is not ACTIVE).
SESSION_ENDED = 4401
NOT_ACTIVE = 4403

CHANNEL = "keybin_sessions"
MAX_PAYLOAD = 7000  # NOTIFY payloads must stay under 8000 bytes


@dataclass(frozen=True)
class Ended:
    """Sessions of one account that have ended: `sessions`, or (None) all but `except_session`."""

    account_id: int
    code: int = SESSION_ENDED
    sessions: frozenset[int] | None = None
    except_session: int | None = None

    def closes(self, account_id: int, session_id: int) -> bool:
        if account_id != self.account_id or session_id == self.except_session:
            return False
        return self.sessions is None or session_id in self.sessions


def encode(events: Iterable[Ended]) -> list[str]:
    """NOTIFY payloads (JSON lists of events), each under MAX_PAYLOAD bytes."""
    payloads: list[str] = []
    batch: list[str] = []
    size = 2
    for ended in events:
        for part in _parts(ended):
            text = json.dumps(part, separators=(",", ":"))
            if batch and size + len(text) + 1 > MAX_PAYLOAD:
                payloads.append("[" + ",".join(batch) + "]")
                batch, size = [], 2
            batch.append(text)
            size += len(text) + 1
    if batch:
        payloads.append("[" + ",".join(batch) + "]")
    return payloads


def _parts(ended: Ended) -> Iterable[list[Any]]:
    """An event as [account, code, sessions or null, spared session or null]; a long session
    list in several parts (a device signed in again and again has a session each time)."""
    if ended.sessions is None:
        yield [ended.account_id, ended.code, None, ended.except_session]
        return
    ids = sorted(ended.sessions)
    for start in range(0, len(ids), 500):
        yield [ended.account_id, ended.code, ids[start : start + 500], ended.except_session]


def decode(payload: str) -> list[Ended]:
    """The events of one payload; anything malformed is dropped with a warning."""
    try:
        parts = json.loads(payload)
        return [
            Ended(
                account_id=int(account),
                code=int(code),
                sessions=None if sessions is None else frozenset(int(s) for s in sessions),
                except_session=None if except_session is None else int(except_session),
            )
            for account, code, sessions, except_session in parts
        ]
    except (ValueError, TypeError) as error:
        log.warning("malformed sessions-ended payload dropped: %s", error)
        return []


class Receiver(Protocol):
    """This process's open connections (notify/connections.py), told of ended sessions."""

    def end(self, ended: Ended) -> None: ...


# The receivers of this process's running apps, for SQLite, which has no NOTIFY: what a
# process commits it tells its own connections (a process serves one database).
_here: list[Receiver] = []


def listen_here(receiver: Receiver) -> None:
    _here.append(receiver)


def stop_listening_here(receiver: Receiver) -> None:
    if receiver in _here:
        _here.remove(receiver)


class Ending:
    """The sessions a transaction ends, collected while it runs."""

    def __init__(self, db: BaseDBAsyncClient) -> None:
        self.db = db
        self.events: list[Ended] = []

    def sessions(self, account_id: int, session_ids: Iterable[int]) -> None:
        """These sessions are over (signed out, their device removed)."""
        ids = frozenset(session_ids)
        if ids:
            self.events.append(Ended(account_id, sessions=ids))

    def account(self, account_id: int, except_session: int | None = None) -> None:
        """Every session of the account is over but `except_session` (the one that asked)."""
        self.events.append(Ended(account_id, except_session=except_session))

    def not_active(self, account_ids: Iterable[int]) -> None:
        """The accounts left ACTIVE: their sessions hold, their live subscriptions do not."""
        self.events.extend(Ended(account_id, code=NOT_ACTIVE) for account_id in account_ids)


@asynccontextmanager
async def ending() -> AsyncIterator[Ending]:
    """A transaction whose ended sessions are announced exactly when it commits: on
    PostgreSQL by a NOTIFY inside it (sent at commit, never on rollback) that every
    instance's listener hears; on SQLite to this process's connections right after the
    commit (other processes' commits are noticed by notify/connections.py's watch)."""
    async with in_transaction() as db:
        ending = Ending(db)
        yield ending
        postgres = db.capabilities.dialect == "postgres"
        if postgres:
            for payload in encode(ending.events):
                await db.execute_query("SELECT pg_notify($1, $2)", [CHANNEL, payload])
    if not postgres:
        for ended in ending.events:
            for receiver in list(_here):
                receiver.end(ended)
