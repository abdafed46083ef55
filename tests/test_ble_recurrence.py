"""Weekly hours of recurring grants, in the grant's own time zone."""

from datetime import UTC, datetime

import pytest

from ble.recurrence import InvalidRecurrence, Recurrence, parse_recurrence, within_recurrence

# Tuesdays and Thursdays, 09:00-12:00 in Paris (UTC+2 in June, UTC+1 in January)
PARIS = Recurrence(tz="Europe/Paris", days=(2, 4), start="09:00", end="12:00")


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (datetime(2025, 6, 10, 7, 0, tzinfo=UTC), True),  # Tuesday 09:00, start inclusive
        (datetime(2025, 6, 10, 6, 59, 59, tzinfo=UTC), False),
        (datetime(2025, 6, 10, 9, 59, 59, tzinfo=UTC), True),
        (datetime(2025, 6, 10, 10, 0, tzinfo=UTC), False),  # 12:00, end exclusive
        (datetime(2025, 6, 11, 8, 0, tzinfo=UTC), False),  # Wednesday
        (datetime(2025, 6, 12, 8, 0, tzinfo=UTC), True),  # Thursday
        (datetime(2025, 1, 14, 8, 0, tzinfo=UTC), True),  # winter: 09:00 is 08:00 UTC
        (datetime(2025, 1, 14, 11, 0, tzinfo=UTC), False),
    ],
)
def test_within_recurrence(at: datetime, inside: bool) -> None:
    assert within_recurrence(PARIS, at) is inside


def test_24_00_ends_at_midnight() -> None:
    late = Recurrence(tz="UTC", days=(7,), start="20:00", end="24:00")
    assert within_recurrence(late, datetime(2025, 6, 15, 23, 59, 59, tzinfo=UTC))
    assert not within_recurrence(late, datetime(2025, 6, 16, 0, 0, tzinfo=UTC))


def test_claim_round_trip() -> None:
    assert PARIS.to_claim() == {
        "tz": "Europe/Paris",
        "days": [2, 4],
        "start": "09:00",
        "end": "12:00",
    }
    assert parse_recurrence(PARIS.to_claim()) == PARIS


@pytest.mark.parametrize(
    "claim",
    [
        None,
        {"tz": "UTC", "days": [1], "start": "09:00"},
        {"tz": "UTC", "days": [1], "start": "09:00", "end": "10:00", "more": 1},
        {"tz": "UTC", "days": [], "start": "09:00", "end": "10:00"},
        {"tz": "UTC", "days": [0], "start": "09:00", "end": "10:00"},
        {"tz": "UTC", "days": [True], "start": "09:00", "end": "10:00"},
        {"tz": "UTC", "days": "1", "start": "09:00", "end": "10:00"},
        {"tz": "UTC", "days": [1], "start": "9:00", "end": "10:00"},
        {"tz": "UTC", "days": [1], "start": "10:00", "end": "10:00"},
        {"tz": "UTC", "days": [1], "start": "22:00", "end": "06:00"},
        {"tz": "UTC", "days": [1], "start": "24:00", "end": "24:00"},
        {"tz": "Nowhere/Town", "days": [1], "start": "09:00", "end": "10:00"},
        {"tz": "../../etc/passwd", "days": [1], "start": "09:00", "end": "10:00"},
        {"tz": 1, "days": [1], "start": "09:00", "end": "10:00"},
        # other scripts' digits: \d takes them, a lockbox reading ASCII does not
        {"tz": "UTC", "days": [1], "start": "0\u0669:00", "end": "10:00"},
        {"tz": "UTC", "days": [1], "start": "09:00", "end": "1\u0660:00"},
        {"tz": "UTC", "days": [1], "start": "\uff10\uff19:00", "end": "10:00"},
    ],
)
def test_bad_claims_are_refused(claim: object) -> None:
    with pytest.raises(InvalidRecurrence):
        parse_recurrence(claim)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        within_recurrence(PARIS, datetime(2025, 6, 10, 9, 30))
