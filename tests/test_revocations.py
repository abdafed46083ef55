"""Revocation lists end to end: signed by the server, carried by phones, kept by the lockbox."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TypeVar

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble.b64 import b64url_decode, b64url_encode
from ble.client import LockboxClient, Visit, find_and_open
from ble.inmemory import InMemoryTransport
from ble.jwks import parse_jwks, raw_public_key
from ble.outcomes import AccessOutcome
from ble.revocation import (
    RevocationsVerdict,
    decode_revocations,
    peek_revocations,
    sign_revocations,
)
from ble.simulator import LockboxSimulator
from core import clock
from core.ids import to_global_id
from models.access import AccessEvent
from models.accounts import Account
from models.grants import Grant
from models.listings import Lockbox
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_listing,
    make_lockbox,
)
from tests.sql_count import StatementCounter

T = TypeVar("T")

SYNC = """
mutation Sync($deviceId: String!) {
  syncCredentials(input: {deviceId: $deviceId}) {
    bundle {
      issuedAt
      credentials { token lockboxSerial }
      revocations { lockboxSerial token issuedAt }
    }
    userErrors { code field message }
  }
}
"""
REVOKE = """
mutation Revoke($id: ID!) {
  revokeAccess(input: {grantId: $id}) { grant { status } userErrors { code field } }
}
"""
REPORT = """
mutation Report($serial: String!, $records: [String!]!) {
  reportLockboxEvents(input: {lockboxSerial: $serial, records: $records}) {
    accepted userErrors { code }
  }
}
"""
HOURS = 3600


@dataclass
class Phone:
    account: Account
    device_id: str
    key: Ed25519PrivateKey
    token: str


@dataclass(frozen=True)
class Bundle:
    credentials: list[str]
    revocations: list[str]
    serials: list[str]  # of the revocation lists, in the order served


@dataclass
class Scene:
    gql: GraphQLClient
    agent: Account
    agent_token: str
    lockbox: Lockbox
    simulator: LockboxSimulator


async def sign_in_phone(gql: GraphQLClient, account: Account, device_id: str) -> Phone:
    key = Ed25519PrivateKey.generate()
    public_key = b64url_encode(raw_public_key(key.public_key()))
    token = await gql.sign_in(account.email or "", device_id=device_id, devicePublicKey=public_key)
    return Phone(account, device_id, key, token)


async def sync(gql: GraphQLClient, phone: Phone) -> Bundle:
    payload = (await gql(SYNC, {"deviceId": phone.device_id}, token=phone.token))["syncCredentials"]
    assert payload["userErrors"] == []
    bundle = payload["bundle"]
    lists = bundle["revocations"]
    assert all(item["issuedAt"] == bundle["issuedAt"] for item in lists)
    return Bundle(
        [c["token"] for c in bundle["credentials"]],
        [item["token"] for item in lists],
        [item["lockboxSerial"] for item in lists],
    )


async def trusted_simulator(http: httpx.AsyncClient, lockbox: Lockbox) -> LockboxSimulator:
    """The lockbox, provisioned with the keys the server publishes; its clock is the server's."""
    document = (await http.get("/.well-known/jwks.json")).json()
    return LockboxSimulator(
        lockbox.serial_number, lockbox.secret, parse_jwks(document), clock.now, "America/New_York"
    )


async def grant(
    scene: Scene, contractor: Account, start: float, end: float, lockbox: Lockbox | None = None
) -> Grant:
    return await grant_on(lockbox or scene.lockbox, scene.agent, contractor, start, end)


async def grant_on(
    lockbox: Lockbox, agent: Account, contractor: Account, start: float, end: float
) -> Grant:
    now = clock.now()
    return await Grant.create(
        listing_id=lockbox.listing_id,  # type: ignore[attr-defined]
        lockbox=lockbox,
        granted_by=agent,
        grantee_email=contractor.email,
        grantee=contractor,
        starts_at=now + timedelta(seconds=start),
        ends_at=now + timedelta(seconds=end),
    )


async def revoke(scene: Scene, revoked: Grant) -> None:
    variables = {"id": to_global_id("Grant", revoked.id)}
    payload = (await scene.gql(REVOKE, variables, token=scene.agent_token))["revokeAccess"]
    assert payload == {"grant": {"status": "REVOKED"}, "userErrors": []}


async def visit(scene: Scene, phone: Phone, bundle: Bundle) -> Visit:
    """The app at the lockbox: the real client, with everything its last sync brought."""
    return await find_and_open(
        scene.lockbox.serial_number,
        bundle.credentials,
        phone.key,
        lambda _: InMemoryTransport(scene.simulator),
        now=clock.now(),
        revocations=bundle.revocations,
    )


async def deliver(simulator: LockboxSimulator, token: str) -> RevocationsVerdict:
    """One connection that only hands over a list: anyone in range may do that."""
    key = Ed25519PrivateKey.generate()
    async with LockboxClient(InMemoryTransport(simulator), key, timeout=2) as client:
        return await client.deliver_revocations(token)


def list_for(bundle: Bundle, serial: str) -> str:
    [token] = [t for t, s in zip(bundle.revocations, bundle.serials, strict=True) if s == serial]
    return token


@pytest.fixture
async def scene(gql: GraphQLClient, http: httpx.AsyncClient) -> Scene:
    agent = await make_agent(first_name="Alice", last_name="Agent")
    lockbox = await make_lockbox(agent, await make_listing(agent, line1="12 Elm Street"))
    agent_token = await gql.sign_in(agent.email or "", device_id="agent-office")
    return Scene(gql, agent, agent_token, lockbox, await trusted_simulator(http, lockbox))


# ---- the revocation reaches the lockbox through another phone -------------------------


@pytest.mark.parametrize("carrier", ["another contractor", "the listing agent"])
async def test_a_revocation_carried_by_another_phone_refuses_the_old_credential(
    scene: Scene, gql: GraphQLClient, carrier: str
) -> None:
    # given contractor A synced a credential for a grant starting in two hours
    carl = await make_contractor(first_name="Carl")
    revoked = await grant(scene, carl, 2 * HOURS, 5 * HOURS)
    phone_a = await sign_in_phone(gql, carl, "carl-phone")
    before = await sync(gql, phone_a)
    assert len(before.credentials) == 1
    # and the agent revokes the grant while A's phone is offline
    await revoke(scene, revoked)
    # and someone else with a reason to be at the lockbox syncs, then visits it first
    if carrier == "another contractor":
        dana = await make_contractor(first_name="Dana")
        await grant(scene, dana, -HOURS, 3 * HOURS)
        phone_b = await sign_in_phone(gql, dana, "dana-phone")
    else:
        phone_b = await sign_in_phone(gql, scene.agent, "agent-phone")
    b_visit = await visit(scene, phone_b, await sync(gql, phone_b))
    # when A arrives at the start time with the bundle synced before the revocation
    clock.travel(2 * HOURS)
    a_visit = await visit(scene, phone_a, before)
    records = scene.simulator.pending_records()
    uploaded = (
        await gql(
            REPORT,
            {"serial": scene.lockbox.serial_number, "records": records},
            token=phone_b.token,
        )
    )["reportLockboxEvents"]
    # then B's visit delivered the list, and A's older one changed nothing
    assert (b_visit.outcome, b_visit.revocations) == (
        AccessOutcome.OPENED,
        RevocationsVerdict.ACCEPTED,
    )
    assert a_visit.revocations is RevocationsVerdict.REFUSED_STALE
    assert a_visit.outcome is AccessOutcome.DENIED_REVOKED
    assert scene.simulator.open_count == 1
    assert scene.simulator.revoked() == {to_global_id("Grant", revoked.id)}
    # and the refusal is in the listing agent's log, naming the revoked grant
    assert uploaded == {"accepted": 2, "userErrors": []}
    denied = await AccessEvent.get(lockbox_id=scene.lockbox.id, grant_id=revoked.id)
    assert denied.outcome.value == "DENIED_REVOKED"


async def test_without_the_list_the_old_credential_would_open(
    scene: Scene, gql: GraphQLClient
) -> None:
    # given the same revocation, but nobody has been to the lockbox since
    carl = await make_contractor()
    revoked = await grant(scene, carl, 2 * HOURS, 5 * HOURS)
    phone = await sign_in_phone(gql, carl, "carl-phone")
    before = await sync(gql, phone)
    await revoke(scene, revoked)
    # when
    clock.travel(2 * HOURS)
    outcome = (await visit(scene, phone, before)).outcome
    # then: the lockbox is offline, so only a carried list can tell it
    assert outcome is AccessOutcome.OPENED


async def test_the_revoked_contractors_own_next_sync_carries_the_list(
    scene: Scene, gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    # given
    carl = await make_contractor()
    revoked = await grant(scene, carl, 2 * HOURS, 5 * HOURS)
    phone = await sign_in_phone(gql, carl, "carl-phone")
    before = await sync(gql, phone)
    await revoke(scene, revoked)
    # when
    after = await sync(gql, phone)
    # then no credential, but the lockbox's list, naming the grant, signed like credentials
    trusted = parse_jwks((await http.get("/.well-known/jwks.json")).json())
    serial = scene.lockbox.serial_number
    assert after.credentials == [] and after.serials == [serial]
    old = decode_revocations(list_for(before, serial), trusted)
    new = decode_revocations(list_for(after, serial), trusted)
    assert (old.seq, old.jti) == (0, frozenset())
    assert (new.seq, new.jti) == (1, {to_global_id("Grant", revoked.id)})
    assert (new.aud, new.iss) == (serial, "http://keybin.test")
    assert new.exp - new.iat == 24 * HOURS
    assert abs(new.iat - clock.now().timestamp()) < 5
    # and that list, delivered by A's own app, is taken
    assert await deliver(scene.simulator, list_for(after, serial)) is RevocationsVerdict.ACCEPTED
    assert scene.simulator.revoked() == {to_global_id("Grant", revoked.id)}


# ---- lists that change nothing --------------------------------------------------------


@dataclass
class Held:
    """A lockbox holding the list that names a revoked grant; the bundle that brought it,
    and one synced before the revocation."""

    revoked: Grant
    bundle: Bundle
    before: Bundle
    phone: Phone


@pytest.fixture
async def held(scene: Scene, gql: GraphQLClient) -> Held:
    carl = await make_contractor()
    revoked = await grant(scene, carl, 2 * HOURS, 5 * HOURS)
    phone = await sign_in_phone(gql, scene.agent, "agent-phone")
    before = await sync(gql, phone)
    await revoke(scene, revoked)
    bundle = await sync(gql, phone)
    assert (await visit(scene, phone, bundle)).revocations is RevocationsVerdict.ACCEPTED
    return Held(revoked, bundle, before, phone)


def unchanged(scene: Scene, held: Held) -> bool:
    simulator = scene.simulator
    return (simulator.revocations_seq, simulator.revoked()) == (
        1,
        {to_global_id("Grant", held.revoked.id)},
    )


@pytest.mark.parametrize("forgery", ["another key, the server's kid", "an unknown kid"])
async def test_a_forged_list_is_refused(scene: Scene, held: Held, forgery: str) -> None:
    # given the genuine list rewritten to forgive the grant, newer, and signed by someone else
    genuine = list_for(held.bundle, scene.lockbox.serial_number)
    kid = _kid(genuine) if forgery.startswith("another") else "not-a-published-key"
    forged = sign_revocations(
        Ed25519PrivateKey.generate(),
        kid,
        replace(peek_revocations(genuine), seq=99, jti=frozenset()),
    )
    # when
    verdict = await deliver(scene.simulator, forged)
    # then
    assert verdict is RevocationsVerdict.REFUSED_INVALID
    assert unchanged(scene, held)


async def test_a_tampered_list_is_refused(scene: Scene, held: Held) -> None:
    # given the genuine header and signature around an edited payload
    header, _, signature = list_for(held.bundle, scene.lockbox.serial_number).split(".")
    edited = replace(peek_revocations(list_for(held.bundle, scene.lockbox.serial_number)), seq=9)
    payload = sign_revocations(Ed25519PrivateKey.generate(), "k", edited).split(".")[1]
    # when
    verdict = await deliver(scene.simulator, f"{header}.{payload}.{signature}")
    # then
    assert verdict is RevocationsVerdict.REFUSED_INVALID
    assert unchanged(scene, held)


async def test_a_list_for_another_lockbox_is_refused(
    scene: Scene, held: Held, gql: GraphQLClient
) -> None:
    # given a genuine, newer list of another of the agent's lockboxes (two revocations there)
    other = await make_lockbox(scene.agent, await make_listing(scene.agent))
    for _ in range(2):
        await revoke(scene, await grant(scene, await make_contractor(), HOURS, 2 * HOURS, other))
    bundle = await sync(gql, held.phone)
    other_list = list_for(bundle, other.serial_number)
    assert peek_revocations(other_list).seq == 2
    # when
    verdict = await deliver(scene.simulator, other_list)
    # then
    assert verdict is RevocationsVerdict.REFUSED_WRONG_LOCKBOX
    assert unchanged(scene, held)


async def test_an_expired_list_is_refused_even_when_newer(
    scene: Scene, held: Held, gql: GraphQLClient
) -> None:
    # given a newer list (a second revocation) that stays in a phone for a day
    await revoke(scene, await grant(scene, await make_contractor(), 30 * HOURS, 40 * HOURS))
    newer = list_for(await sync(gql, held.phone), scene.lockbox.serial_number)
    assert peek_revocations(newer).seq == 2
    # when
    clock.travel(24 * HOURS)
    verdict = await deliver(scene.simulator, newer)
    # then
    assert verdict is RevocationsVerdict.REFUSED_EXPIRED
    assert unchanged(scene, held)


async def test_an_older_list_is_refused_and_the_same_one_again_is_up_to_date(
    scene: Scene, held: Held
) -> None:
    # given the list synced before the revocation, still within its day
    serial = scene.lockbox.serial_number
    older, same = list_for(held.before, serial), list_for(held.bundle, serial)
    # when
    verdicts = [await deliver(scene.simulator, token) for token in (older, same)]
    # then
    assert verdicts == [RevocationsVerdict.REFUSED_STALE, RevocationsVerdict.UP_TO_DATE]
    assert unchanged(scene, held)


# ---- what the server lists, for whom ---------------------------------------------------


async def test_the_list_names_revoked_grants_whose_credentials_may_still_be_live(
    scene: Scene, gql: GraphQLClient
) -> None:
    # given revocations of every age on the lockbox
    now = clock.now()
    carl = await make_contractor()
    fresh = await grant(scene, carl, 2 * HOURS, 5 * HOURS)
    long_grant = await grant(scene, carl, 2 * HOURS, 20 * 24 * HOURS)
    await revoke(scene, fresh)
    await revoke(scene, long_grant)
    await grant(scene, carl, 3 * HOURS, 4 * HOURS)  # not revoked
    # revoked two days ago: every credential signed before that has expired
    old = await grant(scene, carl, 2 * HOURS, 20 * 24 * HOURS)
    await Grant.filter(id=old.id).update(revoked_at=now - timedelta(days=2))
    # revoked an hour ago, and over for two hours now
    over = await grant(scene, carl, -5 * HOURS, -2 * HOURS)
    await Grant.filter(id=over.id).update(revoked_at=now - timedelta(hours=1))
    phone = await sign_in_phone(gql, scene.agent, "agent-phone")
    # when
    listed = peek_revocations(list_for(await sync(gql, phone), scene.lockbox.serial_number))
    clock.travel(5 * HOURS + 3600 + 1)  # the fresh grant has ended, and the lockbox margin too
    later = peek_revocations(list_for(await sync(gql, phone), scene.lockbox.serial_number))
    # then every revocation counts towards seq, only the live ones are named
    assert listed.seq == later.seq == 4
    assert listed.jti == {to_global_id("Grant", fresh.id), to_global_id("Grant", long_grant.id)}
    assert later.jti == {to_global_id("Grant", long_grant.id)}


async def test_who_gets_which_lists(scene: Scene, gql: GraphQLClient) -> None:
    # given an agent with two BLE lockboxes and a classic one; a contractor with a grant
    # on one, a revoked grant on another, and a grant on a third that starts in two days
    other = await make_lockbox(scene.agent, await make_listing(scene.agent))
    await make_lockbox(scene.agent, await make_listing(scene.agent), ble=False)
    someone = await make_agent()
    elsewhere = await make_lockbox(someone, await make_listing(someone))
    carl = await make_contractor()
    await grant(scene, carl, -HOURS, HOURS)
    await revoke(scene, await grant(scene, carl, HOURS, 2 * HOURS, other))
    await grant_on(elsewhere, someone, carl, 48 * HOURS, 50 * HOURS)
    bystander = await make_contractor()
    # when
    agent_bundle = await sync(gql, await sign_in_phone(gql, scene.agent, "agent-phone"))
    carl_bundle = await sync(gql, await sign_in_phone(gql, carl, "carl-phone"))
    nobody = await sync(gql, await sign_in_phone(gql, bystander, "b-phone"))
    # then
    mine = sorted([scene.lockbox.serial_number, other.serial_number])
    assert agent_bundle.serials == mine
    assert carl_bundle.serials == mine
    assert [peek_revocations(t).aud for t in carl_bundle.revocations] == mine
    assert nobody == Bundle([], [], [])


@pytest.mark.parametrize("kind", ["agent", "contractor"])
async def test_lists_cost_the_same_sql_for_2_and_8_lockboxes(
    gql: GraphQLClient, sql: StatementCounter, kind: str
) -> None:
    counts = []
    for lockboxes in (2, 8):
        # given an agent whose lockboxes each have a revoked grant and a current one
        agent = await make_agent()
        carl = await make_contractor()
        for _ in range(lockboxes):
            lockbox = await make_lockbox(agent, await make_listing(agent))
            gone = await grant_on(lockbox, agent, carl, HOURS, 2 * HOURS)
            await Grant.filter(id=gone.id).update(revoked_at=clock.now())
            await grant_on(lockbox, agent, carl, -HOURS, 2 * HOURS)
        phone = await sign_in_phone(gql, agent if kind == "agent" else carl, "phone")
        # when
        bundle = await sql.count(sync(gql, phone))
        # then
        assert len(bundle.revocations) == lockboxes
        counts.append(len(sql.statements))
    assert counts[0] > 0, "the counter must see the request's statements"
    assert counts[0] == counts[1], sql.statements


def _kid(token: str) -> str:
    header = token.split(".")[0]
    kid: str = json.loads(b64url_decode(header))["kid"]
    return kid
