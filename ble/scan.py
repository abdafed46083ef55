"""Finding lockboxes nearby: one whose ENT was just pressed advertises its serial for a while."""

from dataclasses import dataclass
from typing import Protocol

from ble.advertising import Advertisement
from ble.gatt import advertised_serial
from ble.serials import normalize_serial

DEFAULT_SCAN_SECONDS = 5.0


@dataclass(frozen=True)
class Sighting:
    """One device heard while scanning: its radio address, what it advertised, how loud."""

    address: str
    advertisement: Advertisement
    rssi: int | None = None


class Air(Protocol):
    """What a scan listens to: the radio (ble.bleak_transport.BleakAir), simulated lockboxes
    (ble.inmemory.SimulatedAir) or simulators on sockets (ble.socket_transport.SocketAir)."""

    async def listen(self, seconds: float) -> list[Sighting]: ...


@dataclass(frozen=True)
class FoundLockbox:
    serial: str  # as the lockbox advertises it; open it with this
    address: str
    rssi: int | None


async def scan(air: Air | None = None, seconds: float = DEFAULT_SCAN_SECONDS) -> list[FoundLockbox]:
    """The lockboxes advertising now, nearest (loudest) first, each serial once.

    Raises ble.transport.NoAdapterError when there is no usable Bluetooth here.
    """
    if air is None:
        from ble.bleak_transport import BleakAir  # bleak is imported only where a radio is used

        air = BleakAir()
    nearest: dict[str, FoundLockbox] = {}
    for sighting in await air.listen(seconds):
        advertisement = sighting.advertisement
        serial = advertised_serial(advertisement.local_name, advertisement.manufacturer_data)
        if serial is None:
            continue  # a phone, a watch, a speaker: not a lockbox
        found = FoundLockbox(serial, sighting.address, sighting.rssi)
        key = normalize_serial(serial)
        if key not in nearest or _loudness(found) > _loudness(nearest[key]):
            nearest[key] = found
    return sorted(nearest.values(), key=lambda found: (-_loudness(found), found.serial))


def _loudness(found: FoundLockbox) -> int:
    return found.rssi if found.rssi is not None else -1000  # unknown: as if far away
