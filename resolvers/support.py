"""What the support console reads: account search, an account's sections, revealed answers."""

from __future__ import annotations

import functools
import re
import sys
import zoneinfo
from dataclasses import dataclass
from typing import Any

from tortoise import Tortoise
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from core.security import unseal
from models import prepared
from models.access import AccessEvent
from models.accounts import Account, AccountEvent, Device, SecurityAnswer
from models.enums import AccountEventKind, AccountKind, StaffAction, StaffRole
from models.grants import Grant
from models.listings import Listing, Lockbox
from models.staff import Staff
from resolvers import audit, events
from resolvers.events import Actor

SEARCH_LIMIT = 50
# Name matches looked at per search; a broader name needs more letters.
NAME_MATCH_LIMIT = 1000
SECTION_LIMIT = 100
EVENTS_PAGE = 25
# Longest prefixes worth looking up: the columns' own lengths.
_MAX_LENGTH = {"email": 254, "phone": 20, "key_id": 9}
# What is searched at most (the box's maxlength too): no name, email or phone is longer.
QUERY_MAX_LENGTH = 100
# Shorter searches look at the start of names, emails and phones only; any part of an
# email needs this many characters (a trigram on PostgreSQL).
EMAIL_PART_MIN_LENGTH = 3
# What agents read out from a caller's number; each length has its index (0005_console).
PHONE_ENDINGS = (4, 7)
# ASCII digits only: `\d` also takes other scripts' digits, which no phone or Key ID holds.
_KEY_ID_PART = re.compile(r"[0-9]{1,9}")
_PHONE_LIKE = re.compile(r"[0-9\s+().\-/]+")
_NOT_DIGIT = re.compile(r"[^0-9]")
_SURROGATES = range(0xD800, 0xE000)


@dataclass(frozen=True)
class SearchResult:
    accounts: list[Account]
    more: bool  # the cap was reached: the caller should narrow the search


def normalize_query(text: str) -> str:
    """The search as it is run: one space between words, no NUL, at most QUERY_MAX_LENGTH."""
    return " ".join(text[: QUERY_MAX_LENGTH * 2].replace("\x00", "").split())[:QUERY_MAX_LENGTH]


def _is_phone_like(text: str) -> bool:
    return _PHONE_LIKE.fullmatch(text) is not None


def _like_pattern(word: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", word) + "%"


def phone_ending(column: str, digits: int) -> str:
    """A phone's last `digits` characters, written as the expression its index is on
    (models/migrations/0005_console.py): substr and length mean the same on both databases."""
    return f'substr("{column}", length("{column}") - {digits - 1})'


def _name_index_query(words: list[str], dialect: str) -> tuple[str, list[Any]]:
    """SELECT of the ids (at most NAME_MATCH_LIMIT) whose name holds every word, answered by
    the trigram index: FTS5 on SQLite, pg_trgm behind ILIKE on PostgreSQL."""
    if dialect == "sqlite":
        query = " AND ".join('"' + word.replace('"', '""') + '"' for word in words)
        return (
            "SELECT rowid AS id FROM account_name_fts WHERE account_name_fts MATCH ? LIMIT ?",
            [query, NAME_MATCH_LIMIT],
        )
    clauses = " AND ".join("(first_name || ' ' || last_name) ILIKE ?" for _ in words)
    return (
        f"SELECT id FROM account WHERE {clauses} LIMIT ?",  # noqa: S608
        [*map(_like_pattern, words), NAME_MATCH_LIMIT],
    )


def _email_index_query(part: str, dialect: str) -> tuple[str, list[Any]]:
    """SELECT of the ids (at most NAME_MATCH_LIMIT) whose email holds `part`: FTS5 trigrams
    on SQLite (a quoted phrase is a substring there), pg_trgm behind LIKE on PostgreSQL."""
    if dialect == "sqlite":
        return (
            "SELECT rowid AS id FROM account_email_fts WHERE account_email_fts MATCH ? LIMIT ?",
            ['"' + part.replace('"', '""') + '"', NAME_MATCH_LIMIT],
        )
    return (
        'SELECT "id" FROM "account" WHERE "email" LIKE ? ESCAPE \'\\\' LIMIT ?',
        [_like_pattern(part), NAME_MATCH_LIMIT],
    )


async def name_matches(text: str) -> list[int] | None:
    """Ids of accounts whose name holds every word, through the trigram index.

    None when a word is shorter than a trigram, or the text is not a name."""
    words = normalize_query(text).split()
    if not words or any(len(w) < 3 for w in words) or "@" in text or _is_phone_like(text):
        return None
    connection = Tortoise.get_connection("default")
    sql, params = _name_index_query(words, connection.capabilities.dialect)
    return [int(row[0]) for row in await prepared.fetch(connection, sql, params)]


async def search_accounts(text: str, limit: int = SEARCH_LIMIT) -> SearchResult:
    dialect = Tortoise.get_connection("default").capabilities.dialect
    where, params = _search_condition(text, dialect)
    if not where:
        return SearchResult([], False)
    rows = await prepared.select(
        Account,
        f'"deleted_at" IS NULL AND ({where})',
        params,
        '"last_name", "first_name", "id"',
        limit + 1,
    )
    return SearchResult(rows[:limit], len(rows) > limit)


def _next_character(char: str) -> str | None:
    """The first character after `char` that text can hold: the surrogates (U+D800-U+DFFF)
    are skipped, no string to store or encode has one alone. None after the last one."""
    code = ord(char) + 1
    if code in _SURROGATES:
        code = _SURROGATES.stop
    return chr(code) if code <= sys.maxunicode else None


def _search_condition(text: str, dialect: str) -> tuple[str, list[Any]]:
    """Name (partial, any case), email (any part of it), phone in any format (digits prefix,
    or its last 4 or 7 digits), Key ID (spaces ignored), as one SQL condition with ?
    parameters; ("", []) when there is nothing to look for."""
    text = normalize_query(text)
    if len(text) < 2:
        return "", []
    options: list[str] = []
    params: list[Any] = []

    def prefix(column: str, value: str) -> None:
        # `p <= x < p'` (p' = p with its last character bumped) is a prefix match that an
        # ordinary B-tree index answers; LIKE 'p%' is not, on SQLite. Skipped when longer
        # than anything the column holds, or when the last character has no successor.
        after = _next_character(value[-1])
        if len(value) <= _MAX_LENGTH[column] and after is not None:
            options.append(f'("{column}" >= ? AND "{column}" < ?)')
            params.extend([value, value[:-1] + after])

    # Emails are stored lower-cased and phones as E.164: prefix lookups on their indexes.
    prefix("email", text.lower())
    digits = _NOT_DIGIT.sub("", text)
    phone_like = _is_phone_like(text)
    if len(text) >= EMAIL_PART_MIN_LENGTH and " " not in text and not phone_like:
        # Any part of an email ("smith", "@example.com"), from a trigram index on both
        # databases (models/migrations/0007_email_search.py, 0005_console.py).
        sql, email_params = _email_index_query(text.lower(), dialect)
        options.append(f'"id" IN ({sql})')
        params.extend(email_params)
    if phone_like and len(digits) >= 3:
        prefix("phone", "+" + digits)
        if not digits.startswith("1"):
            prefix("phone", "+1" + digits)  # a US number typed without +1
        if len(digits) in PHONE_ENDINGS and text.lstrip()[:1] != "+":
            options.append(f"{phone_ending('phone', len(digits))} = ?")
            params.append(digits)
        if _KEY_ID_PART.fullmatch(digits):
            prefix("key_id", digits)  # typed in groups as on the card: "123 456 789"
    if "@" not in text and not phone_like:
        words = text.split()
        if all(len(word) >= 3 for word in words):
            # A subquery on the trigram index: no round trip for the ids, no IN list.
            sql, name_params = _name_index_query(words, dialect)
            options.append(f'"id" IN ({sql})')
            params.extend(name_params)
        else:
            # A word shorter than a trigram: names are scanned (rare, and the page caps it).
            # Every word must be part of the first or the last name ("carl cont").
            options.append(
                " AND ".join(
                    "(UPPER(\"first_name\") LIKE UPPER(?) ESCAPE '\\' "
                    "OR UPPER(\"last_name\") LIKE UPPER(?) ESCAPE '\\')"
                    for _ in words
                )
            )
            for word in words:
                params.extend([_like_pattern(word)] * 2)
    return " OR ".join(f"({option})" for option in options), params


async def live_account(account_id: int) -> Account | None:
    return await Account.get_or_none(id=account_id, deleted_at__isnull=True)


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
    first: int = 0  # position of the page's first entry, counted from the newest (1-based)
    total: int = 0
    # Where the newer page starts: None on the newest page; 0 when that page is the newest.
    newer_before: int | None = None
    sysadmins: frozenset[int] = frozenset()  # staff ids among the page's actors who are sysadmins


async def event_log(account_id: int, before: int | None = None) -> EventPage:
    """Newest first, keyed on id so entries added while paging do not shift pages; with the
    page's place in the whole log (five queries, whatever its length)."""
    query = AccountEvent.filter(account_id=account_id)
    rows = (
        await (query.filter(id__lt=before) if before else query)
        .order_by("-id")
        .limit(EVENTS_PAGE + 1)
    )
    page = rows[:EVENTS_PAGE]
    total = await query.count()
    newer, newer_before = 0, None
    if before:
        newer = await query.filter(id__gte=before).count()
        above: list[Any] = await (
            query.filter(id__gte=before)
            .order_by("id")
            .limit(EVENTS_PAGE + 1)
            .values_list("id", flat=True)
        )
        newer_before = int(above[EVENTS_PAGE]) if len(above) > EVENTS_PAGE else 0
    staff_ids = {row.staff_id for row in page if row.staff_id is not None}
    sysadmins: list[Any] = (
        await Staff.filter(id__in=staff_ids, role=StaffRole.SYSADMIN).values_list("id", flat=True)
        if staff_ids
        else []
    )
    return EventPage(
        events=page,
        next_before=page[-1].id if len(rows) > EVENTS_PAGE else None,
        first=newer + 1 if page else 0,
        total=total,
        newer_before=newer_before,
        sysadmins=frozenset(int(i) for i in sysadmins),
    )


async def account_time_zone(account: Account) -> str:
    """The zone an account lives in, for reading its times: an agent's lockboxes' region (the
    most common), a contractor's most recent grant's lockbox region, else UTC."""
    if account.kind == AccountKind.AGENT:
        zones: list[Any] = await (
            Lockbox.filter(assigned_to_id=account.id, region_id__isnull=False)
            .annotate(boxes=Count("id"))
            .group_by("region__time_zone")
            .order_by("-boxes")
            .limit(1)
            .values_list("region__time_zone", flat=True)
        )
    else:
        zones = await (
            Grant.filter(grantee_id=account.id, lockbox__region_id__isnull=False)
            .order_by("-created_at", "-id")
            .limit(1)
            .values_list("lockbox__region__time_zone", flat=True)
        )
    zone = str(zones[0]) if zones else "UTC"
    return zone if zone in _known_zones() else "UTC"


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


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
    detail = f"{len(rows)} answers"
    async with in_transaction():
        await events.record(account, AccountEventKind.SECURITY_ANSWERS_VIEWED, detail, actor)
        await audit.record_by(actor, StaffAction.ANSWERS_REVEALED, account.id, detail)
    return answers
