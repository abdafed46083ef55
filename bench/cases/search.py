"""Case 4: the support console's account search over 100,000 (and, in full mode, 1,000,000)
contractor accounts, by partial name, email and phone.

keybin: resolvers.support.search_accounts, the function the console calls. Floor: the same
lookup answered through an FTS5 trigram index built in the same database, narrowed by the
index and re-checked exactly in SQL, so both return the same rows in the same order."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bench import seed, stats
from bench.context import CaseResult, Context, run_async
from bench.report import Row
from core.sqlite import driver as sqlite3

NAME = "search"
LIMIT = 50  # the console's page; both sides fetch one more to know there is more
SYLLABLES = [
    "an",
    "ber",
    "cal",
    "dor",
    "el",
    "fin",
    "gar",
    "hol",
    "is",
    "jen",
    "kov",
    "lin",
    "mar",
    "nel",
    "or",
    "pet",
    "quin",
    "ros",
    "sten",
    "tor",
    "ul",
    "vin",
    "wes",
    "zan",
]
FIRST = [
    "Ada",
    "Carl",
    "Maria",
    "James",
    "Linda",
    "Omar",
    "Hiro",
    "Zoe",
    "Ivan",
    "Nia",
    "Paul",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wade",
    "Yuki",
    "Aldo",
    "Bea",
    "Cruz",
    "Dina",
]
DOMAINS = ["example.com", "mail.test", "inspect.example", "clean.example"]


def _last_name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def add_accounts(conn: sqlite3.Connection, start: int, stop: int, seed_value: int) -> None:
    rng = random.Random(seed_value)
    created = datetime.now(UTC).replace(microsecond=0).isoformat(" ")

    def rows() -> Any:
        for i in range(start, stop):
            first, last = rng.choice(FIRST), _last_name(rng)
            email = f"{first}.{last}{i}@{rng.choice(DOMAINS)}".lower()
            phone = f"+1{rng.randint(201, 989)}{rng.randint(0, 9_999_999):07d}"
            yield ("CONTRACTOR", "", first, last, email, phone, "ACTIVE", "CLEANER", 0, 0, created)

    with conn:
        conn.executemany(
            "INSERT INTO account (kind, association, first_name, last_name, email, phone, status,"
            " role, failed_logins, failed_pins, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows(),
        )
        # The floor's index, kept beside the table like any other index would be.
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS account_fts USING fts5("
            "name, email, phone, content='', tokenize='trigram')"
        )
        conn.execute(
            "INSERT INTO account_fts (rowid, name, email, phone) "
            "SELECT id, first_name || ' ' || last_name, email, phone FROM account "
            "WHERE id > (SELECT coalesce(max(rowid), 0) FROM account_fts)"
        )


def sample_queries(conn: sqlite3.Connection, count: int, seed_value: int) -> list[str]:
    """What a support agent types: part of a name, a name and part of another, the start of
    an email, part of a phone number as it was read out."""
    rng = random.Random(seed_value)
    total = conn.execute("SELECT max(id) FROM account").fetchone()[0]
    queries: list[str] = []
    while len(queries) < count:
        row = conn.execute(
            "SELECT first_name, last_name, email, phone FROM account WHERE id >= ? "
            "AND kind = 'CONTRACTOR' LIMIT 1",
            (rng.randint(1, total),),
        ).fetchone()
        if row is None:
            continue
        first, last, email, phone = row
        kind = len(queries) % 4
        if kind == 0:
            at = rng.randint(0, max(0, len(last) - 5))
            queries.append(last[at : at + 5].lower())
        elif kind == 1:
            queries.append(f"{first.lower()} {last[:4].lower()}")
        elif kind == 2:
            queries.append(email[: max(6, email.index("@") - 3)])
        else:
            digits = phone[2:]
            queries.append(f"({digits[:3]}) {digits[3:6]}-{digits[6:8]}")
    return queries


def _fts_phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _upper(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def floor_lookup(conn: sqlite3.Connection, text: str) -> list[int]:
    """The same matching rules as the console (name words anywhere in first or last name,
    email prefix or any part of three characters or more, phone digits prefix or its last 4
    or 7 digits), answered through the trigram index."""
    text = " ".join(text.split())
    matches: list[str] = []
    exact: list[str] = []
    params: list[Any] = []
    lowered = text.lower()
    digits = re.sub(r"\D", "", text)
    phone_like = re.fullmatch(r"[\d\s+().\-/]+", text) is not None
    if len(lowered) >= 3:
        matches.append(f"email : {_fts_phrase(lowered)}")
    exact.append("(email >= ? AND email < ?)")
    params += [lowered, _upper(lowered)]
    if len(lowered) >= 3 and " " not in lowered and not phone_like:
        exact.append("instr(email, ?) > 0")
        params.append(lowered)
    if phone_like and len(digits) >= 3:
        prefixes = ["+" + digits] if digits.startswith("1") else ["+" + digits, "+1" + digits]
        for prefix in prefixes:
            matches.append(f"phone : {_fts_phrase(prefix)}")
            exact.append("(phone >= ? AND phone < ?)")
            params += [prefix, _upper(prefix)]
        if len(digits) in (4, 7) and not text.startswith("+"):
            matches.append(f"phone : {_fts_phrase(digits)}")
            exact.append("substr(phone, -?) = ?")
            params += [len(digits), digits]
    if "@" not in text and not phone_like:
        words = lowered.split()
        if all(len(w) >= 3 for w in words):
            matches.append("(" + " AND ".join(f"name : {_fts_phrase(w)}" for w in words) + ")")
        exact.append(
            "("
            + " AND ".join(
                "(instr(lower(first_name), ?) > 0 OR instr(lower(last_name), ?) > 0)" for _ in words
            )
            + ")"
        )
        for w in words:
            params += [w, w]
    rows = conn.execute(
        "SELECT id, first_name, last_name, email, phone, status FROM account WHERE id IN "
        "(SELECT rowid FROM account_fts WHERE account_fts MATCH ?) "
        f"AND deleted_at IS NULL AND ({' OR '.join(exact)}) "
        "ORDER BY last_name, first_name, id LIMIT ?",
        [" OR ".join(matches), *params, LIMIT + 1],
    ).fetchall()
    return [row[0] for row in rows[:LIMIT]]


def _timed(
    fn: Callable[[str], list[int]], queries: Sequence[str], repeats: int, budget: float
) -> tuple[list[float], dict[str, list[int]]]:
    times: list[float] = []
    answers: dict[str, list[int]] = {}
    stop = time.perf_counter() + budget
    for _ in range(repeats):
        for text in queries:
            start = time.perf_counter()
            answers[text] = fn(text)
            times.append(time.perf_counter() - start)
        if time.perf_counter() > stop:
            break
    return times, answers


async def _keybin(
    url: str, queries: Sequence[str], repeats: int, budget: float
) -> tuple[list[float], dict[str, list[int]]]:
    from resolvers.support import search_accounts

    times: list[float] = []
    answers: dict[str, list[int]] = {}
    async with seed.orm(url):
        for text in queries:  # warm
            await search_accounts(text)
        stop = time.perf_counter() + budget
        for _ in range(repeats):
            for text in queries:
                start = time.perf_counter()
                found = await search_accounts(text)
                times.append(time.perf_counter() - start)
                answers[text] = [a.id for a in found.accounts]
            if time.perf_counter() > stop:
                break
    return times, answers


def run(ctx: Context) -> CaseResult:
    sizes = [ctx.size(100_000, 100_000, 2_000)]
    if not ctx.quick:
        sizes.append(1_000_000)
    url = ctx.database("search")
    path = url.removeprefix("sqlite://")
    rows: list[Row] = []
    details: dict[str, Any] = {}
    have = 0
    for size in sizes:
        conn = sqlite3.connect(path)
        began = time.perf_counter()
        add_accounts(conn, have, size, seed_value=size)
        seeded = time.perf_counter() - began
        have = size
        queries = sample_queries(conn, 16, seed_value=7)
        conn.execute("ANALYZE")
        repeats = ctx.size(5, 3, 1)
        budget = ctx.size(90, 30, 5) * (2 if size >= 1_000_000 else 1)
        lookup: Callable[[str], list[int]] = partial(floor_lookup, conn)
        floor_times, floor_answers = _timed(lookup, queries, repeats, budget)
        conn.close()
        times, answers = run_async(_keybin(url, queries, repeats, budget))
        same = sum(answers[q] == floor_answers[q] for q in queries)
        label = f"{size:,}"
        details[label] = {
            "seed_seconds": round(seeded, 1),
            "queries": queries,
            "samples": len(times),
            "keybin_p50_ms": round(stats.median(times) * 1000, 3),
            "keybin_p95_ms": round(stats.percentile(times, 95) * 1000, 3),
            "floor_p50_ms": round(stats.median(floor_times) * 1000, 3),
            "floor_p95_ms": round(stats.percentile(floor_times, 95) * 1000, 3),
            "same_results": f"{same}/{len(queries)}",
            "result_counts": {q: len(answers[q]) for q in queries},
        }
        keybin_p95 = stats.percentile(times, 95) * 1000
        floor_p95 = stats.percentile(floor_times, 95) * 1000
        note = "" if same == len(queries) else f"results differ on {len(queries) - same} queries"
        rows.append(
            Row(
                NAME,
                f"p95, {label} accounts",
                "ms",
                keybin_p95,
                floor_p95,
                "FTS5 trigram",
                "at_most",
                1.5,
                note=note,
            )
        )
        if size >= 1_000_000:
            rows.append(
                Row(
                    NAME,
                    f"p95, {label} accounts (absolute)",
                    "ms",
                    keybin_p95,
                    target_kind="below",
                    bound=20.0,
                )
            )
    return CaseResult(rows, details)
