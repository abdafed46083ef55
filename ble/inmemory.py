"""A transport without a radio: frames go straight to a LockboxSimulator's GATT service."""

import asyncio
from collections.abc import Iterable

from ble.framing import ATT_OVERHEAD, FramingError, Reassembler, frame
from ble.gatt import CHALLENGE_UUID, COMMAND_UUID, RESPONSE_UUID
from ble.messages import error_answer
from ble.scan import Sighting
from ble.simulator import LockboxSession, LockboxSimulator
from ble.transport import NotifyCallback, TransportError

BLE_MIN_MTU = 23
SIMULATED_RSSI = -60  # dBm: a phone held a step away from the lockbox


class InMemoryTransport:
    """Plays the air and the lockbox's GATT server, with the limits a real link has."""

    def __init__(self, lockbox: LockboxSimulator, mtu: int = BLE_MIN_MTU) -> None:
        self._lockbox = lockbox
        self._mtu = mtu
        self._session: LockboxSession | None = None
        self._inbox = Reassembler()
        self._on_response: NotifyCallback | None = None

    @property
    def mtu(self) -> int:
        return self._mtu

    async def connect(self) -> None:
        self._session = self._lockbox.connect()
        self._inbox = Reassembler()
        self._on_response = None

    async def disconnect(self) -> None:
        self._session = None

    async def read(self, char_uuid: str) -> bytes:
        session = self._connected()
        if char_uuid != CHALLENGE_UUID:
            raise TransportError(f"characteristic {char_uuid} is not readable")
        return session.nonce

    async def start_notify(self, char_uuid: str, callback: NotifyCallback) -> None:
        self._connected()
        if char_uuid != RESPONSE_UUID:
            raise TransportError(f"characteristic {char_uuid} does not notify")
        self._on_response = callback

    async def write(self, char_uuid: str, data: bytes) -> None:
        session = self._connected()
        if char_uuid != COMMAND_UUID:
            raise TransportError(f"characteristic {char_uuid} is not writable")
        if len(data) > self._mtu - ATT_OVERHEAD:
            raise TransportError(f"a {len(data)}-byte write does not fit MTU {self._mtu}")
        try:
            message = self._inbox.feed(data)
        except FramingError:
            self._notify(error_answer("bad_frame"))
            return
        if message is not None:
            self._notify(session.handle(message))

    def _notify(self, answer: bytes) -> None:
        if self._on_response is None:
            return  # as on the air: nobody subscribed, nobody hears it
        # Later, not now: a real notification arrives after the write has returned.
        loop = asyncio.get_running_loop()
        for part in frame(answer, self._mtu):
            loop.call_soon(self._on_response, part)

    def _connected(self) -> LockboxSession:
        if self._session is None:
            raise TransportError("not connected")
        return self._session


class SimulatedAir:
    """The air around simulated lockboxes: a scan hears those whose ENT was just pressed."""

    def __init__(self, lockboxes: Iterable[LockboxSimulator], rssi: int = SIMULATED_RSSI) -> None:
        self._lockboxes = list(lockboxes)
        self._rssi = rssi

    async def listen(self, seconds: float) -> list[Sighting]:
        # What is advertising as the scan runs; a simulated scan need not wait to hear it.
        return [
            Sighting(f"simulated:{lockbox.serial}", advertisement, self._rssi)
            for lockbox in self._lockboxes
            if (advertisement := lockbox.advertisement()) is not None
        ]
