"""Opening a lockbox end to end: credentials from the API, the real client, the simulator, the log."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble.b64 import b64url_encode
from ble.client import (
    UPLOAD_BATCH,
    LockboxClient,
    Upload,
    UploadFailed,
    Visit,
    find_and_open,
    receipts_for,
)
from ble.credential import peek_claims, sign_credential
from ble.framing import Reassembler, frame
from ble.gatt import COMMAND_UUID, RESPONSE_UUID
from ble.inmemory import InMemoryTransport
from ble.jwks import parse_jwks, raw_public_key
from ble.messages import OpenRequest, encode_request, read_outcome
from ble.outcomes import AccessOutcome
from ble.receipt import ReceiptVerdict, decode_receipt
from ble.records import peek_record, verify_record
from ble.simulator import LockboxSimulator
from ble.transport import Transport, TransportError
from core import clock
from core.ids import to_global_id
from models.access import AccessEvent
from models.accounts import Account
from models.enums import AccessMethod, AccountStatus
from models.enums import AccessOutcome as StoredOutcome
from models.grants import Grant
from models.listings import Listing, Lockbox
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_listing,
    make_lockbox,
)
from tests.smtp import free_port

SYNC = """
mutation Sync($deviceId: String!) {
  syncCredentials(input: {deviceId: $deviceId}) {
    bundle { issuedAt expiresAt credentials { token lockboxSerial notBefore expiresAt grant { id } } }
    userErrors { code field message }
  }
}
"""
REPORT = """
mutation Report($serial: String!, $records: [String!]!) {
  reportLockboxEvents(input: {lockboxSerial: $serial, records: $records}) {
    accepted duplicates userErrors { code field message }
  }
}
"""
REPORT_RECEIPT = """
mutation Report($serial: String!, $records: [String!]!) {
  reportLockboxEvents(input: {lockboxSerial: $serial, records: $records}) {
    accepted receipt userErrors { code field message }
  }
}
"""
UPLOAD = """
mutation Report($serial: String!, $records: [String!]!) {
  reportLockboxEvents(input: {lockboxSerial: $serial, records: $records}) {
    accepted duplicates receipt userErrors { code field message }
  }
}
"""
ZONE = ZoneInfo("America/New_York")  # the factories' region
ACCESS_LOG = """
query Log($from: DateTime!, $to: DateTime!) {
  accessLog(from: $from, to: $to) {
    edges { node { outcome method actorName grant { id } lockbox { serialNumber } } }
  }
}
"""
MESSAGES = "{ me { messages(first: 20) { edges { node { kind title body grant { id } } } } } }"


@dataclass
class Phone:
    """A contractor's (or agent's) app: its device key and its session."""

    account: Account
    device_id: str
    key: Ed25519PrivateKey
    token: str


@dataclass
class Scene:
    agent: Account
    contractor: Account
    listing: Listing
    lockbox: Lockbox
    simulator: LockboxSimulator
    gql: GraphQLClient


async def sign_in_phone(gql: GraphQLClient, account: Account, device_id: str = "phone-1") -> Phone:
    key = Ed25519PrivateKey.generate()
    public_key = b64url_encode(raw_public_key(key.public_key()))
    token = await gql.sign_in(account.email or "", device_id=device_id, devicePublicKey=public_key)
    return Phone(account, device_id, key, token)


async def trusted_simulator(
    http: httpx.AsyncClient, lockbox: Lockbox, secret: str | None = None
) -> LockboxSimulator:
    """The lockbox, provisioned with the keys the server publishes; its clock is the server's.
    Its secret is the one the server holds for it unless `secret` says otherwise."""
    document = (await http.get("/.well-known/jwks.json")).json()
    return LockboxSimulator(
        lockbox.serial_number,
        secret or lockbox.secret,
        parse_jwks(document),
        clock.now,
        "America/New_York",
    )


async def make_grant(
    agent: Account,
    contractor: Account,
    lockbox: Lockbox,
    start: timedelta,
    end: timedelta,
    **fields: Any,
) -> Grant:
    now = clock.now()
    return await Grant.create(
        listing_id=lockbox.listing_id,  # type: ignore[attr-defined]
        lockbox=lockbox,
        granted_by=agent,
        grantee_email=contractor.email,
        grantee=contractor,
        starts_at=now + start,
        ends_at=now + end,
        **fields,
    )


async def sync(gql: GraphQLClient, phone: Phone) -> dict[str, Any]:
    data = await gql(SYNC, {"deviceId": phone.device_id}, token=phone.token)
    payload: dict[str, Any] = data["syncCredentials"]
    return payload


async def tokens_of(gql: GraphQLClient, phone: Phone) -> list[str]:
    payload = await sync(gql, phone)
    assert payload["userErrors"] == []
    return [c["token"] for c in payload["bundle"]["credentials"]]


async def visit(scene: Scene, phone: Phone, tokens: list[str]) -> tuple[AccessOutcome, list[str]]:
    result = await find_and_open(
        scene.lockbox.serial_number,
        tokens,
        phone.key,
        lambda _: InMemoryTransport(scene.simulator),
        now=clock.now(),
    )
    return result.outcome, result.records


async def report(gql: GraphQLClient, token: str, serial: str, records: list[str]) -> dict[str, Any]:
    data = await gql(REPORT, {"serial": serial, "records": records}, token=token)
    payload: dict[str, Any] = data["reportLockboxEvents"]
    return payload


async def present(
    simulator: LockboxSimulator, credential: str, key: Ed25519PrivateKey
) -> AccessOutcome:
    """One connection and one open attempt with the real client, whatever the credential."""
    async with LockboxClient(InMemoryTransport(simulator), key, timeout=2) as client:
        return await client.open(credential)


@pytest.fixture
async def scene(gql: GraphQLClient, http: httpx.AsyncClient) -> Scene:
    agent = await make_agent(first_name="Alice", last_name="Agent")
    listing = await make_listing(agent, line1="12 Elm Street", city="Cincinnati")
    lockbox = await make_lockbox(agent, listing)
    contractor = await make_contractor(first_name="Carl", last_name="Cleaner")
    simulator = await trusted_simulator(http, lockbox)
    return Scene(agent, contractor, listing, lockbox, simulator, gql)


async def stored_outcomes(lockbox: Lockbox) -> list[str]:
    rows = await AccessEvent.filter(lockbox_id=lockbox.id).order_by("seq")
    return [row.outcome.value for row in rows]


# ---- the happy path -------------------------------------------------------------------


async def test_a_contractor_opens_and_the_agent_sees_who_came(
    scene: Scene, gql: GraphQLClient
) -> None:
    # given a grant from an hour ago for four hours
    grant = await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=3)
    )
    phone = await sign_in_phone(gql, scene.contractor)
    # when the contractor syncs, opens and uploads what the lockbox logged
    tokens = await tokens_of(gql, phone)
    outcome, records = await visit(scene, phone, tokens)
    uploaded = await report(gql, phone.token, scene.lockbox.serial_number, records)
    # then
    assert outcome is AccessOutcome.OPENED
    assert scene.simulator.open_count == 1
    assert uploaded == {"accepted": 1, "duplicates": 0, "userErrors": []}
    event = await AccessEvent.get(lockbox_id=scene.lockbox.id)
    assert event.outcome == StoredOutcome.OPENED
    assert event.method == AccessMethod.BLE_CREDENTIAL
    assert event.actor_name == "Carl Cleaner"
    assert event.actor_id == scene.contractor.id  # type: ignore[attr-defined]
    assert event.grant_id == grant.id  # type: ignore[attr-defined]
    assert event.listing_id == scene.listing.id  # type: ignore[attr-defined]
    assert abs(event.occurred_at - clock.now()) < timedelta(seconds=5)
    lockbox = await Lockbox.get(id=scene.lockbox.id)
    assert lockbox.last_access_at == event.occurred_at
    # and the listing agent has an ACCESS_USED message naming the person and the place
    agent_token = await gql.sign_in(scene.agent.email or "", device_id="agent-phone")
    edges = (await gql(MESSAGES, token=agent_token))["me"]["messages"]["edges"]
    used = [e["node"] for e in edges if e["node"]["kind"] == "ACCESS_USED"]
    assert len(used) == 1
    assert used[0]["title"].startswith("Access")
    assert "Carl Cleaner" in used[0]["body"] and "12 Elm Street" in used[0]["body"]
    assert scene.contractor.email not in used[0]["body"]
    assert (scene.contractor.phone or "") not in used[0]["body"]
    assert used[0]["grant"]["id"] == to_global_id("Grant", grant.id)
    # and the agent's Access Log shows the visit
    window = {
        "from": (clock.now() - timedelta(hours=1)).isoformat(),
        "to": (clock.now() + timedelta(hours=1)).isoformat(),
    }
    log = (await gql(ACCESS_LOG, window, token=agent_token))["accessLog"]["edges"]
    assert [e["node"] for e in log] == [
        {
            "outcome": "OPENED",
            "method": "BLE_CREDENTIAL",
            "actorName": "Carl Cleaner",
            "grant": {"id": to_global_id("Grant", grant.id)},
            "lockbox": {"serialNumber": scene.lockbox.serial_number},
        }
    ]


async def test_an_agent_opens_their_own_lockbox_with_an_agent_key(
    scene: Scene, gql: GraphQLClient
) -> None:
    # given
    phone = await sign_in_phone(gql, scene.agent)
    # when
    tokens = await tokens_of(gql, phone)
    outcome, records = await visit(scene, phone, tokens)
    uploaded = await report(gql, phone.token, scene.lockbox.serial_number, records)
    # then
    assert outcome is AccessOutcome.OPENED
    assert uploaded["accepted"] == 1
    event = await AccessEvent.get(lockbox_id=scene.lockbox.id)
    assert (event.method, event.actor_name) == (AccessMethod.AGENT_KEY, "Alice Agent")
    assert event.grant_id is None  # type: ignore[attr-defined]


# ---- every denial, logged and uploaded ------------------------------------------------


async def test_a_credential_for_another_lockbox_is_refused_and_logged(
    scene: Scene, gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    # given a grant on this listing's lockbox, and another lockbox of the same agent
    await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=3)
    )
    other = await make_lockbox(scene.agent, await make_listing(scene.agent))
    other_box = await trusted_simulator(http, other)
    phone = await sign_in_phone(gql, scene.contractor)
    [credential] = await tokens_of(gql, phone)
    # when the phone shows it to the other lockbox
    outcome = await present(other_box, credential, phone.key)
    # then; the log stays on the lockbox until a verified holder collects it, so upload it
    # from the lockbox itself as that next phone would
    uploaded = await report(gql, phone.token, other.serial_number, other_box.pending_records())
    assert outcome is AccessOutcome.DENIED_WRONG_LOCKBOX
    assert uploaded["accepted"] == 1
    assert await stored_outcomes(other) == ["DENIED_WRONG_LOCKBOX"]
    event = await AccessEvent.get(lockbox_id=other.id)
    # not a grant on this lockbox
    assert event.grant_id is None  # type: ignore[attr-defined]
    assert event.actor_name == "Carl Cleaner"


async def test_too_early_then_open_once_the_grant_starts(scene: Scene, gql: GraphQLClient) -> None:
    # given a grant starting in two hours: synced now, for offline use later
    await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=2), timedelta(hours=5)
    )
    phone = await sign_in_phone(gql, scene.contractor)
    tokens = await tokens_of(gql, phone)
    # when
    early, records = await visit(scene, phone, tokens)
    clock.travel(2 * 3600)
    on_time, later_records = await visit(scene, phone, tokens)
    uploaded = await report(gql, phone.token, scene.lockbox.serial_number, later_records)
    # then
    assert (early, on_time) == (AccessOutcome.DENIED_NOT_YET_VALID, AccessOutcome.OPENED)
    assert records == later_records[:1]
    assert uploaded["accepted"] == 2
    assert await stored_outcomes(scene.lockbox) == ["DENIED_NOT_YET_VALID", "OPENED"]


async def test_expired_is_refused_and_logged(scene: Scene, gql: GraphQLClient) -> None:
    # given a grant ending in an hour
    await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=1)
    )
    phone = await sign_in_phone(gql, scene.contractor)
    tokens = await tokens_of(gql, phone)
    # when the contractor comes back after its end
    clock.travel(3600 + 1)
    outcome, records = await visit(scene, phone, tokens)
    uploaded = await report(gql, phone.token, scene.lockbox.serial_number, records)
    # then
    assert outcome is AccessOutcome.DENIED_EXPIRED
    assert uploaded["accepted"] == 1
    assert await stored_outcomes(scene.lockbox) == ["DENIED_EXPIRED"]
    # and the next sync no longer carries it
    assert await tokens_of(gql, phone) == []


async def test_outside_the_weekly_hours_is_refused_inside_them_opens(
    scene: Scene, gql: GraphQLClient
) -> None:
    # given two recurring grants in the region's zone: one on another weekday, one all of today
    local_today = clock.now().astimezone(ZONE).isoweekday()
    other_day = local_today % 7 + 1
    window = (timedelta(hours=-1), timedelta(days=3))
    await make_grant(
        scene.agent,
        scene.contractor,
        scene.lockbox,
        *window,
        rec_weekdays=str(other_day),
        rec_start="00:00",
        rec_end="24:00",
    )
    phone = await sign_in_phone(gql, scene.contractor)
    tokens = await tokens_of(gql, phone)
    # when
    refused, records = await visit(scene, phone, tokens)
    await Grant.all().update(rec_weekdays=f"{local_today},{other_day}")
    opened, more = await visit(scene, phone, await tokens_of(gql, phone))
    uploaded = await report(gql, phone.token, scene.lockbox.serial_number, more)
    # then
    assert peek_claims(tokens[0]).rec is not None
    assert peek_claims(tokens[0]).rec.tz == "America/New_York"  # type: ignore[union-attr]
    assert (refused, opened) == (AccessOutcome.DENIED_NOT_YET_VALID, AccessOutcome.OPENED)
    assert uploaded["accepted"] == 2
    assert await stored_outcomes(scene.lockbox) == ["DENIED_NOT_YET_VALID", "OPENED"]


async def test_a_credential_copied_to_another_device_is_refused(
    scene: Scene, gql: GraphQLClient
) -> None:
    # given the contractor's credential, in a thief's phone with its own key
    await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=3)
    )
    phone = await sign_in_phone(gql, scene.contractor)
    [credential] = await tokens_of(gql, phone)
    thief_key = Ed25519PrivateKey.generate()
    # when
    outcome = await present(scene.simulator, credential, thief_key)
    serial = scene.lockbox.serial_number
    uploaded = await report(gql, phone.token, serial, scene.simulator.pending_records())
    # then
    assert outcome is AccessOutcome.DENIED_INVALID_CREDENTIAL
    assert scene.simulator.open_count == 0
    assert uploaded["accepted"] == 1
    assert await stored_outcomes(scene.lockbox) == ["DENIED_INVALID_CREDENTIAL"]


async def test_a_replayed_open_is_refused(scene: Scene, gql: GraphQLClient) -> None:
    # given an open request seen on the air: the credential and the signature of that nonce
    await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=3)
    )
    phone = await sign_in_phone(gql, scene.contractor)
    [credential] = await tokens_of(gql, phone)
    first = InMemoryTransport(scene.simulator)
    await first.connect()
    nonce = await first.read("6b657962-696e-4c4b-a000-000000000001")
    heard = OpenRequest(credential=credential, sig=b64url_encode(phone.key.sign(nonce)))
    await first.disconnect()
    # when it is played again on a new connection, which has a fresh nonce
    outcome = await replay(scene.simulator, heard)
    uploaded = await report(
        gql, phone.token, scene.lockbox.serial_number, scene.simulator.pending_records()
    )
    # then
    assert outcome is AccessOutcome.DENIED_INVALID_CREDENTIAL
    assert uploaded["accepted"] == 1
    assert await stored_outcomes(scene.lockbox) == ["DENIED_INVALID_CREDENTIAL"]


async def replay(simulator: LockboxSimulator, request: OpenRequest) -> AccessOutcome:
    transport = InMemoryTransport(simulator)
    answers: list[bytes] = []
    await transport.connect()
    await transport.start_notify(RESPONSE_UUID, answers.append)
    for part in frame(encode_request(request), transport.mtu):
        await transport.write(COMMAND_UUID, part)
    while not answers or answers[-1][0] & 0x02 == 0:  # until the LAST frame is in
        await _tick()
    inbox = Reassembler()
    message = next(m for part in answers if (m := inbox.feed(part)) is not None)
    return read_outcome(message)


async def _tick() -> None:
    await asyncio.sleep(0)


@pytest.mark.parametrize("forgery", ["forged signature", "unknown key id"])
async def test_a_credential_the_server_did_not_sign_is_refused(
    scene: Scene, gql: GraphQLClient, forgery: str
) -> None:
    # given a genuine credential, and one with the same claims signed by someone else
    await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=3)
    )
    phone = await sign_in_phone(gql, scene.contractor)
    [genuine] = await tokens_of(gql, phone)
    header = _json(genuine.split(".")[0])
    claims = _json(genuine.split(".")[1])
    kid = header["kid"] if forgery == "forged signature" else "not-a-published-key"
    forged = sign_credential(Ed25519PrivateKey.generate(), kid, claims)
    # when
    outcome = await present(scene.simulator, forged, phone.key)
    uploaded = await report(
        gql, phone.token, scene.lockbox.serial_number, scene.simulator.pending_records()
    )
    # then
    assert outcome is AccessOutcome.DENIED_INVALID_CREDENTIAL
    assert uploaded["accepted"] == 1
    event = await AccessEvent.get(lockbox_id=scene.lockbox.id)
    assert event.outcome == StoredOutcome.DENIED_INVALID_CREDENTIAL
    # nothing in a forgery names anyone
    assert (event.actor_id, event.grant_id, event.actor_name) == (None, None, "")  # type: ignore[attr-defined]


async def test_a_revoked_grant_gets_no_credential_and_the_lockbox_refuses_the_old_one(
    scene: Scene, gql: GraphQLClient
) -> None:
    # given a credential synced before the grant was revoked
    grant = await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=1), timedelta(hours=3)
    )
    phone = await sign_in_phone(gql, scene.contractor)
    old_tokens = await tokens_of(gql, phone)
    await Grant.filter(id=grant.id).update(revoked_at=clock.now())
    scene.simulator.revoke(to_global_id("Grant", grant.id))
    # when
    clock.travel(3600)
    new_tokens = await tokens_of(gql, phone)
    outcome, records = await visit(scene, phone, old_tokens)
    uploaded = await report(gql, phone.token, scene.lockbox.serial_number, records)
    # then
    assert len(old_tokens) == 1 and new_tokens == []
    assert outcome is AccessOutcome.DENIED_REVOKED
    assert uploaded["accepted"] == 1
    assert await stored_outcomes(scene.lockbox) == ["DENIED_REVOKED"]


# ---- uploads --------------------------------------------------------------------------


async def test_a_repeated_upload_counts_duplicates(scene: Scene, gql: GraphQLClient) -> None:
    # given two visits' records
    await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=3)
    )
    phone = await sign_in_phone(gql, scene.contractor)
    tokens = await tokens_of(gql, phone)
    _, first = await visit(scene, phone, tokens)
    _, both = await visit(scene, phone, tokens)
    serial = scene.lockbox.serial_number
    # when the first is uploaded, then both (with a repeat inside the same upload)
    once = await report(gql, phone.token, serial, first)
    again = await report(gql, phone.token, serial, [*both, both[-1]])
    # then
    assert (once["accepted"], once["duplicates"]) == (1, 0)
    assert (again["accepted"], again["duplicates"]) == (1, 2)
    assert await stored_outcomes(scene.lockbox) == ["OPENED", "OPENED"]
    assert await AccessEvent.filter(lockbox_id=scene.lockbox.id).count() == 2


async def test_a_tampered_record_refuses_the_whole_upload(scene: Scene, gql: GraphQLClient) -> None:
    # given two genuine records, the second altered to read OPENED instead of DENIED_EXPIRED
    await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=1)
    )
    phone = await sign_in_phone(gql, scene.contractor)
    tokens = await tokens_of(gql, phone)
    _, records = await visit(scene, phone, tokens)
    clock.travel(3601)
    _, records = await visit(scene, phone, tokens)
    body, mac = records[1].split(".")
    altered = _json(body)
    altered["outcome"] = "OPENED"
    tampered = b64url_encode(_dumps(altered)) + "." + mac
    # when
    payload = await report(gql, phone.token, scene.lockbox.serial_number, [records[0], tampered])
    # then
    assert payload["accepted"] == 0
    assert payload["userErrors"][0]["code"] == "INVALID_RECORD"
    assert payload["userErrors"][0]["field"] == ["input", "records", "1"]
    assert await AccessEvent.all().count() == 0
    assert (await Lockbox.get(id=scene.lockbox.id)).last_access_at is None


async def test_a_record_of_another_lockbox_is_refused(
    scene: Scene, gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    # given a genuine record of a lockbox sharing the same secret, uploaded under this serial
    other = await make_lockbox(scene.agent)
    other_box = await trusted_simulator(http, other)
    phone = await sign_in_phone(gql, scene.agent)
    other_box.enter_code("00000000")
    # when
    payload = await report(
        gql, phone.token, scene.lockbox.serial_number, other_box.pending_records()
    )
    unknown = await report(gql, phone.token, "NO-SUCH-BOX", other_box.pending_records())
    # longer than any serial (the fuzzer found this answered INTERNAL)
    too_long = await report(gql, phone.token, "Ω≈ç" * 40, other_box.pending_records())
    # then
    assert verify_record(other_box.pending_records()[0], other.secret).serial == other.serial_number
    assert payload["userErrors"][0]["code"] == "INVALID_RECORD"
    assert unknown["userErrors"][0]["code"] == "NOT_FOUND"
    assert too_long["userErrors"][0]["code"] == "NOT_FOUND"
    assert await AccessEvent.all().count() == 0


async def test_the_servers_receipt_lets_the_lockbox_drop_exactly_what_was_uploaded(
    scene: Scene, gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    # given a visit whose record the phone brought back, and a record made after it left
    await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=3)
    )
    phone = await sign_in_phone(gql, scene.contractor)
    _, records = await visit(scene, phone, await tokens_of(gql, phone))
    scene.simulator.enter_code("00000000")
    # and another lockbox's upload, whose receipt the phone also carries
    other = await make_lockbox(scene.agent)
    other_box = await trusted_simulator(http, other)
    other_box.enter_code("00000000")
    serial = scene.lockbox.serial_number
    # when the phone uploads, then hands the receipts to this lockbox on its next visit
    uploaded = await gql(REPORT_RECEIPT, {"serial": serial, "records": records}, token=phone.token)
    foreign = await gql(
        REPORT_RECEIPT,
        {"serial": other.serial_number, "records": other_box.pending_records()},
        token=phone.token,
    )
    receipt = uploaded["reportLockboxEvents"]["receipt"]
    async with LockboxClient(InMemoryTransport(scene.simulator), phone.key, timeout=2) as client:
        wrong = await client.ack(foreign["reportLockboxEvents"]["receipt"])
        right = await client.ack(receipt)
    # then the receipt is the server's, for this lockbox and the seq it stored
    keys = parse_jwks((await http.get("/.well-known/jwks.json")).json())
    assert decode_receipt(receipt, keys).aud == serial
    assert decode_receipt(receipt, keys).seq == ((1, 1),)
    assert (wrong, right) == (ReceiptVerdict.REFUSED_WRONG_LOCKBOX, ReceiptVerdict.ACCEPTED)
    # and the lockbox keeps only the record the server has not seen
    kept = [verify_record(r, scene.lockbox.secret) for r in scene.simulator.pending_records()]
    assert [(r.seq, r.method.value) for r in kept] == [(2, "ONE_DAY_CODE")]
    assert len(other_box.pending_records()) == 1


async def test_an_empty_upload_gets_no_receipt(scene: Scene, gql: GraphQLClient) -> None:
    phone = await sign_in_phone(gql, scene.agent)
    serial = scene.lockbox.serial_number
    payload = await gql(REPORT_RECEIPT, {"serial": serial, "records": []}, token=phone.token)
    assert payload["reportLockboxEvents"] == {"accepted": 0, "receipt": None, "userErrors": []}


async def test_uploading_needs_a_session(scene: Scene, gql: GraphQLClient) -> None:
    body = await gql.raw(REPORT, {"serial": scene.lockbox.serial_number, "records": []})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# ---- the visit hands the server's receipt back -----------------------------------------


def uploader(
    gql: GraphQLClient, phone: Phone, serial: str, reports: list[dict[str, Any]]
) -> Upload:
    """The app's upload during a visit; each answer is added to `reports`."""

    async def upload(records: list[str]) -> str:
        try:
            body = await gql.raw(UPLOAD, {"serial": serial, "records": records}, phone.token)
        except httpx.HTTPError as error:
            raise UploadFailed(f"no server: {error!r}") from error
        payload: dict[str, Any] = body["data"]["reportLockboxEvents"]
        if payload["userErrors"]:
            raise UploadFailed(payload["userErrors"][0]["code"])
        reports.append(payload)
        return str(payload["receipt"])

    return upload


async def open_and_upload(
    scene: Scene,
    phone: Phone,
    reports: list[dict[str, Any]],
    *,
    upload: Upload | None = None,
    transport: Transport | None = None,
    receipts: list[str] | None = None,
) -> Visit:
    """A visit with the network at hand: the log goes up and its receipt back at once."""
    serial = scene.lockbox.serial_number
    return await find_and_open(
        serial,
        await tokens_of(scene.gql, phone),
        phone.key,
        lambda _: transport or InMemoryTransport(scene.simulator),
        receipts=receipts or [],
        upload=upload or uploader(scene.gql, phone, serial, reports),
    )


class LinkLostDuringUpload(InMemoryTransport):
    """The phone walks out of range while the server answers: nothing more reaches the
    lockbox once `lost` is set."""

    lost = False

    async def write(self, char_uuid: str, data: bytes) -> None:
        if self.lost:
            raise TransportError("the lockbox is out of range")
        await super().write(char_uuid, data)


def held_seqs(simulator: LockboxSimulator) -> list[int]:
    return [peek_record(record).seq for record in simulator.pending_records()]


async def stored_seqs(lockbox: Lockbox) -> list[int]:
    rows = await AccessEvent.filter(lockbox_id=lockbox.id).order_by("seq")
    return [row.seq for row in rows if row.seq is not None]


def counts(reports: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(report["accepted"], report["duplicates"]) for report in reports]


async def contractor_phone(scene: Scene) -> Phone:
    """The contractor signed in, with a grant on the lockbox from an hour ago for four hours."""
    await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=3)
    )
    return await sign_in_phone(scene.gql, scene.contractor)


async def test_a_visit_leaves_the_lockbox_only_what_the_server_lacks(scene: Scene) -> None:
    # given a lockbox that logged a wrong One Day Code before the contractor came
    phone = await contractor_phone(scene)
    scene.simulator.enter_code("00000000")
    reports: list[dict[str, Any]] = []
    # when the contractor opens it twice with the network at hand
    first = await open_and_upload(scene, phone, reports)
    held_after_first = held_seqs(scene.simulator)
    second = await open_and_upload(scene, phone, reports)
    # then each visit handed the receipt over: nothing stayed behind, nothing went up twice
    assert (first.outcome, second.outcome) == (AccessOutcome.OPENED, AccessOutcome.OPENED)
    assert first.acknowledged == second.acknowledged == [ReceiptVerdict.ACCEPTED]
    assert (first.to_upload, first.to_deliver, first.upload_error) == ([], [], None)
    assert held_after_first == held_seqs(scene.simulator) == []
    assert counts(reports) == [(2, 0), (1, 0)]
    assert await stored_seqs(scene.lockbox) == [1, 2, 3]


@pytest.mark.parametrize("failure", ["server down", "record refused"])
async def test_records_the_server_did_not_take_stay_on_the_lockbox(
    scene: Scene, gql: GraphQLClient, http: httpx.AsyncClient, failure: str
) -> None:
    # given an upload that cannot reach the server, or one the server refuses (the lockbox
    # signs its log with a secret that is not the one the server holds for it)
    phone = await contractor_phone(scene)
    serial = scene.lockbox.serial_number
    reports: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port()}") as nowhere:
        if failure == "server down":
            upload = uploader(GraphQLClient(nowhere), phone, serial, reports)
        else:
            scene.simulator = await trusted_simulator(http, scene.lockbox, pyotp.random_base32())
            upload = uploader(gql, phone, serial, reports)
        # when the contractor opens it
        visit = await open_and_upload(scene, phone, reports, upload=upload)
    # then it opened, and the lockbox keeps its record for a later upload
    assert visit.outcome is AccessOutcome.OPENED
    assert visit.upload_error is not None
    assert visit.to_upload == visit.records == scene.simulator.pending_records()
    assert (visit.acknowledged, visit.to_deliver) == ([], [])
    assert held_seqs(scene.simulator) == [1]
    assert await stored_seqs(scene.lockbox) == []


async def visit_offline(scene: Scene, phone: Phone) -> list[str]:
    _, records = await visit(scene, phone, await tokens_of(scene.gql, phone))
    assert held_seqs(scene.simulator) == [peek_record(record).seq for record in records]
    return records


async def test_an_upload_made_away_from_the_lockbox_is_handed_over_at_the_next_visit(
    scene: Scene, gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    # given a visit without network: the phone brings the log back and uploads it later
    phone = await contractor_phone(scene)
    offline = await visit_offline(scene, phone)
    later = await gql(
        UPLOAD, {"serial": scene.lockbox.serial_number, "records": offline}, token=phone.token
    )
    receipt = later["reportLockboxEvents"]["receipt"]
    # and the receipt of another lockbox's upload in the same phone
    other = await make_lockbox(scene.agent)
    other_box = await trusted_simulator(http, other)
    other_box.enter_code("00000000")
    foreign = await gql(
        UPLOAD,
        {"serial": other.serial_number, "records": other_box.pending_records()},
        token=phone.token,
    )
    carried = [foreign["reportLockboxEvents"]["receipt"], receipt]
    # when the contractor comes back, still without network
    visit = await find_and_open(
        scene.lockbox.serial_number,
        await tokens_of(gql, phone),
        phone.key,
        lambda _: InMemoryTransport(scene.simulator),
        receipts=carried,
    )
    # then the lockbox got this lockbox's receipt first: the log read holds the new visit
    # alone, for the next upload
    assert receipts_for(scene.lockbox.serial_number, carried) == [receipt]
    assert visit.acknowledged == [ReceiptVerdict.ACCEPTED]
    assert [peek_record(record).seq for record in visit.to_upload] == [2]
    assert held_seqs(scene.simulator) == [2]
    assert len(other_box.pending_records()) == 1


async def test_a_receipt_the_link_lost_goes_to_the_lockbox_at_the_next_visit(
    scene: Scene, gql: GraphQLClient
) -> None:
    # given a phone that leaves the lockbox's range while the server stores the log
    phone = await contractor_phone(scene)
    serial = scene.lockbox.serial_number
    reports: list[dict[str, Any]] = []
    link = LinkLostDuringUpload(scene.simulator)
    upload = uploader(gql, phone, serial, reports)

    async def upload_and_walk_away(records: list[str]) -> str:
        receipt = await upload(records)
        link.lost = True
        return receipt

    # when it visits, and then visits again
    first = await open_and_upload(
        scene, phone, reports, upload=upload_and_walk_away, transport=link
    )
    held_between = held_seqs(scene.simulator)
    second = await open_and_upload(scene, phone, reports, receipts=first.to_deliver)
    # then the first visit kept the receipt the lockbox never got, the record stayed there
    # meanwhile, and the second visit handed the receipt over before reading the log
    assert first.outcome is AccessOutcome.OPENED
    assert (first.to_upload, first.acknowledged, first.upload_error) == ([], [], None)
    assert len(first.to_deliver) == 1
    assert held_between == [1]
    assert second.acknowledged == [ReceiptVerdict.ACCEPTED, ReceiptVerdict.ACCEPTED]
    assert [peek_record(record).seq for record in second.records] == [2]
    assert counts(reports) == [(1, 0), (1, 0)]
    assert held_seqs(scene.simulator) == []
    assert await stored_seqs(scene.lockbox) == [1, 2]


async def test_a_log_longer_than_one_upload_goes_up_in_batches(scene: Scene) -> None:
    # given a lockbox whose log grew past what one upload takes
    phone = await contractor_phone(scene)
    for _ in range(UPLOAD_BATCH + 10):
        scene.simulator.enter_code("00000000")
    reports: list[dict[str, Any]] = []
    # when the contractor opens it
    visit = await open_and_upload(scene, phone, reports)
    # then every batch went up and its receipt back
    assert visit.outcome is AccessOutcome.OPENED
    assert counts(reports) == [(UPLOAD_BATCH, 0), (11, 0)]
    assert visit.acknowledged == [ReceiptVerdict.ACCEPTED] * 2
    assert held_seqs(scene.simulator) == []
    assert len(await stored_seqs(scene.lockbox)) == UPLOAD_BATCH + 11


# ---- who may sync ---------------------------------------------------------------------


async def test_a_device_without_a_key_is_not_registered(scene: Scene, gql: GraphQLClient) -> None:
    # given a sign-in without devicePublicKey
    token = await gql.sign_in(scene.contractor.email or "", device_id="old-app")
    # when
    keyless = await gql(SYNC, {"deviceId": "old-app"}, token=token)
    unknown = await gql(SYNC, {"deviceId": "never-signed-in-here"}, token=token)
    # longer than any device id (answered an internal error before)
    too_long = await gql(SYNC, {"deviceId": "d" * 300}, token=token)
    # then
    for data in (keyless, unknown, too_long):
        payload = data["syncCredentials"]
        assert payload["bundle"] is None
        assert payload["userErrors"][0]["code"] == "DEVICE_NOT_REGISTERED"


async def test_an_account_that_is_not_active_gets_no_credentials(
    scene: Scene, gql: GraphQLClient
) -> None:
    # given a grant, and the account suspended after signing in
    await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=3)
    )
    phone = await sign_in_phone(gql, scene.contractor)
    await Account.filter(id=scene.contractor.id).update(status=AccountStatus.SUSPENDED)
    # when
    payload = await sync(gql, phone)
    # then
    assert payload["bundle"] is None
    assert payload["userErrors"][0]["code"] == "ACCOUNT_NOT_ACTIVE"


def _json(part: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return value


def _dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
