"""Frames that fit the MTU, and putting them back together."""

import os

import pytest

from ble.framing import FIRST, LAST, MAX_MESSAGE, FramingError, Reassembler, frame


def _join(frames: list[bytes]) -> list[bytes]:
    inbox = Reassembler()
    return [message for part in frames if (message := inbox.feed(part)) is not None]


@pytest.mark.parametrize("mtu", [23, 185, 517])
@pytest.mark.parametrize("size", [0, 1, 17, 18, 600, MAX_MESSAGE])
def test_round_trip(mtu: int, size: int) -> None:
    payload = os.urandom(size)
    frames = frame(payload, mtu)
    assert all(len(part) <= mtu - 3 for part in frames)
    assert _join(frames) == [payload]


def test_flags_mark_first_and_last() -> None:
    frames = frame(b"x" * 40, 23)  # 17 bytes of data per frame: 3 frames
    assert [part[:3] for part in frames] == [
        bytes([FIRST, 0, 0]),
        bytes([0, 0, 1]),
        bytes([LAST, 0, 2]),
    ]
    assert frame(b"", 23) == [bytes([FIRST | LAST, 0, 0])]


def test_messages_follow_each_other() -> None:
    assert _join(frame(b"one" * 20, 23) + frame(b"two", 23)) == [b"one" * 20, b"two"]


@pytest.mark.parametrize(
    "frames",
    [
        [b"\x00\x00\x00abc"],  # no FIRST
        [b"\x01\x00\x01abc"],  # FIRST with index 1
        [b"\x01\x00\x00abc", b"\x00\x00\x02abc"],  # a frame missing
        [b"\x01\x00\x00abc", b"\x00\x00\x00abc"],  # a frame repeated
        [b"\x01\x00\x00abc", b"\x01\x00\x00abc"],  # a new message in the middle
        [b"\x04\x00\x00abc"],  # unknown flag
        [b"\x03\x00"],  # shorter than a header
        [b"\x01\x00\x00" + bytes(MAX_MESSAGE), b"\x02\x00\x01x"],  # too big
    ],
)
def test_garbage_is_refused(frames: list[bytes]) -> None:
    with pytest.raises(FramingError):
        _join(frames)


def test_after_garbage_the_next_message_gets_through() -> None:
    inbox = Reassembler()
    inbox.feed(b"\x01\x00\x00half")
    with pytest.raises(FramingError):
        inbox.feed(b"\x00\x00\x05lost")
    assert [inbox.feed(part) for part in frame(b"whole", 23)] == [b"whole"]


def test_frame_refuses_what_cannot_be_sent() -> None:
    with pytest.raises(FramingError):
        frame(bytes(MAX_MESSAGE + 1), 185)
    with pytest.raises(ValueError, match="MTU"):
        frame(b"x", 6)
