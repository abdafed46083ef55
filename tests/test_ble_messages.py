"""The JSON requests and answers inside frames, and the GATT profile around them."""

import asyncio

import pytest
from ble_helpers import make_lockbox

from ble.framing import frame
from ble.gatt import (
    CHALLENGE_UUID,
    COMMAND_UUID,
    MANUFACTURER_ID,
    RESPONSE_UUID,
    SERVICE_UUID,
    advertised_name,
    advertises_serial,
    manufacturer_data,
)
from ble.inmemory import InMemoryTransport
from ble.messages import (
    AckRequest,
    CodeRequest,
    OpenRequest,
    ProtocolError,
    RecordsRequest,
    Request,
    decode_request,
    encode_request,
    error_answer,
    outcome_answer,
    read_ack,
    read_outcome,
    read_records,
    records_answer,
)
from ble.outcomes import AccessOutcome
from ble.transport import TransportError


@pytest.mark.parametrize(
    ("request_", "wire"),
    [
        (OpenRequest("a.b.c", "c2ln"), b'{"op":"open","credential":"a.b.c","sig":"c2ln"}'),
        (CodeRequest("12345678"), b'{"op":"code","code":"12345678"}'),
        (RecordsRequest(3), b'{"op":"records","after":3}'),
        (AckRequest("a.b.c"), b'{"op":"ack","receipt":"a.b.c"}'),
    ],
)
def test_requests_on_the_wire(request_: Request, wire: bytes) -> None:
    assert encode_request(request_) == wire
    assert decode_request(wire) == request_


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        b"[]",
        b'{"op":"dance"}',
        b'{"op":["open"]}',
        b'{"op":"code"}',
        b'{"op":"code","code":12345678}',
        b'{"op":"records","after":true}',
        b'{"op":"ack","receipt":"a.b.c","also":2}',
        b'{"op":"ack","upto":9}',
        b"\xff",
    ],
)
def test_bad_requests_are_refused(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_request(wire)


def test_answers() -> None:
    assert outcome_answer(AccessOutcome.OPENED) == b'{"ok":true,"outcome":"OPENED"}'
    assert (
        read_outcome(outcome_answer(AccessOutcome.DENIED_EXPIRED)) is AccessOutcome.DENIED_EXPIRED
    )
    assert read_records(records_answer(["a.b"])) == ["a.b"]
    for read in (read_outcome, read_records, read_ack):
        with pytest.raises(ProtocolError, match="lockbox refused: busy"):
            read(error_answer("busy"))
    with pytest.raises(ProtocolError):
        read_outcome(b'{"ok":true,"outcome":"WHATEVER"}')
    with pytest.raises(ProtocolError):
        read_records(b'{"records":[1]}')


def test_uuids_are_distinct_128_bit_uuids() -> None:
    uuids = [SERVICE_UUID, CHALLENGE_UUID, COMMAND_UUID, RESPONSE_UUID]
    assert len(set(uuids)) == 4
    assert all(len(uuid) == 36 and uuid == uuid.lower() for uuid in uuids)


def test_a_lockbox_is_found_by_name_or_manufacturer_data() -> None:
    assert advertises_serial("LB-7", advertised_name("LB-7"), {})
    assert advertises_serial("LB-7", None, manufacturer_data("LB-7"))
    assert not advertises_serial("LB-7", advertised_name("LB-70"), {MANUFACTURER_ID: b"KBLB-70"})
    assert not advertises_serial("LB-7", "LB-7", {0x004C: b"KBLB-7"})


async def test_the_in_memory_gatt_server_keeps_a_real_ones_limits() -> None:
    lockbox = make_lockbox()
    transport = InMemoryTransport(lockbox.simulator, mtu=23)
    with pytest.raises(TransportError, match="not connected"):
        await transport.read(CHALLENGE_UUID)
    await transport.connect()
    assert len(await transport.read(CHALLENGE_UUID)) == 16
    with pytest.raises(TransportError, match="does not fit"):
        await transport.write(COMMAND_UUID, bytes(21))
    with pytest.raises(TransportError, match="not writable"):
        await transport.write(RESPONSE_UUID, b"\x03\x00\x00{}")
    with pytest.raises(TransportError, match="not readable"):
        await transport.read(COMMAND_UUID)


async def test_each_connection_gets_a_fresh_nonce() -> None:
    lockbox = make_lockbox()
    transport = InMemoryTransport(lockbox.simulator)
    nonces = set()
    for _ in range(5):
        await transport.connect()
        nonces.add(await transport.read(CHALLENGE_UUID))
        await transport.disconnect()
    assert len(nonces) == 5


async def test_the_lockbox_answers_garbage_with_an_error() -> None:
    lockbox = make_lockbox()
    assert lockbox.simulator.connect().handle(b"junk") == error_answer("bad_request")
    answers: list[bytes] = []
    transport = InMemoryTransport(lockbox.simulator)
    await transport.connect()
    await transport.start_notify(RESPONSE_UUID, answers.append)
    await transport.write(COMMAND_UUID, b"\x00\x00\x07stray")
    await asyncio.sleep(0)  # notifications arrive after the write returns
    assert answers == frame(error_answer("bad_frame"), transport.mtu)
    assert lockbox.simulator.pending_records() == []
