"""GATT over a local socket: a simulated lockbox another process can reach without a radio.

Each packet is a 2-byte big-endian length, then one opcode byte and its body. The phone
sends HELLO (the serial it wants), READ / WRITE / SUBSCRIBE (a 16-byte characteristic UUID,
then the data); the lockbox answers each with OK (HELLO: the MTU; READ: the value) or
ERROR (a UTF-8 reason), and sends NOTIFY packets whenever a subscribed value changes. The
payloads are the same frames the radio carries, at the same MTU. A scanner sends ADVERTISE
instead of HELLO: the answer is OK with the advertisement's AD structures while the
lockbox advertises (ENT pressed), OK with nothing otherwise, and the connection ends.
"""

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ble.advertising import InvalidAdvertisement, decode_advertisement, encode_advertisement
from ble.inmemory import InMemoryTransport
from ble.scan import Sighting
from ble.serials import same_serial
from ble.simulator import LockboxSimulator
from ble.transport import LockboxNotFoundError, NotifyCallback, TransportError

HELLO, READ, WRITE, SUBSCRIBE, ADVERTISE = b"H", b"R", b"W", b"S", b"A"
OK, ERROR, NOTIFY = b"K", b"E", b"N"
DEFAULT_MTU = 185
_MAX_PACKET = 0xFFFF
_SCAN_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Address:
    """`host:port` for TCP, or `unix:/path` for a Unix socket."""

    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"


def parse_address(text: str) -> Address:
    if text.startswith("unix:"):
        return Address(path=text.removeprefix("unix:"))
    host, _, port = text.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"{text!r} is not HOST:PORT or unix:PATH")
    return Address(host=host.strip("[]"), port=int(port))


async def _send(writer: asyncio.StreamWriter, op: bytes, body: bytes = b"") -> None:
    packet = op + body
    if len(packet) > _MAX_PACKET:
        raise TransportError(f"a {len(packet)}-byte packet is too large")
    writer.write(len(packet).to_bytes(2, "big") + packet)
    await writer.drain()


async def _receive(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    size = int.from_bytes(await reader.readexactly(2), "big")
    if size < 1:
        raise TransportError("empty packet")
    packet = await reader.readexactly(size)
    return packet[:1], packet[1:]


async def _open(address: Address) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if address.path:
        return await asyncio.open_unix_connection(address.path)
    return await asyncio.open_connection(address.host, address.port)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _uuid(body: bytes) -> tuple[str, bytes]:
    if len(body) < 16:
        raise TransportError("packet too short for a characteristic UUID")
    return str(uuid.UUID(bytes=body[:16])), body[16:]


class SocketTransport:
    """The phone's side: one connection to a lockbox served by `serve_lockbox`."""

    def __init__(self, address: Address, serial: str, *, connect_timeout: float = 5.0) -> None:
        self.address = address
        self.serial = serial
        self._connect_timeout = connect_timeout
        self._mtu = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._answers: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._on_notify: NotifyCallback | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def mtu(self) -> int:
        return self._mtu

    async def connect(self) -> None:
        try:
            async with asyncio.timeout(self._connect_timeout):
                streams = await _open(self.address)
        except (OSError, TimeoutError) as error:
            raise LockboxNotFoundError(f"no lockbox listening at {self.address}") from error
        self._reader, self._writer = streams
        self._answers = asyncio.Queue()
        self._closed = False
        self._pump = asyncio.create_task(self._read_packets(self._reader))
        try:
            mtu = await self._request(HELLO, self.serial.encode())
        except TransportError as error:
            await self.disconnect()
            raise LockboxNotFoundError(f"lockbox {self.serial}: {error}") from error
        self._mtu = int.from_bytes(mtu, "big")

    async def disconnect(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        writer, self._writer = self._writer, None
        if writer is not None:
            await _close(writer)

    async def read(self, char_uuid: str) -> bytes:
        return await self._request(READ, uuid.UUID(char_uuid).bytes)

    async def write(self, char_uuid: str, data: bytes) -> None:
        await self._request(WRITE, uuid.UUID(char_uuid).bytes + data)

    async def start_notify(self, char_uuid: str, callback: NotifyCallback) -> None:
        self._on_notify = callback
        await self._request(SUBSCRIBE, uuid.UUID(char_uuid).bytes)

    async def _request(self, op: bytes, body: bytes) -> bytes:
        if self._writer is None or self._closed:
            raise TransportError("not connected")
        async with self._lock:  # one request in flight, as on a GATT link
            try:
                await _send(self._writer, op, body)
            except OSError as error:
                raise TransportError(f"lockbox link lost: {error}") from error
            kind, answer = await self._answers.get()
        if kind == ERROR:
            raise TransportError(answer.decode(errors="replace"))
        return answer

    async def _read_packets(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                kind, body = await _receive(reader)
                if kind == NOTIFY:
                    if self._on_notify is not None:
                        self._on_notify(body)
                else:
                    self._answers.put_nowait((kind, body))
        except (asyncio.IncompleteReadError, OSError, TransportError):
            self._closed = True
            self._answers.put_nowait((ERROR, b"the lockbox closed the connection"))


class SocketAir:
    """Simulated lockboxes at known addresses, heard the way a radio scan hears lockboxes:
    each advertisement is asked for until the scan's time is up or every one has answered."""

    def __init__(self, addresses: Iterable[Address], *, connect_timeout: float = 2.0) -> None:
        self._addresses = list(addresses)
        self._connect_timeout = connect_timeout

    async def listen(self, seconds: float) -> list[Sighting]:
        heard: dict[Address, Sighting] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            quiet = [address for address in self._addresses if address not in heard]
            answers = await asyncio.gather(*(self._ask(address) for address in quiet))
            heard |= {address: seen for address, seen in zip(quiet, answers, strict=True) if seen}
            if len(heard) == len(self._addresses) or loop.time() >= deadline:
                return [heard[address] for address in self._addresses if address in heard]
            await asyncio.sleep(min(_SCAN_POLL_SECONDS, max(deadline - loop.time(), 0)))

    async def _ask(self, address: Address) -> Sighting | None:
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await _open(address)
                try:
                    await _send(writer, ADVERTISE)
                    kind, body = await _receive(reader)
                finally:
                    await _close(writer)
            advertisement = decode_advertisement(body) if kind == OK and body else None
        except (OSError, TimeoutError, asyncio.IncompleteReadError, TransportError):
            return None  # nothing listening there: a lockbox out of range
        except InvalidAdvertisement:
            return None  # not a lockbox we understand
        if advertisement is None:
            return None  # there, but asleep: nobody pressed ENT
        return Sighting(str(address), advertisement)


Log = Callable[[str], None]


async def serve_lockbox(
    lockbox: LockboxSimulator, address: Address, *, mtu: int = DEFAULT_MTU, log: Log = print
) -> asyncio.Server:
    """Serve `lockbox` at `address`; each connection is one BLE connection, with its nonce."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _session(lockbox, mtu, reader, writer, log)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the phone went away, as phones do
        finally:
            await _close(writer)

    if address.path:
        return await asyncio.start_unix_server(handle, address.path)
    return await asyncio.start_server(handle, address.host, address.port)


async def _session(
    lockbox: LockboxSimulator,
    mtu: int,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    log: Log,
) -> None:
    kind, body = await _receive(reader)
    if kind == ADVERTISE:
        advertisement = lockbox.advertisement()
        await _send(writer, OK, encode_advertisement(advertisement) if advertisement else b"")
        return
    if kind != HELLO or not same_serial(body.decode(errors="replace"), lockbox.serial):
        await _send(writer, ERROR, f"this is lockbox {lockbox.serial}".encode())
        return
    # The GATT server itself is the in-memory one; this only carries its frames.
    gatt = InMemoryTransport(lockbox, mtu=mtu)
    await gatt.connect()
    await _send(writer, OK, mtu.to_bytes(2, "big"))
    pending: set[asyncio.Task[None]] = set()

    def notify(data: bytes) -> None:
        task = asyncio.create_task(_send(writer, NOTIFY, data))
        pending.add(task)
        task.add_done_callback(pending.discard)

    while True:
        kind, body = await _receive(reader)
        try:
            char_uuid, data = _uuid(body)
            if kind == READ:
                await _send(writer, OK, await gatt.read(char_uuid))
            elif kind == WRITE:
                await gatt.write(char_uuid, data)
                await _send(writer, OK)
            elif kind == SUBSCRIBE:
                await gatt.start_notify(char_uuid, notify)
                await _send(writer, OK)
            else:
                raise TransportError(f"unknown request {kind!r}")
        except TransportError as error:
            log(f"refused a request: {error}")
            await _send(writer, ERROR, str(error).encode())
