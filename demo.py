"""Demo data for `keybin serve --demo`: regions, agents, listings, lockboxes, a contractor."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

from tortoise.transactions import in_transaction

from importers.members import new_key_id
from models.accounts import Account
from models.enums import (
    AccountEventKind,
    AccountKind,
    AccountStatus,
    ContractorRole,
    ListingSource,
    ListingStatus,
)
from models.grants import Grant
from models.listings import Listing, Lockbox, Region
from resolvers import clock, events
from resolvers.security import hash_secret
from settings import Settings

PASSWORD = "Demo1234"
PIN = "1234"
ASSOCIATION = "keybin demo MLS"
CONTRACTOR_EMAIL = "casey.cleaner@example.com"

REGIONS = [
    ("CIN", "Greater Cincinnati", "America/New_York"),
    ("DEN", "Denver Metro", "America/Denver"),
]


@dataclass(frozen=True)
class DemoAgent:
    mls_id: str
    first_name: str
    last_name: str
    email: str
    phone: str


# The first two share an email: one person holding two agent accounts (linked accounts).
AGENTS = [
    DemoAgent("DEMO-A1", "Alex", "Morgan", "alex.morgan@example.com", "+15135550101"),
    DemoAgent("DEMO-A2", "Alex", "Morgan", "alex.morgan@example.com", "+15135550101"),
    DemoAgent("DEMO-A3", "Jordan", "Lee", "jordan.lee@example.com", "+13035550103"),
]


class DemoListing(NamedTuple):
    mls_number: str
    agent: int  # index into AGENTS
    status: ListingStatus
    line1: str
    line2: str | None
    city: str
    state: str
    postal_code: str


LISTINGS = [
    DemoListing(
        "DEMO-1001", 0, ListingStatus.ACTIVE, "412 Walnut Street", None, "Cincinnati", "OH", "45202"
    ),
    DemoListing(
        "DEMO-1002",
        0,
        ListingStatus.ACTIVE,
        "18 Observatory Ave",
        "Unit 2",
        "Cincinnati",
        "OH",
        "45208",
    ),
    DemoListing(
        "DEMO-1003",
        0,
        ListingStatus.COMING_SOON,
        "77 Ludlow Ave",
        None,
        "Cincinnati",
        "OH",
        "45220",
    ),
    DemoListing(
        "DEMO-2001",
        1,
        ListingStatus.ACTIVE,
        "1550 Larimer Street",
        "Unit 804",
        "Denver",
        "CO",
        "80202",
    ),
    DemoListing(
        "DEMO-2002", 1, ListingStatus.PENDING, "920 Pearl Street", None, "Denver", "CO", "80203"
    ),
    DemoListing(
        "DEMO-1004", 2, ListingStatus.ACTIVE, "3 Hyde Park Place", None, "Cincinnati", "OH", "45208"
    ),
]


class DemoLockbox(NamedTuple):
    serial_number: str
    model: str
    ble: bool
    agent: int | None  # index into AGENTS; None = free for any agent to assign
    listing: str | None
    region: str | None
    days_on_listing: int = 0


LOCKBOXES = [
    DemoLockbox("DEMO0001", "VBox BLE", True, 0, "DEMO-1001", "CIN", 12),
    DemoLockbox("DEMO0002", "VBox BLE", True, 0, "DEMO-1002", "CIN", 3),
    DemoLockbox("DEMO0003", "Classic Keypad", False, 0, "DEMO-1003", "CIN", 1),
    DemoLockbox("DEMO0004", "VBox BLE", True, 1, "DEMO-2001", "DEN", 20),
    DemoLockbox("DEMO0005", "Classic Keypad", False, 1, None, None),
    DemoLockbox("DEMO0006", "VBox BLE", True, None, None, None),
]


async def load_demo(
    settings: Settings, announce: bool = True, host: str = "127.0.0.1", port: int = 8000
) -> None:
    """Create what is missing of the demo data set; running it again changes nothing else."""
    if settings.production:
        # Known passwords have no place on a production database.
        raise SystemExit("keybin: --demo is for development only (KEYBIN_ENV=production)")
    async with in_transaction():
        for code, name, zone in REGIONS:
            await Region.get_or_create(code=code, defaults={"name": name, "time_zone": zone})
        agents = [await _agent(agent) for agent in AGENTS]
        listings = {row.mls_number: await _listing(row, agents) for row in LISTINGS}
        lockboxes = {row.serial_number: await _lockbox(row, agents, listings) for row in LOCKBOXES}
        contractor = await _contractor()
        await _grants(agents[0], contractor, listings, lockboxes)
    if announce:
        print(sign_in_details(settings, agents, host, port), flush=True)


async def _agent(demo: DemoAgent) -> Account:
    agent = await Account.get_or_none(association=ASSOCIATION, mls_id=demo.mls_id)
    if agent is not None:
        return agent
    key_id = new_key_id()
    while await Account.exists(key_id=key_id):
        key_id = new_key_id()
    agent = await Account.create(
        kind=AccountKind.AGENT,
        key_id=key_id,
        association=ASSOCIATION,
        mls_id=demo.mls_id,
        first_name=demo.first_name,
        last_name=demo.last_name,
        email=demo.email,
        phone=demo.phone,
        email_verified=True,
        status=AccountStatus.ACTIVE,
        password_hash=hash_secret(PASSWORD),
        pin_hash=hash_secret(PIN),
    )
    await events.record(agent, AccountEventKind.IMPORTED, "demo data")
    return agent


async def _listing(demo: DemoListing, agents: list[Account]) -> Listing:
    listing, _ = await Listing.get_or_create(
        mls_number=demo.mls_number,
        defaults={
            "agent": agents[demo.agent],
            "source": ListingSource.IMPORTED,
            "status": demo.status,
            "line1": demo.line1,
            "line2": demo.line2,
            "city": demo.city,
            "state": demo.state,
            "postal_code": demo.postal_code,
        },
    )
    return listing


async def _lockbox(
    demo: DemoLockbox, agents: list[Account], listings: dict[str, Listing]
) -> Lockbox:
    on_listing = demo.listing is not None
    lockbox, _ = await Lockbox.get_or_create(
        serial_number=demo.serial_number,
        defaults={
            "model": demo.model,
            "ble": demo.ble,
            # Random, and kept: made only when the lockbox is.
            "secret": base64.b32encode(os.urandom(20)).decode(),
            "assigned_to": agents[demo.agent] if demo.agent is not None else None,
            "listing": listings[demo.listing] if demo.listing is not None else None,
            "region_id": demo.region,
            "on_listing_since": (clock.now() - timedelta(days=demo.days_on_listing)).date()
            if on_listing
            else None,
        },
    )
    return lockbox


async def _contractor() -> Account:
    contractor = await Account.get_or_none(
        kind=AccountKind.CONTRACTOR, email=CONTRACTOR_EMAIL, deleted_at__isnull=True
    )
    if contractor is not None:
        return contractor
    contractor = await Account.create(
        kind=AccountKind.CONTRACTOR,
        first_name="Casey",
        last_name="Cleaner",
        email=CONTRACTOR_EMAIL,
        phone="+15135550199",
        role=ContractorRole.CLEANER,
        company="Sparkle Home Services",
        email_verified=True,
        status=AccountStatus.ACTIVE,
        password_hash=hash_secret(PASSWORD),
        pin_hash=hash_secret(PIN),
    )
    await events.record(contractor, AccountEventKind.SIGNED_UP, "demo data")
    return contractor


async def _grants(
    agent: Account,
    contractor: Account,
    listings: dict[str, Listing],
    lockboxes: dict[str, Lockbox],
) -> None:
    """One grant open now and one for tomorrow morning; their windows follow the clock."""
    now = clock.now().replace(microsecond=0)
    hour = timedelta(hours=1)
    tomorrow = (now + timedelta(days=1)).replace(hour=14, minute=0, second=0)
    windows = [
        (
            "demo-active",
            "DEMO-1001",
            "DEMO0001",
            now - timedelta(hours=1),
            now + timedelta(hours=8),
        ),
        ("demo-tomorrow", "DEMO-1002", "DEMO0002", tomorrow, tomorrow + 3 * hour),
    ]
    for key, listing, lockbox, starts_at, ends_at in windows:
        grant = await Grant.get_or_none(granted_by=agent, idempotency_key=key)
        if grant is None:
            await Grant.create(
                listing=listings[listing],
                lockbox=lockboxes[lockbox],
                granted_by=agent,
                grantee=contractor,
                grantee_email=contractor.email,
                starts_at=starts_at,
                ends_at=ends_at,
                idempotency_key=key,
            )
        elif grant.revoked_at is None and grant.ends_at <= now:
            # An old demo database: move the windows so the demo still shows both states.
            await Grant.filter(id=grant.id).update(starts_at=starts_at, ends_at=ends_at)


def sign_in_details(settings: Settings, agents: list[Account], host: str, port: int) -> str:
    shown_host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    url = f"http://{shown_host}:{port}/graphql"
    example = {
        "query": "mutation($input: SignInInput!) { signIn(input: $input) "
        "{ token userErrors { code message } } }",
        "variables": {
            "input": {
                "login": agents[0].key_id,
                "password": PASSWORD,
                "deviceId": "demo-curl",
                "deviceName": "curl",
            }
        },
    }
    body = json.dumps(example)
    lines = [
        "",
        "keybin demo data is loaded.",
        f"  GraphQL API: {url}",
    ]
    if not settings.production:
        lines.append("  GraphiQL (development): open that URL in a browser")
    lines += [
        "",
        f"  Demo sign-ins (password {PASSWORD}, PIN {PIN}):",
    ]
    for agent in agents:
        lines.append(
            f"    agent       Key ID {agent.key_id}  or  {agent.email}  ({agent.full_name})"
        )
    lines += [
        "      (the first two share an email: one person's linked accounts;"
        " sign in by Key ID to pick one)",
        f"    contractor  {CONTRACTOR_EMAIL}",
        "",
        "  Try it:",
        f"    curl -s {url} -H 'Content-Type: application/json' \\",
        f"      -d '{body}'",
        "",
    ]
    return "\n".join(lines)
