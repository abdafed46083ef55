"""Splitting messages into frames that fit one ATT write or notification, and joining them."""

# Each frame: flags (1 byte), index (2 bytes, big-endian, from 0), then a chunk of the message.
FIRST = 0x01
LAST = 0x02
HEADER_SIZE = 3
ATT_OVERHEAD = 3  # opcode and handle of an ATT write or notification
MAX_MESSAGE = 8 * 1024  # a lockbox has little RAM; nothing in the protocol needs more


class FramingError(ValueError):
    """Frames out of order, unknown flags, or a message larger than MAX_MESSAGE."""


def frame(payload: bytes, mtu: int) -> list[bytes]:
    """Frames of at most `mtu` - 3 bytes, the most one ATT PDU carries at that MTU."""
    chunk_size = mtu - ATT_OVERHEAD - HEADER_SIZE
    if chunk_size < 1:
        raise ValueError(f"an MTU of {mtu} leaves no room for data")
    if len(payload) > MAX_MESSAGE:
        raise FramingError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE}")
    chunks = [payload[i : i + chunk_size] for i in range(0, len(payload), chunk_size)] or [b""]
    return [_header(i, len(chunks)) + chunk for i, chunk in enumerate(chunks)]


def _header(index: int, total: int) -> bytes:
    flags = (FIRST if index == 0 else 0) | (LAST if index == total - 1 else 0)
    return bytes([flags]) + index.to_bytes(2, "big")


class Reassembler:
    """Joins frames back into messages; any fault drops the partial message and raises."""

    def __init__(self) -> None:
        self._parts: list[bytes] | None = None  # None between messages
        self._size = 0

    def feed(self, data: bytes) -> bytes | None:
        """The complete message once its LAST frame arrives, else None."""
        try:
            return self._accept(data)
        except FramingError:
            self._parts, self._size = None, 0
            raise

    def _accept(self, data: bytes) -> bytes | None:
        flags, index, chunk = _parse(data)
        if flags & FIRST:
            if self._parts is not None:
                raise FramingError("a new message began before the last one ended")
            self._parts, self._size = [], 0
        if self._parts is None or index != len(self._parts):
            raise FramingError(f"frame {index} out of order")
        self._parts.append(chunk)
        self._size += len(chunk)
        if self._size > MAX_MESSAGE:
            raise FramingError(f"message exceeds {MAX_MESSAGE} bytes")
        if not flags & LAST:
            return None
        message, self._parts, self._size = b"".join(self._parts), None, 0
        return message


def _parse(data: bytes) -> tuple[int, int, bytes]:
    if len(data) < HEADER_SIZE:
        raise FramingError("frame shorter than its header")
    flags = data[0]
    if flags & ~(FIRST | LAST):
        raise FramingError(f"unknown frame flags {flags:#04x}")
    return flags, int.from_bytes(data[1:HEADER_SIZE], "big"), bytes(data[HEADER_SIZE:])
