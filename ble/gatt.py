"""The lockbox's GATT profile: its service, characteristics and how it advertises its serial."""

from collections.abc import Mapping

# 128-bit UUIDs under one keybin base ("keybin" in ASCII leads); only the last digit varies.
SERVICE_UUID = "6b657962-696e-4c4b-a000-000000000000"
# read: the NONCE_SIZE-byte nonce of this connection. A read, not a notification, because a
# notification sent before the phone subscribes is lost.
CHALLENGE_UUID = "6b657962-696e-4c4b-a000-000000000001"
NONCE_SIZE = 16
# write with response: the phone's request, in frames.
COMMAND_UUID = "6b657962-696e-4c4b-a000-000000000002"
# notify: the lockbox's answer, in frames. Access records travel here too (the "records"
# request), since a batch of them outgrows the 512 bytes a readable attribute may hold.
RESPONSE_UUID = "6b657962-696e-4c4b-a000-000000000003"

# 0xFFFF is the Bluetooth SIG company id reserved for tests and internal use; a product
# would use its own assigned id.
MANUFACTURER_ID = 0xFFFF
NAME_PREFIX = "keybin-"
MANUFACTURER_TAG = b"KB"


def advertised_name(serial: str) -> str:
    return NAME_PREFIX + serial


def manufacturer_data(serial: str) -> dict[int, bytes]:
    """Also carries the serial: some phones drop or truncate the local name."""
    return {MANUFACTURER_ID: MANUFACTURER_TAG + serial.encode()}


def advertises_serial(serial: str, local_name: str | None, data: Mapping[int, bytes]) -> bool:
    by_name = local_name == advertised_name(serial)
    return by_name or data.get(MANUFACTURER_ID) == manufacturer_data(serial)[MANUFACTURER_ID]
