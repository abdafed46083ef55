"""The lockbox's GATT profile: its service, characteristics and how it advertises its serial."""

from collections.abc import Mapping

from ble.serials import same_serial

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


def advertised_serial(local_name: str | None, data: Mapping[int, bytes]) -> str | None:
    """The serial a lockbox advertises, or None for any other device.

    Manufacturer data first: a phone may drop or truncate the local name.
    """
    payload = data.get(MANUFACTURER_ID, b"")
    if payload.startswith(MANUFACTURER_TAG) and len(payload) > len(MANUFACTURER_TAG):
        return payload[len(MANUFACTURER_TAG) :].decode(errors="replace")
    if local_name and local_name.startswith(NAME_PREFIX) and len(local_name) > len(NAME_PREFIX):
        return local_name.removeprefix(NAME_PREFIX)
    return None


def advertises_serial(serial: str, local_name: str | None, data: Mapping[int, bytes]) -> bool:
    advertised = advertised_serial(local_name, data)
    return advertised is not None and same_serial(advertised, serial)
