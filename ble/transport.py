"""The one seam between the lockbox client and a radio: a GATT connection to one lockbox."""

from collections.abc import Callable
from typing import Protocol

NotifyCallback = Callable[[bytes], None]


class TransportError(Exception):
    """The link to the lockbox failed."""


class NoAdapterError(TransportError):
    """No usable Bluetooth here: no adapter, adapter off, or BlueZ / D-Bus not running."""


class LockboxNotFoundError(TransportError):
    """No lockbox advertised the wanted serial while we scanned."""


class Transport(Protocol):
    """A GATT client; the same LockboxClient code runs over the in-memory and bleak ones."""

    @property
    def mtu(self) -> int:
        """The connection's ATT MTU; a write or notification carries at most mtu - 3 bytes."""
        ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def read(self, char_uuid: str) -> bytes: ...

    async def write(self, char_uuid: str, data: bytes) -> None: ...

    async def start_notify(self, char_uuid: str, callback: NotifyCallback) -> None: ...
