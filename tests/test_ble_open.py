"""Opening a simulated lockbox with the real LockboxClient over the in-memory transport."""

import asyncio
from datetime import timedelta

import pytest
from ble_helpers import (
    ACCOUNT_ID,
    GRANT_ID,
    KID,
    SERIAL,
    hours,
    last_record,
    make_lockbox,
    try_open,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble.b64 import b64url_decode, b64url_encode
from ble.client import LockboxClient
from ble.credential import sign_credential
from ble.framing import Reassembler
from ble.gatt import COMMAND_UUID, RESPONSE_UUID
from ble.inmemory import InMemoryTransport
from ble.messages import read_outcome
from ble.outcomes import AccessMethod, AccessOutcome
from ble.recurrence import Recurrence
from ble.transport import NotifyCallback, Transport


class Tap:
    """A transport that keeps a copy of every frame the phone writes, as a sniffer would."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.written: list[bytes] = []

    @property
    def mtu(self) -> int:
        return self.inner.mtu

    async def connect(self) -> None:
        await self.inner.connect()

    async def disconnect(self) -> None:
        await self.inner.disconnect()

    async def read(self, char_uuid: str) -> bytes:
        return await self.inner.read(char_uuid)

    async def write(self, char_uuid: str, data: bytes) -> None:
        self.written.append(data)
        await self.inner.write(char_uuid, data)

    async def start_notify(self, char_uuid: str, callback: NotifyCallback) -> None:
        await self.inner.start_notify(char_uuid, callback)


@pytest.mark.parametrize("mtu", [23, 185, 517])
async def test_a_valid_credential_opens_and_is_logged(mtu: int) -> None:
    # given
    lockbox = make_lockbox()
    # when
    async with lockbox.client(mtu=mtu) as client:
        outcome = await client.open(lockbox.credential())
    # then
    assert outcome is AccessOutcome.OPENED
    assert lockbox.simulator.open_count == 1
    record = last_record(lockbox)
    assert (record.serial, record.seq, record.outcome) == (SERIAL, 1, AccessOutcome.OPENED)
    assert (record.method, record.jti, record.sub) == (
        AccessMethod.BLE_CREDENTIAL,
        GRANT_ID,
        ACCOUNT_ID,
    )
    assert record.at == int(lockbox.clock().timestamp())


async def test_each_visit_gets_the_next_seq() -> None:
    lockbox = make_lockbox()
    for _ in range(3):
        assert await try_open(lockbox, lockbox.credential()) is AccessOutcome.OPENED
    assert [last_record(lockbox).seq, lockbox.simulator.open_count] == [3, 3]


async def test_an_agent_key_is_logged_as_such() -> None:
    lockbox = make_lockbox()
    outcome = await try_open(lockbox, lockbox.credential(jti=None, mth="AGENT_KEY"))
    assert outcome is AccessOutcome.OPENED
    record = last_record(lockbox)
    assert (record.method, record.jti, record.sub) == (AccessMethod.AGENT_KEY, None, ACCOUNT_ID)


async def test_a_credential_for_another_lockbox_is_refused() -> None:
    lockbox = make_lockbox()
    outcome = await try_open(lockbox, lockbox.credential(aud="LB-999999"))
    assert outcome is AccessOutcome.DENIED_WRONG_LOCKBOX
    assert last_record(lockbox).outcome is AccessOutcome.DENIED_WRONG_LOCKBOX


async def test_too_early_is_refused_until_nbf() -> None:
    # given a grant that starts in ten minutes
    lockbox = make_lockbox()
    start = int(lockbox.clock().timestamp()) + 600
    credential = lockbox.credential(nbf=start)
    # when / then
    assert await try_open(lockbox, credential) is AccessOutcome.DENIED_NOT_YET_VALID
    assert last_record(lockbox).outcome is AccessOutcome.DENIED_NOT_YET_VALID
    lockbox.clock.now += timedelta(seconds=600)
    assert await try_open(lockbox, credential) is AccessOutcome.OPENED


async def test_expired_is_refused_from_exp_on() -> None:
    lockbox = make_lockbox()
    credential = lockbox.credential(exp=int(lockbox.clock().timestamp()) + 1)
    assert await try_open(lockbox, credential) is AccessOutcome.OPENED
    lockbox.clock.now += timedelta(seconds=1)
    assert await try_open(lockbox, credential) is AccessOutcome.DENIED_EXPIRED
    assert last_record(lockbox).outcome is AccessOutcome.DENIED_EXPIRED


async def test_a_recurring_grant_opens_only_in_its_weekly_hours() -> None:
    # given a cleaner on Tuesdays 09:00-12:00 in New York, valid all week
    lockbox = make_lockbox()  # Tuesday 12:00 UTC is 08:00 in New York
    rec = Recurrence(tz="America/New_York", days=(2,), start="09:00", end="12:00")
    week_later = int(lockbox.clock().timestamp()) + 7 * 86400
    credential = lockbox.credential(exp=week_later, rec=rec.to_claim())
    # when / then
    assert await try_open(lockbox, credential) is AccessOutcome.DENIED_NOT_YET_VALID
    assert last_record(lockbox).outcome is AccessOutcome.DENIED_NOT_YET_VALID
    lockbox.clock.now += hours(1)
    assert await try_open(lockbox, credential) is AccessOutcome.OPENED
    lockbox.clock.now += hours(3)
    assert await try_open(lockbox, credential) is AccessOutcome.DENIED_NOT_YET_VALID


async def test_a_credential_copied_to_another_device_is_refused() -> None:
    lockbox = make_lockbox()
    thief_key = Ed25519PrivateKey.generate()
    outcome = await try_open(lockbox, lockbox.credential(), device_key=thief_key)
    assert outcome is AccessOutcome.DENIED_INVALID_CREDENTIAL
    # the credential itself is genuine, so the log says whose it was
    record = last_record(lockbox)
    assert (record.outcome, record.jti, record.sub) == (
        AccessOutcome.DENIED_INVALID_CREDENTIAL,
        GRANT_ID,
        ACCOUNT_ID,
    )
    assert lockbox.simulator.open_count == 0


async def test_an_open_replayed_on_a_new_connection_is_refused() -> None:
    # given a sniffer that recorded a successful open
    lockbox = make_lockbox()
    tap = Tap(InMemoryTransport(lockbox.simulator))
    async with LockboxClient(tap, lockbox.device_key, timeout=2) as client:
        assert await client.open(lockbox.credential()) is AccessOutcome.OPENED
    # when it plays the same frames to the lockbox on a connection of its own
    answers: asyncio.Queue[bytes] = asyncio.Queue()
    replay = InMemoryTransport(lockbox.simulator)
    await replay.connect()
    await replay.start_notify(RESPONSE_UUID, answers.put_nowait)
    for part in tap.written:
        await replay.write(COMMAND_UUID, part)
    # then
    assert read_outcome(await _answer(answers)) is AccessOutcome.DENIED_INVALID_CREDENTIAL
    assert last_record(lockbox).outcome is AccessOutcome.DENIED_INVALID_CREDENTIAL
    assert lockbox.simulator.open_count == 1


async def test_a_nonce_opens_once() -> None:
    lockbox = make_lockbox()
    async with lockbox.client() as client:
        assert await client.open(lockbox.credential()) is AccessOutcome.OPENED
        second = await client.open(lockbox.credential())
    assert second is AccessOutcome.DENIED_INVALID_CREDENTIAL
    assert lockbox.simulator.open_count == 1


async def test_a_tampered_credential_is_refused_and_its_claims_not_logged() -> None:
    # given a credential whose payload was edited to point at another grant
    lockbox = make_lockbox()
    header, payload, sig = lockbox.credential().split(".")
    claims = b64url_decode(payload).replace(GRANT_ID.encode(), b"R3JhbnQ6OTk=")
    forged = f"{header}.{b64url_encode(claims)}.{sig}"
    # when
    outcome = await try_open(lockbox, forged)
    # then
    assert outcome is AccessOutcome.DENIED_INVALID_CREDENTIAL
    record = last_record(lockbox)
    assert (record.outcome, record.jti, record.sub) == (
        AccessOutcome.DENIED_INVALID_CREDENTIAL,
        None,
        None,
    )


async def test_a_credential_signed_by_an_untrusted_key_is_refused() -> None:
    lockbox = make_lockbox()
    forged = sign_credential(Ed25519PrivateKey.generate(), KID, lockbox.claims())
    assert await try_open(lockbox, forged) is AccessOutcome.DENIED_INVALID_CREDENTIAL
    assert last_record(lockbox).outcome is AccessOutcome.DENIED_INVALID_CREDENTIAL


async def test_an_unknown_key_id_is_refused() -> None:
    lockbox = make_lockbox()
    token = sign_credential(lockbox.server_key, "retired-2019", lockbox.claims())
    assert await try_open(lockbox, token) is AccessOutcome.DENIED_INVALID_CREDENTIAL
    assert last_record(lockbox).outcome is AccessOutcome.DENIED_INVALID_CREDENTIAL


async def test_garbage_instead_of_a_credential_is_refused() -> None:
    lockbox = make_lockbox()
    assert await try_open(lockbox, "not.a.jws") is AccessOutcome.DENIED_INVALID_CREDENTIAL
    assert last_record(lockbox).outcome is AccessOutcome.DENIED_INVALID_CREDENTIAL


async def test_a_revoked_grant_is_refused() -> None:
    lockbox = make_lockbox()
    lockbox.simulator.revoke(GRANT_ID)
    assert await try_open(lockbox, lockbox.credential()) is AccessOutcome.DENIED_REVOKED
    record = last_record(lockbox)
    assert (record.outcome, record.jti) == (AccessOutcome.DENIED_REVOKED, GRANT_ID)


async def test_a_revocation_leaves_other_grants_alone() -> None:
    lockbox = make_lockbox()
    lockbox.simulator.revoke("R3JhbnQ6OTk=")
    assert await try_open(lockbox, lockbox.credential()) is AccessOutcome.OPENED


async def _answer(answers: asyncio.Queue[bytes]) -> bytes:
    inbox = Reassembler()
    async with asyncio.timeout(2):
        while (message := inbox.feed(await answers.get())) is None:
            continue
    return message
