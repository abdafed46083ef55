"""Finding a lockbox by pressing ENT on it: its advertisement, and scans through every seam."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from ble_helpers import GRANT_ID, KID, SERIAL, Clock, make_lockbox, try_open
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason

from ble.advertising import (
    Advertisement,
    InvalidAdvertisement,
    decode_advertisement,
    encode_advertisement,
    lockbox_advertisement,
)
from ble.bleak_transport import BleakAir
from ble.client import choose_credential
from ble.gatt import MANUFACTURER_ID, advertised_serial
from ble.inmemory import SimulatedAir
from ble.outcomes import AccessOutcome
from ble.revocation import RevocationList, RevocationsVerdict, newest_for, sign_revocations
from ble.scan import FoundLockbox, Sighting, scan
from ble.serials import normalize_serial
from ble.simulator import ADVERTISING_WINDOW, LockboxSimulator
from ble.socket_transport import SocketAir, SocketTransport, parse_address, serve_lockbox
from ble.transport import NoAdapterError

OTHER_SERIAL = "LB-200777"


def neighbour(clock: Clock, serial: str = OTHER_SERIAL) -> LockboxSimulator:
    """A second lockbox within radio range, trusting nobody: only its advertising matters."""
    return LockboxSimulator(serial, "JBSWY3DPEHPK3PXPJBSWY3DPEH", {}, clock)


# ---- the lockbox advertises after ENT ---------------------------------------------------


def test_a_lockbox_advertises_its_serial_only_for_a_while_after_ent() -> None:
    # given a lockbox nobody touched
    lockbox = make_lockbox()
    asleep = lockbox.simulator.advertisement()
    # when ENT is pressed, and later
    lockbox.simulator.press_ent()
    awake = lockbox.simulator.advertisement()
    lockbox.clock.now += ADVERTISING_WINDOW - timedelta(seconds=1)
    still = lockbox.simulator.advertising
    lockbox.clock.now += timedelta(seconds=1)
    # then
    assert asleep is None
    assert awake is not None
    assert advertised_serial(awake.local_name, awake.manufacturer_data) == SERIAL
    assert awake.manufacturer_data[MANUFACTURER_ID].endswith(SERIAL.encode())
    assert still is True
    assert lockbox.simulator.advertisement() is None


def test_an_advertisement_survives_the_air_as_ad_structures() -> None:
    # given what a lockbox sends
    sent = lockbox_advertisement(SERIAL)
    # when it goes over the air as bytes, with a structure of a type nobody here knows
    received = decode_advertisement(encode_advertisement(sent) + b"\x03\x19\x41\x03")
    # then
    assert received == sent
    assert advertised_serial(None, received.manufacturer_data) == SERIAL  # the name dropped
    with pytest.raises(InvalidAdvertisement):
        decode_advertisement(encode_advertisement(sent)[:-2])


# ---- scanning simulated lockboxes -------------------------------------------------------


async def test_a_scan_finds_the_lockbox_whose_ent_was_pressed() -> None:
    # given two lockboxes in range, ENT pressed on one
    lockbox = make_lockbox()
    other = neighbour(lockbox.clock)
    air = SimulatedAir([lockbox.simulator, other])
    before = await scan(air)
    lockbox.simulator.press_ent()
    # when
    found = await scan(air)
    # then
    assert before == []
    assert [item.serial for item in found] == [SERIAL]
    # ... and the serial it found opens that lockbox with the phone's credential
    assert choose_credential(found[0].serial, [lockbox.credential()], lockbox.clock())
    assert await try_open(lockbox, lockbox.credential()) is AccessOutcome.OPENED


async def test_the_nearest_lockbox_comes_first_and_each_serial_once() -> None:
    # given the same lockbox heard twice (a second advertisement, weaker) and another nearer
    far = Sighting("AA:00", lockbox_advertisement(SERIAL), rssi=-90)
    again = Sighting("AA:00", lockbox_advertisement(SERIAL.lower()), rssi=-80)
    near = Sighting("BB:00", lockbox_advertisement(OTHER_SERIAL), rssi=-40)
    speaker = Sighting("CC:00", Advertisement("Kitchen speaker", {76: b"\x02\x15"}), rssi=-30)

    class Heard:
        async def listen(self, seconds: float) -> list[Sighting]:
            return [far, near, again, speaker]

    # when
    found = await scan(Heard())
    # then
    assert found == [
        FoundLockbox(OTHER_SERIAL, "BB:00", -40),
        FoundLockbox(SERIAL.lower(), "AA:00", -80),
    ]


# ---- the same scan through bleak's API ---------------------------------------------------


def _bleak_data(advertisement: Advertisement, rssi: int) -> AdvertisementData:
    return AdvertisementData(
        local_name=advertisement.local_name,
        manufacturer_data=dict(advertisement.manufacturer_data),
        service_data={},
        service_uuids=[],
        tx_power=None,
        rssi=rssi,
        platform_data=(),
    )


def _radio_hearing(
    lockboxes: list[LockboxSimulator], calls: list[dict[str, Any]]
) -> Callable[..., Any]:
    """BleakScanner.discover as bleak 3.1 defines it, hearing the simulators' bytes on the air."""

    async def discover(
        timeout: float = 5.0,  # noqa: ASYNC109  (bleak's own signature)
        *,
        return_adv: bool = False,
        **kwargs: object,
    ) -> dict[str, tuple[BLEDevice, AdvertisementData]]:
        calls.append({"timeout": timeout, "return_adv": return_adv, **kwargs})
        heard: dict[str, tuple[BLEDevice, AdvertisementData]] = {}
        phone = Advertisement("Pixel 9", {224: b"\x00\x01"})
        heard["11:22:33:44:55:66"] = (
            BLEDevice("11:22:33:44:55:66", "Pixel 9", details=None),
            _bleak_data(phone, -50),
        )
        for n, lockbox in enumerate(lockboxes):
            sent = lockbox.advertisement()
            if sent is None:
                continue
            on_air = decode_advertisement(encode_advertisement(sent))
            address = f"AA:BB:CC:DD:EE:{n:02X}"
            device = BLEDevice(address, on_air.local_name, details=None)
            heard[address] = (device, _bleak_data(on_air, -70 + n))
        return heard

    return discover


async def test_scan_through_bleak_hears_what_the_simulators_advertise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given two lockboxes, ENT pressed on both, and a phone advertising nearby
    lockbox = make_lockbox()
    other = neighbour(lockbox.clock)
    lockbox.simulator.press_ent()
    other.press_ent()
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(BleakScanner, "discover", _radio_hearing([lockbox.simulator, other], calls))
    # when
    found = await scan(BleakAir(), seconds=3)
    # then
    assert calls == [{"timeout": 3, "return_adv": True}]
    assert found == [
        FoundLockbox(OTHER_SERIAL, "AA:BB:CC:DD:EE:01", -69),
        FoundLockbox(SERIAL, "AA:BB:CC:DD:EE:00", -70),
    ]


async def test_scan_without_bluetooth_is_no_adapter_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def discover(**kwargs: object) -> None:
        raise BleakBluetoothNotAvailableError(
            "No Bluetooth adapters found.", BleakBluetoothNotAvailableReason.NO_BLUETOOTH
        )

    monkeypatch.setattr(BleakScanner, "discover", discover)
    with pytest.raises(NoAdapterError):
        await scan(BleakAir())


async def test_the_real_bleak_scan_reports_bluetooth_or_its_absence() -> None:
    # Without a radio (CI, containers) bleak cannot reach BlueZ: NoAdapterError. With one,
    # whatever advertises nearby; no lockbox here has ENT pressed by this test.
    try:
        found = await scan(seconds=1)
    except NoAdapterError as error:
        assert "Bluetooth is not available" in str(error)
    else:
        assert all(isinstance(item, FoundLockbox) for item in found)


# ---- scanning simulators on sockets ------------------------------------------------------


async def test_a_socket_scan_hears_ent_pressed_while_it_listens(tmp_path: Path) -> None:
    # given a simulated lockbox on a socket, asleep, and an address where nothing listens
    lockbox = make_lockbox()
    address = parse_address(f"unix:{tmp_path / 'box.sock'}")
    nobody = parse_address(f"unix:{tmp_path / 'nobody.sock'}")
    server = await serve_lockbox(lockbox.simulator, address, log=lambda _: None)
    async with server:
        air = SocketAir([nobody, address])
        asleep = await scan(air, seconds=0.3)
        # when ENT is pressed a moment after the scan starts
        asyncio.get_running_loop().call_later(0.3, lockbox.simulator.press_ent)
        found = await scan(air, seconds=5)
    # then
    assert asleep == []
    assert found == [FoundLockbox(SERIAL, str(address), None)]


# ---- serial numbers, whatever their case and spacing -------------------------------------


def test_serials_are_compared_upper_case_without_spaces() -> None:
    assert normalize_serial(" lb-100 234\t") == "LB-100234"
    assert normalize_serial("LB-100234") == normalize_serial("lb-100234")
    assert normalize_serial("LB-100234") != normalize_serial("LB-100235")


async def test_a_credential_naming_the_lockbox_in_another_spelling_opens_it() -> None:
    # given credentials whose aud is the serial as typed elsewhere, and one for another lockbox
    lockbox = make_lockbox()
    spelled = lockbox.credential(aud="lb-100 234")
    elsewhere = lockbox.credential(aud=OTHER_SERIAL)
    # when
    chosen = choose_credential("Lb-100234 ", [elsewhere, spelled], lockbox.clock())
    opened = await try_open(lockbox, chosen)
    refused = await try_open(lockbox, elsewhere)
    # then: the signed aud is unchanged, and compared normalised on both sides
    assert chosen == spelled
    assert opened is AccessOutcome.OPENED
    assert refused is AccessOutcome.DENIED_WRONG_LOCKBOX


async def test_a_socket_lockbox_answers_its_serial_in_any_spelling(tmp_path: Path) -> None:
    lockbox = make_lockbox()
    address = parse_address(f"unix:{tmp_path / 'box.sock'}")
    server = await serve_lockbox(lockbox.simulator, address, log=lambda _: None)
    async with server:
        transport = SocketTransport(address, SERIAL.lower())
        await transport.connect()
        await transport.disconnect()
    assert transport.mtu > 0


def test_a_revocation_list_naming_the_lockbox_in_another_spelling_is_its_own() -> None:
    # given a list for "lb-100 234" as the server might have spelled it
    lockbox = make_lockbox()
    now = int(lockbox.clock().timestamp())
    spelled = RevocationList(
        iss="https://keybin.test",
        aud="lb-100 234",
        iat=now,
        exp=now + 3600,
        seq=1,
        jti=frozenset({GRANT_ID}),
    )
    token = sign_revocations(lockbox.server_key, KID, spelled)
    # when the phone picks the list for the lockbox and hands it over
    picked = newest_for(SERIAL, [token])
    verdict = lockbox.simulator.load_revocations(token)
    # then
    assert picked == token
    assert verdict is RevocationsVerdict.ACCEPTED
    assert GRANT_ID in lockbox.simulator.revoked()
