"""Benchmark data written straight through the models (bulk_create), on SQLite or PostgreSQL:
agents with listings, lockboxes and grants; contractors with sessions and messages."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tortoise import Tortoise

import db
from core.security import new_token, token_digest
from models.accounts import Account, Device, Session
from models.enums import (
    AccountKind,
    AccountStatus,
    ContractorRole,
    ListingSource,
    ListingStatus,
    MessageKind,
)
from models.grants import Grant
from models.listings import Listing, Lockbox
from models.messages import Message
from settings import Settings

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
FIRST_NAMES = ["Carl", "Maria", "James", "Linda", "Omar", "Ada", "Hiro", "Zoe", "Ivan", "Nia"]
LAST_NAMES = ["Johnson", "Garcia", "Nguyen", "Okafor", "Schmidt", "Rossi", "Tanaka", "Dubois"]


def bench_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, secret_key="bench-secret-" + "k" * 40)


async def migrate(database_url: str) -> None:
    await db.migrate(bench_settings(database_url))
    await Tortoise.close_connections()


class Template:
    """A migrated SQLite file made once per run; each case works on its own copy."""

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "template.sqlite3"

    def copy_to(self, target: Path) -> str:
        if not self.path.exists():
            asyncio.run(migrate(f"sqlite://{self.path}"))
        shutil.copy(self.path, target)
        return f"sqlite://{target}"


@asynccontextmanager
async def orm(database_url: str) -> AsyncIterator[None]:
    config = db.tortoise_config(bench_settings(database_url))
    await Tortoise.init(config=config, _enable_global_fallback=True)
    try:
        yield
    finally:
        await Tortoise.close_connections()


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Portfolio:
    agent_id: int
    token: str
    listing_ids: list[int]


async def contractors(tag: str, count: int) -> list[int]:
    at = now()
    rows = [
        Account(
            kind=AccountKind.CONTRACTOR,
            first_name=FIRST_NAMES[i % len(FIRST_NAMES)],
            last_name=f"{LAST_NAMES[i % len(LAST_NAMES)]}{i}",
            email=f"{tag}.contractor{i}@example.com",
            phone=f"+1513{i:07d}",
            status=AccountStatus.ACTIVE,
            role=ContractorRole.CLEANER,
            association="",
            failed_logins=0,
            failed_pins=0,
            created_at=at,
        )
        for i in range(count)
    ]
    await Account.bulk_create(rows, batch_size=1000)
    found = dict(
        await Account.filter(email__startswith=f"{tag}.contractor").values_list("email", "id")
    )
    return [found[f"{tag}.contractor{i}@example.com"] for i in range(count)]


async def sessions(account_ids: Sequence[int]) -> list[str]:
    """A signed-in device and bearer token per account, as signIn would leave them."""
    at = now()
    await Device.bulk_create(
        [
            Device(
                account_id=a,
                device_id="bench-phone",
                name="Bench phone",
                registered_at=at,
                last_seen_at=at,
            )
            for a in account_ids
        ],
        batch_size=1000,
    )
    devices = dict(
        await Device.filter(account_id__in=list(account_ids), device_id="bench-phone").values_list(
            "account_id", "id"
        )
    )
    tokens = [new_token() for _ in account_ids]
    await Session.bulk_create(
        [
            Session(
                token_hash=token_digest(t),
                account_id=a,
                device_id=devices[a],
                created_at=at,
                expires_at=at + timedelta(days=30),
            )
            for a, t in zip(account_ids, tokens, strict=True)
        ],
        batch_size=1000,
    )
    return tokens


async def portfolio(
    tag: str, listings: int, grants_per_listing: int, grantees: Sequence[int]
) -> Portfolio:
    """An agent whose listings each have a lockbox and a history of grants in every status."""
    at = now()
    agent = await Account.create(
        kind=AccountKind.AGENT,
        key_id=None,
        mls_id=f"{tag}-agent",
        association="Bench",
        first_name="Bench",
        last_name=f"Agent {tag}",
        email=f"{tag}.agent@example.com",
        status=AccountStatus.ACTIVE,
        created_at=at,
    )
    await Listing.bulk_create(
        [
            Listing(
                agent_id=agent.id,
                mls_number=f"{tag}-L{i:05d}",
                source=ListingSource.IMPORTED,
                status=ListingStatus.ACTIVE,
                line1=f"{100 + i} Main Street",
                line2=None,
                city="Cincinnati",
                state="OH",
                postal_code=f"452{i % 100:02d}",
                created_at=at,
            )
            for i in range(listings)
        ]
    )
    listing_ids = sorted(
        int(row[0]) for row in await Listing.filter(agent_id=agent.id).values_list("id")
    )
    await Lockbox.bulk_create(
        [
            Lockbox(
                serial_number=f"{tag}-LB{i:05d}",
                model="BE6",
                ble=True,
                secret=SECRET,
                assigned_to_id=agent.id,
                listing_id=listing_id,
                on_listing_since=at.date(),
                last_access_at=None,
            )
            for i, listing_id in enumerate(listing_ids)
        ]
    )
    lockboxes = dict(
        await Lockbox.filter(listing_id__in=listing_ids).values_list("listing_id", "id")
    )
    grants = []
    for li, listing_id in enumerate(listing_ids):
        for g in range(grants_per_listing):
            grantee = grantees[(li * grants_per_listing + g) % len(grantees)]
            # Every status: expired, active, scheduled, revoked; far from now so the
            # status cannot change while the benchmark runs.
            phase = g % 4
            starts = at + timedelta(days=(-10, -1, 3, 4)[phase], hours=g)
            grants.append(
                Grant(
                    listing_id=listing_id,
                    lockbox_id=lockboxes[listing_id],
                    granted_by_id=agent.id,
                    grantee_email=f"grantee{grantee}@example.com",
                    grantee_id=grantee,
                    starts_at=starts,
                    ends_at=starts + timedelta(days=5),
                    revoked_at=at if phase == 3 else None,
                    created_at=at,
                )
            )
    await Grant.bulk_create(grants, batch_size=1000)
    (token,) = await sessions([agent.id])
    return Portfolio(agent.id, token, listing_ids)


async def messages(account_id: int, count: int, tag: str = "") -> list[int]:
    at = now()
    await Message.bulk_create(
        [
            Message(
                account_id=account_id,
                kind=MessageKind.ACCESS_GRANTED,
                title=f"Access granted{tag} #{i}",
                body=f"You can open the lockbox at {100 + i} Main Street, Cincinnati "
                "from Tuesday 09:00 to Friday 17:00.",
                created_at=at - timedelta(minutes=count - i),
            )
            for i in range(count)
        ]
    )
    ids = await Message.filter(account_id=account_id).order_by("id").values_list("id", flat=True)
    return list(ids)  # type: ignore[arg-type]


async def one_message_each(account_ids: Sequence[int], tag: str) -> dict[int, int]:
    """One new message per account: what one fan-out round delivers."""
    at = now()
    await Message.bulk_create(
        [
            Message(
                account_id=a,
                kind=MessageKind.ACCESS_GRANTED,
                title=f"Access granted {tag}",
                body="You can open the lockbox at 100 Main Street from 09:00 to 17:00.",
                created_at=at,
            )
            for a in account_ids
        ],
        batch_size=1000,
    )
    rows = await Message.filter(title=f"Access granted {tag}").values_list("account_id", "id")
    return {int(account): int(message) for account, message in rows}
