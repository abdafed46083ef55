"""BleakTransport without a radio: bleak's errors, scan filter and GATT calls, faked at bleak.

These tests fake bleak's classes to the shapes its 3.1 API documents; they show our adapter
maps errors and speaks the protocol, not that a real lockbox answers. Only the last test
touches the real bleak, and on a machine without Bluetooth all it can show is the error.
"""

from collections.abc import Callable
from typing import Any

import pytest
from ble_helpers import SERIAL, make_lockbox
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
)

import ble.bleak_transport
from ble.bleak_transport import BleakTransport
from ble.client import LockboxClient, find_and_open
from ble.gatt import advertised_name, manufacturer_data
from ble.inmemory import InMemoryTransport
from ble.outcomes import AccessOutcome
from ble.receipt import ReceiptVerdict
from ble.records import peek_record
from ble.transport import LockboxNotFoundError, NoAdapterError, TransportError

Filter = Callable[[BLEDevice, AdvertisementData], bool]
DEVICE = BLEDevice("AA:BB:CC:DD:EE:FF", advertised_name(SERIAL), details=None)


def _advertisement(name: str | None, data: dict[int, bytes]) -> AdvertisementData:
    return AdvertisementData(
        local_name=name,
        manufacturer_data=data,
        service_data={},
        service_uuids=[],
        tx_power=None,
        rssi=-60,
        platform_data=(),
    )


def _scanner_raising(error: BaseException) -> Callable[..., Any]:
    async def find_device_by_filter(filterfunc: Filter, **scan_args: object) -> BLEDevice:
        raise error

    return find_device_by_filter


def _scanner_seeing(*adverts: AdvertisementData) -> Callable[..., Any]:
    async def find_device_by_filter(filterfunc: Filter, **scan_args: object) -> BLEDevice | None:
        return next((DEVICE for advert in adverts if filterfunc(DEVICE, advert)), None)

    return find_device_by_filter


class FakeBleakClient:
    """BleakClient's call shapes, wired to a simulated lockbox instead of a radio."""

    def __init__(self, inner: InMemoryTransport, connect_error: BleakError | None = None) -> None:
        self.inner = inner
        self.connect_error = connect_error
        self.writes: list[tuple[str, bytes, bool | None]] = []

    def __call__(self, device: BLEDevice, *, timeout: float) -> "FakeBleakClient":
        assert device is DEVICE
        return self

    @property
    def mtu_size(self) -> int:
        return self.inner.mtu

    async def connect(self) -> None:
        if self.connect_error is not None:
            raise self.connect_error
        await self.inner.connect()

    async def disconnect(self) -> None:
        await self.inner.disconnect()

    async def read_gatt_char(self, char: str) -> bytearray:
        return bytearray(await self.inner.read(char))

    async def write_gatt_char(self, char: str, data: bytes, response: bool | None = None) -> None:
        self.writes.append((char, bytes(data), response))
        await self.inner.write(char, bytes(data))

    async def start_notify(self, char: str, callback: Callable[[Any, bytearray], None]) -> None:
        await self.inner.start_notify(char, lambda data: callback(object(), bytearray(data)))


@pytest.mark.parametrize(
    "error",
    [
        BleakBluetoothNotAvailableError(
            "No Bluetooth adapters found.", BleakBluetoothNotAvailableReason.NO_BLUETOOTH
        ),
        BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", ["bluez not running"]),
        FileNotFoundError(2, "No such file or directory"),  # no D-Bus socket at all
    ],
)
async def test_no_bluetooth_is_no_adapter_error(
    monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    monkeypatch.setattr(BleakScanner, "find_device_by_filter", _scanner_raising(error))
    with pytest.raises(NoAdapterError):
        await BleakTransport(SERIAL).connect()


async def test_nothing_in_range_is_lockbox_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    others = _advertisement(advertised_name("LB-1"), manufacturer_data("LB-1"))
    monkeypatch.setattr(BleakScanner, "find_device_by_filter", _scanner_seeing(others))
    with pytest.raises(LockboxNotFoundError, match=SERIAL):
        await BleakTransport(SERIAL).connect()


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (BleakDeviceNotFoundError(DEVICE.address), LockboxNotFoundError),
        (BleakError("le-connection-abort-by-local"), TransportError),
    ],
)
async def test_connect_errors_are_mapped(
    monkeypatch: pytest.MonkeyPatch, error: BleakError, raised: type[Exception]
) -> None:
    lockbox = make_lockbox()
    fake = FakeBleakClient(InMemoryTransport(lockbox.simulator), connect_error=error)
    advert = _advertisement(advertised_name(SERIAL), {})
    monkeypatch.setattr(BleakScanner, "find_device_by_filter", _scanner_seeing(advert))
    monkeypatch.setattr(ble.bleak_transport, "BleakClient", fake)
    with pytest.raises(raised):
        await BleakTransport(SERIAL).connect()


@pytest.mark.parametrize("found_by", ["name", "manufacturer data"])
async def test_the_client_opens_through_bleak_calls(
    monkeypatch: pytest.MonkeyPatch, found_by: str
) -> None:
    # given a lockbox that advertises its serial one way or the other
    lockbox = make_lockbox()
    fake = FakeBleakClient(InMemoryTransport(lockbox.simulator, mtu=23))
    advert = (
        _advertisement(advertised_name(SERIAL), {})
        if found_by == "name"
        else _advertisement(None, manufacturer_data(SERIAL))
    )
    monkeypatch.setattr(BleakScanner, "find_device_by_filter", _scanner_seeing(advert))
    monkeypatch.setattr(ble.bleak_transport, "BleakClient", fake)
    # when
    async with LockboxClient(BleakTransport(SERIAL), lockbox.device_key, timeout=2) as client:
        outcome = await client.open(lockbox.credential())
    # then
    assert outcome is AccessOutcome.OPENED
    assert len(fake.writes) > 1, "a credential does not fit one 20-byte write"
    assert all(len(data) <= 20 and response is True for _, data, response in fake.writes)


async def test_a_visit_hands_the_receipt_back_through_bleak_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a lockbox holding an earlier record, found by its advertised name
    lockbox = make_lockbox()
    lockbox.simulator.enter_code("00000000")
    fake = FakeBleakClient(InMemoryTransport(lockbox.simulator, mtu=23))
    advert = _advertisement(advertised_name(SERIAL), {})
    monkeypatch.setattr(BleakScanner, "find_device_by_filter", _scanner_seeing(advert))
    monkeypatch.setattr(ble.bleak_transport, "BleakClient", fake)

    async def upload(records: list[str]) -> str:  # the server, storing every record
        return lockbox.receipt([peek_record(record).seq for record in records])

    # when the phone opens it with the network at hand
    visit = await find_and_open(
        SERIAL, [lockbox.credential()], lockbox.device_key, BleakTransport, upload=upload
    )
    # then the receipt went back in 20-byte writes, and the lockbox dropped both records
    assert visit.outcome is AccessOutcome.OPENED
    assert len(visit.records) == 2
    assert visit.acknowledged == [ReceiptVerdict.ACCEPTED]
    assert lockbox.simulator.pending_records() == []
    assert all(len(data) <= 20 and response is True for _, data, response in fake.writes)


async def test_the_real_bleak_reports_bluetooth_or_its_absence() -> None:
    # Without a radio (CI, containers) bleak cannot reach BlueZ: NoAdapterError. With one,
    # no lockbox advertises this serial: LockboxNotFoundError. Either way, a clear error.
    with pytest.raises((NoAdapterError, LockboxNotFoundError)):
        await BleakTransport("LB-NOWHERE", scan_timeout=1).connect()
