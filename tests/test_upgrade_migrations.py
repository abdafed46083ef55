"""Migrations on a database already holding rows, as an upgraded deployment has them, on
both databases: autopay following the price (0008) keeps the billing rows, their amount not
known yet (the next billing round reads it from Stripe) and none paused; a channel per push
service (0009) moves the pushes in the outbox to their service's channel; lockboxes held
(0010) count as taken at the upgrade."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tortoise import Tortoise
from tortoise.migrations.api import migrate as migrate_api

import db
from settings import Settings
from tests import pg
from tests.conftest import POSTGRES_URL


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    if not POSTGRES_URL:
        yield f"sqlite://{tmp_path / 'upgrade.sqlite3'}"
        return
    name = f"keybin_upgrade_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        admin = await pg._admin(POSTGRES_URL)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    asyncio.run(create())
    yield pg.url_for(POSTGRES_URL, name)
    asyncio.run(pg.drop(POSTGRES_URL, name))


async def upgraded(
    database_url: str, release: str, rows: list[str], queries: list[str]
) -> list[list[dict[str, Any]]]:
    """Migrates an empty database to `release`, inserts `rows` as that release would have
    them, migrates it to this release, and answers `queries` there."""
    config = db.tortoise_config(Settings(database_url=database_url))
    await migrate_api(config=config, target=release)
    connection = Tortoise.get_connection("default")
    for statement in rows:
        await connection.execute_script(statement)
    await Tortoise.close_connections()
    await migrate_api(config=config)
    connection = Tortoise.get_connection("default")
    try:
        return [await connection.execute_query_dict(query) for query in queries]
    finally:
        await Tortoise.close_connections()


# An agent paying by autopay.
BILLING_BEFORE = [
    "INSERT INTO account (id, kind, association, first_name, last_name, status, "
    "failed_logins, failed_pins, created_at) VALUES (7, 'AGENT', 'Test Association', "
    "'Avery', 'Agent', 'ACTIVE', 0, 0, '2026-11-01 09:00:00+00:00')",
    "INSERT INTO billing_account (account_id, subscription_id, subscription_status, "
    "made_past_due, created_at) VALUES (7, 'sub_test_1', 'active', "
    "false, '2026-11-01 09:00:00+00:00')",
]


async def test_billing_rows_stay_with_their_amount_unknown_and_not_paused(
    empty_database_url: str,
) -> None:
    # given a database as the release before left it, with an agent paying by autopay
    # when it is migrated to this release
    [rows] = await upgraded(
        empty_database_url,
        "models.0007_email_search",
        BILLING_BEFORE,
        [
            "SELECT account_id, subscription_id, subscription_price_cents, "
            "subscription_paused FROM billing_account"
        ],
    )
    # then the row is there, as it was, with no amount known and nothing paused
    assert [
        (r["account_id"], r["subscription_id"], r["subscription_price_cents"]) for r in rows
    ] == [(7, "sub_test_1", None)]
    assert not rows[0]["subscription_paused"]


# Two pushes queued and one sent in the one channel pushes had, and a mail.
OUTBOX_BEFORE = """INSERT INTO outbox (id, channel, recipient, payload, status, attempts,
    next_attempt_at, created_at) VALUES
    (1, 'PUSH', '', '{"platform": "FCM"}', 'PENDING', 0, '2026-11-01 09:00:00+00:00',
        '2026-11-01 09:00:00+00:00'),
    (2, 'PUSH', '', '{"platform": "APNS"}', 'PENDING', 0, '2026-11-01 09:00:00+00:00',
        '2026-11-01 09:00:00+00:00'),
    (3, 'PUSH', '', '{"platform": "APNS"}', 'SENT', 1, '2026-11-01 09:00:00+00:00',
        '2026-11-01 09:00:00+00:00'),
    (4, 'EMAIL', '', '{"to": "a@example.com"}', 'PENDING', 0, '2026-11-01 09:00:00+00:00',
        '2026-11-01 09:00:00+00:00')"""


async def test_queued_and_sent_pushes_move_to_their_services_channel(
    empty_database_url: str,
) -> None:
    # given the outbox as the release before left it: pushes in one channel, and a mail
    # when it is migrated to this release
    rows, indexes = await upgraded(
        empty_database_url,
        "models.0008_autopay_price",
        [OUTBOX_BEFORE],
        [
            "SELECT id, channel, status FROM outbox ORDER BY id",
            # the index of rows still to send (SQLite's table must not have been rebuilt)
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'outbox_pending'"
            if not POSTGRES_URL
            else "SELECT indexname AS name FROM pg_indexes WHERE indexname = 'outbox_pending'",
        ],
    )
    # then each push is in its service's channel, as it was otherwise; the mail is untouched
    assert [(r["id"], r["channel"], r["status"]) for r in rows] == [
        (1, "FCM", "PENDING"),
        (2, "APNS", "PENDING"),
        (3, "APNS", "SENT"),
        (4, "EMAIL", "PENDING"),
    ]
    assert [i["name"] for i in indexes] == ["outbox_pending"]


# A lockbox an agent holds on a listing, one held off any listing, and one nobody holds.
LOCKBOXES_BEFORE = [
    BILLING_BEFORE[0],
    "INSERT INTO listing (id, agent_id, source, status, line1, city, state, postal_code, "
    "created_at) VALUES (3, 7, 'MANUAL', 'ACTIVE', '12 Elm Street', 'Cincinnati', 'OH', "
    "'45202', '2026-11-01 09:00:00+00:00')",
    "INSERT INTO lockbox (id, serial_number, model, ble, secret, assigned_to_id, listing_id) "
    "VALUES (1, 'LB1', 'VBox BLE', true, 'JBSWY3DPEHPK3PXP', 7, 3), "
    "(2, 'LB2', 'VBox BLE', true, 'JBSWY3DPEHPK3PXP', 7, NULL), "
    "(3, 'LB3', 'VBox BLE', true, 'JBSWY3DPEHPK3PXP', NULL, NULL)",
]


async def test_lockboxes_held_before_count_as_taken_at_the_upgrade(
    empty_database_url: str,
) -> None:
    # given lockboxes as the release before left them
    # when the database is migrated to this release
    [rows] = await upgraded(
        empty_database_url,
        "models.0009_push_lanes",
        LOCKBOXES_BEFORE,
        ["SELECT id, assigned_at, listed_at FROM lockbox ORDER BY id"],
    )
    # then held and listed ones are known to be so from now on, not before
    moments = [(row["id"], row["assigned_at"], row["listed_at"]) for row in rows]
    assert [(id_, held is not None, listed is not None) for id_, held, listed in moments] == [
        (1, True, True),
        (2, True, False),
        (3, False, False),
    ]
    taken = datetime.fromisoformat(str(moments[0][1]))
    assert taken.tzinfo is not None
    assert abs(datetime.now(UTC) - taken) < timedelta(minutes=5)
