"""Rate limits counted in the database, so every instance sees the same attempts: per client
address, and per login, phone number, email or account whatever address the attempts use."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from tortoise import connections

from core import clock
from core.errors import DomainError
from models import prepared
from resolvers.auth import normalize_email
from resolvers.phones import normalize_phone

WINDOW_SECONDS = 60

# One statement per attempt: every key's hit in the current window, counted atomically, with
# the previous window's hits for the sliding estimate.
_HIT = (
    'INSERT INTO "rate_counter" ("key", "window", "hits") VALUES {rows} '
    'ON CONFLICT ("key", "window") DO UPDATE SET "hits" = "rate_counter"."hits" + 1 '
    'RETURNING "key", "hits", (SELECT p."hits" FROM "rate_counter" p '
    'WHERE p."key" = "rate_counter"."key" AND p."window" = ?) AS "previous"'
)
_PURGE = 'DELETE FROM "rate_counter" WHERE "window" < ?'


def _phone_subject(raw: str) -> str:
    try:
        return normalize_phone(raw)
    except DomainError:
        return raw.strip()  # not a phone number: counted as typed, refused by signup anyway


# How each kind of subject is written before it is counted, so that "A@x.com " and
# "a@x.com" (or two ways of typing one phone number) share a bucket.
_SUBJECTS: dict[str, tuple[Callable[[str], str], str]] = {
    "login": (normalize_email, "this login"),
    "email": (normalize_email, "this email address"),
    "phone": (_phone_subject, "this phone number"),
    "account": (str.strip, "this account"),
}


class RateLimiter:
    """A sliding estimate over two fixed one-minute windows: this window's hits plus the
    previous window's, weighted by how much of it still lies within the last minute."""

    def __init__(
        self,
        secret_key: str,
        per_address: int,
        per_account: int,
        on_refusal: Callable[[str], None] | None = None,
    ) -> None:
        self._secret = secret_key.encode()
        self.per_address = per_address
        self.per_account = per_account
        # Told the action of each refused attempt (the app's metrics count them).
        self.on_refusal = on_refusal
        self._purge_due = 0.0

    async def hit(self, action: str, address: str | None, **subjects: str) -> None:
        """Count one attempt against the address and each subject (login=, email=, phone=,
        account=); raise TOO_MANY_ATTEMPTS when any of them is past its limit."""
        limits: dict[str, tuple[int, str]] = {}
        if self.per_address > 0:
            key = self._key(action, "address", address or "?")
            limits[key] = (self.per_address, "from this address")
        if self.per_account > 0:
            for kind, value in subjects.items():
                normalize, noun = _SUBJECTS[kind]
                key = self._key(action, kind, normalize(value))
                limits[key] = (self.per_account, f"for {noun}")
        if not limits:
            return
        now = clock.now().timestamp()
        window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        still_counted = 1 - (now - window) / WINDOW_SECONDS
        counts = await self._count(sorted(limits), window)
        await self._purge_now_and_then(window)
        for key, (limit, whose) in limits.items():
            hits, previous = counts[key]
            if hits + previous * still_counted > limit:
                if self.on_refusal is not None:
                    self.on_refusal(action)
                raise DomainError("TOO_MANY_ATTEMPTS", f"Too many attempts {whose}: wait a minute.")

    def _key(self, action: str, kind: str, subject: str) -> str:
        # Keyed digests: the table never holds an address, email or phone number (deleting an
        # account leaves none behind), and a short phone space cannot be reversed from it.
        digest = hmac.new(self._secret, f"{kind}\0{subject}".encode(), hashlib.sha256)
        return f"{action}:{kind}:{digest.hexdigest()[:32]}"

    async def _count(self, keys: list[str], window: int) -> dict[str, tuple[int, int]]:
        # Keys in one order for every caller: two statements upserting the same rows cannot
        # deadlock on PostgreSQL.
        rows = ", ".join("(?, ?, 1)" for _ in keys)
        params: list[object] = [value for key in keys for value in (key, window)]
        params.append(window - WINDOW_SECONDS)
        connection = connections.get("default")
        sql = _HIT.format(rows=rows)
        if connection.capabilities.dialect == "postgres":
            sql = prepared.numbered(sql)
        # By name: Tortoise's execute_query drops the rows an INSERT returns on PostgreSQL.
        returned = await connection.execute_query_dict(sql, params)
        return {str(row["key"]): (int(row["hits"]), int(row["previous"] or 0)) for row in returned}

    async def _purge_now_and_then(self, window: int) -> None:
        """Once a minute per instance: windows older than the previous one count no more."""
        if time.monotonic() < self._purge_due:
            return
        self._purge_due = time.monotonic() + WINDOW_SECONDS
        connection = connections.get("default")
        await prepared.fetch(connection, _PURGE, [window - WINDOW_SECONDS])
