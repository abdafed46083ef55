"""What a lockbox advertises while awake, and its bytes: BLE AD structures, as radios carry them."""

from dataclasses import dataclass, field

from ble.gatt import advertised_name, manufacturer_data

# AD types from the Bluetooth Core Specification Supplement, part A.
_FLAGS = 0x01
_COMPLETE_LOCAL_NAME = 0x09
_MANUFACTURER_SPECIFIC = 0xFF
# LE General Discoverable, BR/EDR not supported: awake and findable by any scanner.
_GENERAL_DISCOVERABLE = b"\x06"


class InvalidAdvertisement(ValueError):
    """Bytes that are not a sequence of AD structures."""


@dataclass(frozen=True)
class Advertisement:
    """The fields of an advertisement a lockbox uses; bleak's AdvertisementData has the same."""

    local_name: str | None = None
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)


def lockbox_advertisement(serial: str) -> Advertisement:
    """The serial twice: in the name and in manufacturer data, which survives name-dropping
    phones. (A radio sends the name in its scan response; a scanner reports both as one.)"""
    return Advertisement(advertised_name(serial), manufacturer_data(serial))


def encode_advertisement(advertisement: Advertisement) -> bytes:
    structures = [(_FLAGS, _GENERAL_DISCOVERABLE)]
    if advertisement.local_name is not None:
        structures.append((_COMPLETE_LOCAL_NAME, advertisement.local_name.encode()))
    for company, data in sorted(advertisement.manufacturer_data.items()):
        structures.append((_MANUFACTURER_SPECIFIC, company.to_bytes(2, "little") + data))
    out = bytearray()
    for ad_type, data in structures:
        if len(data) > 254:
            raise InvalidAdvertisement(f"AD type {ad_type:#04x} holds {len(data)} bytes")
        out += bytes([len(data) + 1, ad_type]) + data
    return bytes(out)


def decode_advertisement(data: bytes) -> Advertisement:
    """Unknown AD types are skipped, as every scanner does."""
    name = None
    makers: dict[int, bytes] = {}
    at = 0
    while at < len(data):
        length = data[at]
        if length == 0:
            break  # the rest is padding
        body = data[at + 1 : at + 1 + length]
        if len(body) != length:
            raise InvalidAdvertisement(f"an AD structure at byte {at} runs past the end")
        ad_type, value = body[0], body[1:]
        if ad_type == _COMPLETE_LOCAL_NAME:
            name = value.decode(errors="replace")
        elif ad_type == _MANUFACTURER_SPECIFIC and len(value) >= 2:
            makers[int.from_bytes(value[:2], "little")] = value[2:]
        at += 1 + length
    return Advertisement(name, makers)
