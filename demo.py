"""Demo data for `keybin serve --demo`: something on every screen of the API and the console."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

import pyotp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tortoise.transactions import in_transaction

from ble.b64 import b64url_encode
from ble.client import find_and_open
from ble.inmemory import InMemoryTransport, SimulatedAir
from ble.jwks import raw_public_key
from ble.scan import scan
from ble.simulator import LockboxSimulator
from core import clock
from core.errors import DomainError
from core.security import hash_secret_async, normalize_answer, seal
from importers.members import new_key_id
from models.access import AccessEvent
from models.accounts import Account, Device, Invitation, SecurityAnswer
from models.enums import (
    AccountEventKind,
    AccountKind,
    AccountStatus,
    ContractorRole,
    ListingSource,
    ListingStatus,
    OutboxChannel,
    StaffRole,
)
from models.grants import Grant
from models.listings import Listing, Lockbox, Region
from models.outbox import OutboxMessage
from models.staff import Staff
from resolvers import events
from resolvers.credentials import sync_credentials
from resolvers.grants import GrantRequest, grant_access
from resolvers.lockbox_events import report_lockbox_events
from resolvers.lockboxes import zone_of
from resolvers.signing_keys import keyring
from resolvers.staff import TOTP_ISSUER
from resolvers.step_up import Confirmation
from settings import Settings

PASSWORD = "Demo1234"
PIN = "1234"
ASSOCIATION = "keybin demo MLS"
CONTRACTOR_EMAIL = "casey.cleaner@example.com"
# Granted access with no account yet: the invitation waits for whoever signs up from it.
INVITEE_EMAIL = "riley.roofer@example.com"
SECURITY_ANSWERS = (
    ("What was the name of your first pet?", "Biscuit"),
    ("In which city were you born?", "Dayton"),
)
STAFF_EMAIL = "sam.support@example.com"
STAFF_NAME = "Sam Support"
# The demo contractor's phone, which opened a simulated lockbox while the demo loaded.
DEMO_PHONE = "demo-phone"
VISITED_LOCKBOX = "DEMO0001"
log = logging.getLogger("keybin.demo")
_INVITATION_LINK = re.compile(r"\S+/signup\?invitation=[\w-]+")

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
    # No lockbox on it: granting access asks for one first (DEMO0006 is free to assign).
    DemoListing(
        "DEMO-1005",
        0,
        ListingStatus.ACTIVE,
        "9 Erkenbrecher Ave",
        None,
        "Cincinnati",
        "OH",
        "45229",
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


@dataclass(frozen=True)
class ConsoleSignIn:
    email: str
    password: str | None  # None once its holder chose their own at the first sign-in
    totp_secret: str

    @property
    def otpauth_uri(self) -> str:
        return pyotp.TOTP(self.totp_secret).provisioning_uri(
            name=self.email, issuer_name=TOTP_ISSUER
        )


@dataclass(frozen=True)
class Demo:
    """What `keybin serve --demo` announces."""

    agents: list[Account]
    console: ConsoleSignIn
    invitation_link: str | None  # None once someone signed up from it


class _Hashes:
    """argon2 is slow on purpose: each demo secret is hashed once, and only when needed."""

    def __init__(self) -> None:
        self._done: dict[str, str] = {}

    async def of(self, value: str) -> str:
        if value not in self._done:
            self._done[value] = await hash_secret_async(value)
        return self._done[value]


async def load_demo(
    settings: Settings, announce: bool = True, host: str = "127.0.0.1", port: int = 8000
) -> Demo:
    """Create what is missing of the demo data set; running it again changes nothing else."""
    if settings.production:
        # Known passwords have no place on a production database.
        raise SystemExit("keybin: --demo is for development only (KEYBIN_ENV=production)")
    hashes = _Hashes()
    for code, name, zone in REGIONS:
        await Region.get_or_create(code=code, defaults={"name": name, "time_zone": zone})
    agents = [await _agent(agent, hashes) for agent in AGENTS]
    listings = {row.mls_number: await _listing(row, agents) for row in LISTINGS}
    lockboxes = {row.serial_number: await _lockbox(row, agents, listings) for row in LOCKBOXES}
    contractor = await _contractor(hashes)
    await _security_answers(settings, contractor, hashes)
    await _grants(settings, agents[0], listings)
    await _open_lockbox(settings, contractor, lockboxes[VISITED_LOCKBOX])
    demo = Demo(agents, await _console_sign_in(settings), await _invitation_link())
    if announce:
        print(sign_in_details(settings, demo, host, port), flush=True)
    return demo


async def _agent(demo: DemoAgent, hashes: _Hashes) -> Account:
    agent = await Account.get_or_none(association=ASSOCIATION, mls_id=demo.mls_id)
    if agent is not None:
        return agent
    key_id = new_key_id()
    while await Account.exists(key_id=key_id):
        key_id = new_key_id()
    password_hash, pin_hash = await hashes.of(PASSWORD), await hashes.of(PIN)
    async with in_transaction():
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
            password_hash=password_hash,
            pin_hash=pin_hash,
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
    # Held and listed since the listing's first day (records are filed by these times).
    since = clock.now() - timedelta(days=demo.days_on_listing if on_listing else 0)
    lockbox, _ = await Lockbox.get_or_create(
        serial_number=demo.serial_number,
        defaults={
            "model": demo.model,
            "ble": demo.ble,
            # Random, and kept: made only when the lockbox is.
            "secret": base64.b32encode(os.urandom(20)).decode(),
            "assigned_to": agents[demo.agent] if demo.agent is not None else None,
            "assigned_at": since if demo.agent is not None else None,
            "listing": listings[demo.listing] if demo.listing is not None else None,
            "listed_at": since if on_listing else None,
            "region_id": demo.region,
            "on_listing_since": (clock.now() - timedelta(days=demo.days_on_listing)).date()
            if on_listing
            else None,
        },
    )
    return lockbox


async def _contractor(hashes: _Hashes) -> Account:
    contractor = await Account.get_or_none(
        kind=AccountKind.CONTRACTOR, email=CONTRACTOR_EMAIL, deleted_at__isnull=True
    )
    if contractor is not None:
        return contractor
    password_hash, pin_hash = await hashes.of(PASSWORD), await hashes.of(PIN)
    async with in_transaction():
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
            password_hash=password_hash,
            pin_hash=pin_hash,
        )
        await events.record(contractor, AccountEventKind.SIGNED_UP, "demo data")
    return contractor


async def _security_answers(settings: Settings, contractor: Account, hashes: _Hashes) -> None:
    """What support asks a caller who says they are the demo contractor."""
    if await SecurityAnswer.exists(account_id=contractor.id):
        return
    rows = [
        SecurityAnswer(
            account_id=contractor.id,
            question=question,
            answer_hash=await hashes.of(normalize_answer(answer)),
            answer_sealed=seal(settings.secret_key, answer),
        )
        for question, answer in SECURITY_ANSWERS
    ]
    await SecurityAnswer.bulk_create(rows)


async def _grants(settings: Settings, agent: Account, listings: dict[str, Listing]) -> None:
    """One grant open now, one for tomorrow, one waiting for a new contractor: each made by
    grantAccess itself, so each has its messages, and the last its invitation mail."""
    now = clock.now().replace(microsecond=0)
    hour = timedelta(hours=1)
    tomorrow = (now + timedelta(days=1)).replace(hour=14, minute=0, second=0)
    windows = [
        ("demo-active", "DEMO-1001", CONTRACTOR_EMAIL, now, now + 8 * hour),
        ("demo-tomorrow", "DEMO-1002", CONTRACTOR_EMAIL, tomorrow, tomorrow + 3 * hour),
        ("demo-invitation", "DEMO-1001", INVITEE_EMAIL, tomorrow, tomorrow + 2 * hour),
    ]
    for key, listing, email, starts_at, ends_at in windows:
        grant = await Grant.get_or_none(granted_by=agent, idempotency_key=key)
        if grant is None:
            request = GrantRequest(
                listing_pk=listings[listing].id,
                grantee_email=email,
                starts_at=starts_at,
                ends_at=ends_at,
                confirmation=Confirmation(pin=PIN),
                idempotency_key=key,
            )
            try:
                await grant_access(settings, agent, request)
            except DomainError as error:
                # A demo database someone has used: a changed PIN, a suspended agent.
                log.warning("demo grant %s not made: %s", key, error.message)
        elif grant.revoked_at is None and grant.ends_at <= now:
            # An old demo database: move the windows so the demo still shows each state.
            await Grant.filter(id=grant.id).update(starts_at=starts_at, ends_at=ends_at)


async def _open_lockbox(settings: Settings, contractor: Account, lockbox: Lockbox) -> None:
    """The demo contractor presses ENT on the lockbox of the grant open now, finds it, opens it
    and uploads its log, through ble/ and a simulated lockbox, as the app does."""
    if await AccessEvent.exists(lockbox_id=lockbox.id):
        return
    phone_key = Ed25519PrivateKey.generate()
    await Device.update_or_create(
        account_id=contractor.id,
        device_id=DEMO_PHONE,
        defaults={
            "name": "Demo phone (simulated)",
            "public_key": b64url_encode(raw_public_key(phone_key.public_key())),
        },
    )
    try:
        bundle = await sync_credentials(settings, contractor, DEMO_PHONE)
    except DomainError as error:  # the demo contractor suspended in the console, say
        log.warning("the demo contractor's visit was not made: %s", error.message)
        return
    simulator = LockboxSimulator(
        lockbox.serial_number,
        lockbox.secret,
        keyring(settings).published(),
        clock.now,
        time_zone=await zone_of(lockbox),
    )
    simulator.press_ent()
    [found] = await scan(SimulatedAir([simulator]))
    visit = await find_and_open(
        found.serial,
        [credential.token for credential in bundle.credentials],
        phone_key,
        lambda _: InMemoryTransport(simulator),
        revocations=[revocations.token for revocations in bundle.revocations],
    )
    await report_lockbox_events(found.serial, visit.records)


async def _console_sign_in(settings: Settings) -> ConsoleSignIn:
    password = _staff_password(settings.secret_key)
    staff = await Staff.get_or_none(email=STAFF_EMAIL)
    if staff is None:
        # As `keybin staff add` makes one, with a password every start can show again. A
        # SYSADMIN sees every console section, the staff list included.
        staff = await Staff.create(
            email=STAFF_EMAIL,
            name=STAFF_NAME,
            role=StaffRole.SYSADMIN,
            password_hash=await hash_secret_async(password),
            totp_secret=pyotp.random_base32(),
            must_change_password=True,
        )
    shown = password if staff.must_change_password else None
    return ConsoleSignIn(staff.email, shown, staff.totp_secret)


def _staff_password(secret_key: str) -> str:
    """The demo staff member's one-time password, the same at every start until it is changed:
    derived from SECRET_KEY, so nothing but its hash is stored."""
    digest = hmac.new(secret_key.encode(), b"keybin demo console password", "sha256").digest()
    return "Demo-" + base64.b32encode(digest).decode()[:10].lower() + "7"


async def _invitation_link() -> str | None:
    """The link in the invitation mail of the grant waiting for a new contractor."""
    if await Invitation.exists(email=INVITEE_EMAIL, accepted_at__isnull=False):
        return None
    mails = await OutboxMessage.filter(
        channel=OutboxChannel.EMAIL, recipient=INVITEE_EMAIL
    ).order_by("-id")
    for mail in mails:
        if match := _INVITATION_LINK.search(str(mail.payload.get("text", ""))):
            return match.group(0)
    return None


def sign_in_details(settings: Settings, demo: Demo, host: str, port: int) -> str:
    shown_host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    base = f"http://{shown_host}:{port}"
    url = f"{base}/graphql"
    agents = demo.agents
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
    answers = "; ".join(f"{question} {answer}" for question, answer in SECURITY_ANSWERS)
    lines += [
        "      (the first two share an email: one person's linked accounts;"
        " sign in by Key ID to pick one)",
        f"    contractor  {CONTRACTOR_EMAIL}  (security answers: {answers})",
        "",
        "  What is there to try:",
        "    - grants with their Message Center messages: one open now, one tomorrow;",
        f"    - an access event: the contractor opened lockbox {VISITED_LOCKBOX} (simulated)"
        " at 412 Walnut Street;",
        "    - listing DEMO-1005 (9 Erkenbrecher Ave) has no lockbox: assign DEMO0006 to it;",
        *_invitation_lines(demo.invitation_link),
        "",
        *_console_lines(demo.console, base),
        "",
        "  Try it:",
        f"    curl -s {url} -H 'Content-Type: application/json' \\",
        f"      -d '{body}'",
        "",
    ]
    return "\n".join(lines)


def _invitation_lines(link: str | None) -> list[str]:
    if link is None:
        return [f"    - the invitation to {INVITEE_EMAIL} was accepted."]
    return [
        f"    - an invitation waits for {INVITEE_EMAIL} (its mail is in the log below):",
        f"        {link}",
    ]


def _console_lines(console: ConsoleSignIn, base: str) -> list[str]:
    password = (
        f"one-time password {console.password} (you choose your own at the first sign-in)"
        if console.password
        else "password: the one chosen at the first sign-in"
    )
    code = f"import pyotp; print(pyotp.TOTP('{console.totp_secret}').now())"
    return [
        f"  Support console: {base}/console/",
        f"    staff       {console.email}  ({STAFF_NAME}, SYSADMIN)",
        f"                {password}",
        f"                TOTP secret {console.totp_secret}  (add to an authenticator app:",
        f"                {console.otpauth_uri})",
        f'                a code now: {sys.executable} -c "{code}"',
    ]
