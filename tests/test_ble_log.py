"""Reading and acknowledging a simulated lockbox's access log, and the one-call phone visit."""

import pytest
from ble_helpers import SERIAL, hours, make_lockbox, pending_seqs, try_open
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble.client import NoCredentialError, choose_credential, find_and_open
from ble.inmemory import InMemoryTransport
from ble.messages import ProtocolError
from ble.outcomes import AccessOutcome
from ble.receipt import ReceiptVerdict
from ble.records import verify_record


async def test_a_holder_collects_every_record_across_batches() -> None:
    # given more records than one 8 KiB answer holds
    lockbox = make_lockbox()
    for _ in range(40):
        lockbox.simulator.enter_code("00000000")
    # when
    async with lockbox.client() as client:
        await client.open(lockbox.credential())
        records = await client.collect_records()
    # then
    assert records == lockbox.simulator.pending_records()
    assert [verify_record(r, lockbox.secret).seq for r in records] == list(range(1, 42))


async def test_a_receipt_drops_exactly_the_records_it_names() -> None:
    # given four records, of which the server stored 1, 2 and 4
    lockbox = make_lockbox()
    for _ in range(4):
        await try_open(lockbox, lockbox.credential())
    # when a phone with no credential at all hands over the server's receipt
    async with lockbox.client() as client:
        verdict = await client.ack(lockbox.receipt([1, 2, 4]))
    # then
    assert verdict is ReceiptVerdict.ACCEPTED
    assert pending_seqs(lockbox) == [3]


@pytest.mark.parametrize("credential_kind", ["none", "forged", "another lockbox"])
async def test_the_log_is_only_for_a_verified_holder(credential_kind: str) -> None:
    # given a connection that has not proved it holds a credential for this lockbox
    lockbox = make_lockbox()
    await try_open(lockbox, lockbox.credential())
    async with lockbox.client() as client:
        if credential_kind == "forged":
            await client.open(lockbox.credential() + "x")
        elif credential_kind == "another lockbox":
            await client.open(lockbox.credential(aud="LB-999999"))
        # when / then
        with pytest.raises(ProtocolError, match="holder_not_verified"):
            await client.collect_records()
    assert len(lockbox.simulator.pending_records()) == 1 + (credential_kind != "none")


async def test_an_expired_holder_may_still_hand_the_log_over() -> None:
    lockbox = make_lockbox()
    credential = lockbox.credential()
    await try_open(lockbox, credential)
    lockbox.clock.now += hours(2)
    async with lockbox.client() as client:
        assert await client.open(credential) is AccessOutcome.DENIED_EXPIRED
        assert len(await client.collect_records()) == 2


async def test_find_and_open_picks_this_lockboxs_credential_and_brings_the_log() -> None:
    # given credentials for two lockboxes, this one's listed last
    lockbox = make_lockbox()
    credentials = [lockbox.credential(aud="LB-999999"), lockbox.credential()]
    # when
    visit = await find_and_open(
        SERIAL,
        credentials,
        lockbox.device_key,
        lambda serial: InMemoryTransport(lockbox.simulator),
        now=lockbox.clock(),
    )
    # then
    assert visit.outcome is AccessOutcome.OPENED
    assert visit.records == lockbox.simulator.pending_records()


async def test_find_and_open_brings_no_log_after_a_refusal() -> None:
    lockbox = make_lockbox()
    visit = await find_and_open(
        SERIAL,
        [lockbox.credential()],
        Ed25519PrivateKey.generate(),
        lambda serial: InMemoryTransport(lockbox.simulator),
    )
    assert (visit.outcome, visit.records) == (AccessOutcome.DENIED_INVALID_CREDENTIAL, [])


def test_choose_credential_prefers_the_one_valid_now() -> None:
    lockbox = make_lockbox()
    now = int(lockbox.clock().timestamp())
    later = lockbox.credential(nbf=now + 3600, exp=now + 7200)
    current = lockbox.credential()
    past = lockbox.credential(nbf=now - 7200, exp=now - 3600)
    choice = choose_credential(SERIAL, ["junk", later, past, current], lockbox.clock())
    assert choice == current
    assert choose_credential(SERIAL, [past, later], lockbox.clock()) == later


def test_choose_credential_without_one_for_this_lockbox() -> None:
    lockbox = make_lockbox()
    with pytest.raises(NoCredentialError):
        choose_credential(SERIAL, [lockbox.credential(aud="LB-1")], lockbox.clock())
