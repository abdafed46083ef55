"""Whole-database views for tests: row counts per table, and rows that mention a value."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise

# Rate-limit counters count refused attempts too: that is their job, not a change made.
SKIP_TABLES = ("sqlite_", "tortoise_migrations", "rate_counter")


async def _tables() -> list[str]:
    conn = Tortoise.get_connection("default")
    if conn.capabilities.dialect == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        query = (
            "SELECT table_name AS name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
    rows = await conn.execute_query_dict(query)
    return [r["name"] for r in rows if not str(r["name"]).startswith(SKIP_TABLES)]


async def table_counts() -> dict[str, int]:
    """Rows per table: equal before and after means a mutation wrote nothing."""
    conn = Tortoise.get_connection("default")
    counts = {}
    for table in await _tables():
        rows = await conn.execute_query_dict(f'SELECT COUNT(*) AS n FROM "{table}"')  # noqa: S608
        counts[table] = int(rows[0]["n"])
    return counts


async def rows_mentioning(*needles: str) -> list[tuple[str, dict[str, Any]]]:
    """Every row of every table whose text contains one of the needles (case-insensitive)."""
    conn = Tortoise.get_connection("default")
    lowered = [n.lower() for n in needles]
    found = []
    for table in await _tables():
        for row in await conn.execute_query_dict(f'SELECT * FROM "{table}"'):  # noqa: S608
            text = " ".join(str(v) for v in row.values()).lower()
            if any(n in text for n in lowered):
                found.append((table, row))
    return found
