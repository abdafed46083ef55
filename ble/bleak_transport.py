"""The radio: bleak scans for advertising lockboxes, finds one by serial and speaks GATT to it."""

from collections.abc import Iterator
from contextlib import contextmanager

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDeviceNotFoundError, BleakError

from ble.advertising import Advertisement
from ble.gatt import advertises_serial
from ble.scan import Sighting
from ble.transport import LockboxNotFoundError, NoAdapterError, NotifyCallback, TransportError


def _no_adapter(error: BaseException) -> NoAdapterError:
    # BleakBluetoothNotAvailableError: no adapter or it is off; BleakDBusError: BlueZ is not
    # running; OSError: the D-Bus socket itself is missing.
    return NoAdapterError(f"Bluetooth is not available: {error!r}")


class BleakAir:
    """The air as the phone's radio hears it, for ble.scan.scan."""

    async def listen(self, seconds: float) -> list[Sighting]:
        try:
            seen = await BleakScanner.discover(timeout=seconds, return_adv=True)
        except (BleakError, OSError) as error:
            raise _no_adapter(error) from error
        return [
            Sighting(address, _advertisement(advertisement), advertisement.rssi)
            for address, (_, advertisement) in seen.items()
        ]


def _advertisement(advertisement: AdvertisementData) -> Advertisement:
    return Advertisement(advertisement.local_name, dict(advertisement.manufacturer_data))


class BleakTransport:
    """Scan and connect bounds are bleak's own timeouts; the client bounds every GATT wait."""

    def __init__(
        self, serial: str, *, scan_timeout: float = 10.0, connect_timeout: float = 20.0
    ) -> None:
        self.serial = serial
        self._scan_timeout = scan_timeout
        self._connect_timeout = connect_timeout
        self._client: BleakClient | None = None

    @property
    def mtu(self) -> int:
        # BlueZ always reports 23: slower (20-byte writes), never wrong.
        return self._connected().mtu_size

    async def connect(self) -> None:
        client = BleakClient(await self._find(), timeout=self._connect_timeout)
        try:
            await client.connect()
        except BleakDeviceNotFoundError as error:
            raise LockboxNotFoundError(f"lockbox {self.serial} went away") from error
        except BleakError as error:
            raise TransportError(f"could not connect to lockbox {self.serial}: {error}") from error
        self._client = client

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with self._link_errors():
                await client.disconnect()

    async def read(self, char_uuid: str) -> bytes:
        with self._link_errors():
            return bytes(await self._connected().read_gatt_char(char_uuid))

    async def write(self, char_uuid: str, data: bytes) -> None:
        # With response: the frames of one message must all arrive, and in order.
        with self._link_errors():
            await self._connected().write_gatt_char(char_uuid, data, response=True)

    async def start_notify(self, char_uuid: str, callback: NotifyCallback) -> None:
        def forward(_: BleakGATTCharacteristic, data: bytearray) -> None:
            callback(bytes(data))

        with self._link_errors():
            await self._connected().start_notify(char_uuid, forward)

    async def _find(self) -> BLEDevice:
        try:
            device = await BleakScanner.find_device_by_filter(
                self._advertises_serial, timeout=self._scan_timeout
            )
        except (BleakError, OSError) as error:
            raise _no_adapter(error) from error
        if device is None:
            raise LockboxNotFoundError(f"no lockbox {self.serial} in range")
        return device

    def _advertises_serial(self, _: BLEDevice, advertisement: AdvertisementData) -> bool:
        return advertises_serial(
            self.serial, advertisement.local_name, advertisement.manufacturer_data
        )

    def _connected(self) -> BleakClient:
        if self._client is None:
            raise TransportError("not connected")
        return self._client

    @contextmanager
    def _link_errors(self) -> Iterator[None]:
        try:
            yield
        except BleakError as error:
            raise TransportError(f"lockbox {self.serial}: {error}") from error
