"""What the support console reads: account search, an account's sections, revealed answers."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import Tortoise
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models import prepared
from models.access import AccessEvent
from models.accounts import Account, AccountEvent, Device, SecurityAnswer
from models.enums import AccountEventKind
from models.grants import Grant
from models.listings import Listing, Lockbox
from resolvers import clock, events
from resolvers.events import Actor
from resolvers.security import unseal

SEARCH_LIMIT = 50
# Name matches looked at per search; a broader name needs more letters.
NAME_MATCH_LIMIT = 1000
SECTION_LIMIT = 100
EVENTS_PAGE = 25
# Longest prefixes worth looking up: the columns' own lengths.
_MAX_LENGTH = {"email": 254, "phone": 20, "key_id": 9}
_KEY_ID_PART = re.compile(r"\d{1,9}")


@dataclass(frozen=True)
class SearchResult:
    accounts: list[Account]
    more: bool  # the cap was reached: the caller should narrow the search


def _prefix(field: str, prefix: str) -> Q | None:
    """`p <= x < p'` (p' = p with its last character bumped) is a prefix match that an
    ordinary B-tree index answers; LIKE 'p%' is not, on SQLite."""
    if len(prefix) > _MAX_LENGTH[field] or ord(prefix[-1]) >= sys.maxunicode:
        return None  # longer than anything the column holds, or no successor
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return Q(**{f"{field}__gte": prefix, f"{field}__lt": upper})


def _normalize(text: str) -> str:
    return " ".join(text.replace("\x00", "").split())[:100]


def search_filter(text: str, name_ids: list[int] | None = None) -> Q | None:
    """Name (partial, any case), email (prefix), phone in any format (digits prefix), Key ID.

    `name_ids` are the accounts whose name holds every word, found through the
    trigram index (see `name_matches`); without them names are scanned.
    """
    text = _normalize(text)
    if len(text) < 2:
        return None
    # Emails are stored lower-cased and phones as E.164, so both are prefix
    # lookups on their indexed columns.
    options = [_prefix("email", text.lower())]
    digits = re.sub(r"\D", "", text)
    phone_like = re.fullmatch(r"[\d\s+().\-/]+", text) is not None
    if phone_like and len(digits) >= 3:
        options.append(_prefix("phone", "+" + digits))
        if not digits.startswith("1"):
            options.append(_prefix("phone", "+1" + digits))  # a US number typed without +1
        if _KEY_ID_PART.fullmatch(digits):
            options.append(_prefix("key_id", digits))
    if "@" not in text and not phone_like:
        if name_ids is not None:
            options.append(Q(id__in=name_ids) if name_ids else None)
        else:
            # Every word must be part of the first or the last name ("carl cont").
            words = Q()
            for word in text.split():
                words &= Q(first_name__icontains=word) | Q(last_name__icontains=word)
            options.append(words)
    present = [option for option in options if option is not None]
    return Q(*present, join_type=Q.OR) if present else None


async def name_matches(text: str, limit: int = NAME_MATCH_LIMIT) -> list[int] | None:
    """Ids of accounts whose name holds every word, through the trigram index.

    None when a word is shorter than a trigram, or the text is not a name: the
    caller then scans (short words are rare and the scan is bounded by the cap).
    """
    words = _normalize(text).split()
    if not words or any(len(w) < 3 for w in words) or "@" in text:
        return None
    if re.fullmatch(r"[\d\s+().\-/]+", text):
        return None
    connection = Tortoise.get_connection("default")
    if connection.capabilities.dialect == "sqlite":
        query = " AND ".join('"' + word.replace('"', '""') + '"' for word in words)
        rows = await connection.execute_query_dict(
            "SELECT rowid AS id FROM account_name_fts WHERE account_name_fts MATCH ? LIMIT ?",
            [query, limit],
        )
    else:
        clauses = " AND ".join(
            f"(first_name || ' ' || last_name) ILIKE ${n}" for n in range(1, len(words) + 1)
        )
        patterns = ["%" + re.sub(r"([\\%_])", r"\\\1", word) + "%" for word in words]
        rows = await connection.execute_query_dict(
            f"SELECT id FROM account WHERE {clauses} LIMIT {int(limit)}",  # noqa: S608
            patterns,
        )
    return [int(row["id"]) for row in rows]


async def search_accounts(text: str, limit: int = SEARCH_LIMIT) -> SearchResult:
    statement = _search_statement(text, Tortoise.get_connection("default").capabilities.dialect)
    if statement is None:
        # A word shorter than a trigram: names are scanned through the query builder.
        match = search_filter(text)
        if match is None:
            return SearchResult([], False)
        rows = await (
            Account.filter(match, deleted_at__isnull=True)
            .order_by("last_name", "first_name", "id")
            .limit(limit + 1)
        )
    elif not statement[0]:
        return SearchResult([], False)
    else:
        where, params = statement
        rows = await prepared.select(
            Account,
            f'"deleted_at" IS NULL AND ({where})',
            params,
            '"last_name", "first_name", "id"',
            limit + 1,
        )
    return SearchResult(rows[:limit], len(rows) > limit)


def _search_statement(text: str, dialect: str) -> tuple[str, list[Any]] | None:
    """`search_filter` as one SQL condition, the name part a subquery on the trigram index
    (no round trip for the ids, no 1,000-value IN list to build). ("", []) when there is
    nothing to look for; None when a name word is too short for the index."""
    text = _normalize(text)
    if len(text) < 2:
        return "", []
    options: list[str] = []
    params: list[Any] = []

    def prefix(column: str, value: str) -> None:
        if len(value) <= _MAX_LENGTH[column] and ord(value[-1]) < sys.maxunicode:
            options.append(f'("{column}" >= ? AND "{column}" < ?)')
            params.extend([value, value[:-1] + chr(ord(value[-1]) + 1)])

    prefix("email", text.lower())
    digits = re.sub(r"\D", "", text)
    phone_like = re.fullmatch(r"[\d\s+().\-/]+", text) is not None
    if phone_like and len(digits) >= 3:
        prefix("phone", "+" + digits)
        if not digits.startswith("1"):
            prefix("phone", "+1" + digits)
        if _KEY_ID_PART.fullmatch(digits):
            prefix("key_id", digits)
    if "@" not in text and not phone_like:
        words = text.split()
        if any(len(word) < 3 for word in words):
            return None
        if dialect == "sqlite":
            options.append(
                '"id" IN (SELECT rowid FROM account_name_fts WHERE account_name_fts MATCH ? '
                "LIMIT ?)"
            )
            params.append(" AND ".join('"' + word.replace('"', '""') + '"' for word in words))
        else:
            clauses = " AND ".join("(first_name || ' ' || last_name) ILIKE ?" for _ in words)
            options.append(f'"id" IN (SELECT id FROM account WHERE {clauses} LIMIT ?)')  # noqa: S608
            params.extend("%" + re.sub(r"([\\%_])", r"\\\1", word) + "%" for word in words)
        params.append(NAME_MATCH_LIMIT)
    return " OR ".join(options), params


async def live_account(account_id: int) -> Account | None:
    return await Account.get_or_none(id=account_id, deleted_at__isnull=True)


def grant_status(grant: Grant, now: datetime | None = None) -> str:
    now = now or clock.now()
    if grant.revoked_at is not None:
        return "REVOKED"
    if now < grant.starts_at:
        return "SCHEDULED"
    return "ACTIVE" if now < grant.ends_at else "EXPIRED"


async def grants_received(account_id: int) -> list[Grant]:
    return await (
        Grant.filter(grantee_id=account_id)
        .select_related("listing", "granted_by", "lockbox")
        .order_by("-starts_at", "-id")
        .limit(SECTION_LIMIT)
    )


async def grants_given(account_id: int) -> list[Grant]:
    return await (
        Grant.filter(granted_by_id=account_id)
        .select_related("listing", "grantee", "lockbox")
        .order_by("-starts_at", "-id")
        .limit(SECTION_LIMIT)
    )


async def accesses_used(account_id: int) -> list[AccessEvent]:
    return await (
        AccessEvent.filter(actor_id=account_id)
        .select_related("listing", "lockbox")
        .order_by("-occurred_at", "-id")
        .limit(SECTION_LIMIT)
    )


async def devices(account_id: int) -> list[Device]:
    return await Device.filter(account_id=account_id).order_by("-last_seen_at", "-id")


async def listings(account_id: int) -> list[Listing]:
    return await Listing.filter(agent_id=account_id).order_by("-id").limit(SECTION_LIMIT)


async def lockboxes(account_id: int) -> list[Lockbox]:
    return await (
        Lockbox.filter(assigned_to_id=account_id)
        .select_related("listing")
        .order_by("serial_number")
        .limit(SECTION_LIMIT)
    )


@dataclass(frozen=True)
class EventPage:
    events: list[AccountEvent]
    next_before: int | None  # the `before` of the next (older) page, None on the last one


async def event_log(account_id: int, before: int | None = None) -> EventPage:
    """Newest first, keyed on id so entries added while paging do not shift pages."""
    query = AccountEvent.filter(account_id=account_id)
    if before is not None:
        query = query.filter(id__lt=before)
    rows = await query.order_by("-id").limit(EVENTS_PAGE + 1)
    page = rows[:EVENTS_PAGE]
    return EventPage(page, page[-1].id if len(rows) > EVENTS_PAGE else None)


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str | None  # None until revealed, or when it cannot be unsealed


async def security_questions(account_id: int) -> list[Answer]:
    questions = await SecurityAnswer.filter(account_id=account_id).order_by("id")
    return [Answer(row.question, None) for row in questions]


async def reveal_security_answers(secret_key: str, account: Account, actor: Actor) -> list[Answer]:
    """The answers in clear, for verifying a caller; each reveal is an account event."""
    rows = await SecurityAnswer.filter(account_id=account.id).order_by("id")
    answers = [
        Answer(row.question, unseal(secret_key, row.answer_sealed) if row.answer_sealed else None)
        for row in rows
    ]
    async with in_transaction():
        await events.record(
            account, AccountEventKind.SECURITY_ANSWERS_VIEWED, f"{len(rows)} answers", actor
        )
    return answers
