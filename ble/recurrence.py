"""Weekly hours a recurring grant is limited to, checked in the listing region's time zone."""

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# [0-9], not \d: \d also matches other scripts' digits ("٠٩:00"), which would be stored and
# signed into the credential's `rec` claim for a lockbox that reads ASCII.
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")


class InvalidRecurrence(ValueError):
    """A `rec` claim or recurrence input that does not have the documented shape."""


@dataclass(frozen=True)
class Recurrence:
    """Open on `days` (ISO weekdays, 1 = Monday) from `start` (inclusive) to `end` (exclusive).

    Times are "HH:MM" in `tz`; "24:00" ends at midnight. A window may not pass midnight:
    a night shift is two windows' worth of grant, not one.
    """

    tz: str
    days: tuple[int, ...]
    start: str
    end: str

    def __post_init__(self) -> None:
        _check_zone(self.tz)
        if not self.days or any(_not_weekday(day) for day in self.days):
            raise InvalidRecurrence("days must be ISO weekdays 1..7")
        if _minutes(self.start) >= _minutes(self.end):
            raise InvalidRecurrence("start must be before end on the same day")

    def to_claim(self) -> dict[str, object]:
        return {"tz": self.tz, "days": list(self.days), "start": self.start, "end": self.end}


def parse_recurrence(claim: object) -> Recurrence:
    if not isinstance(claim, dict) or set(claim) != {"tz", "days", "start", "end"}:
        raise InvalidRecurrence("rec must have exactly tz, days, start and end")
    days, tz, start, end = claim["days"], claim["tz"], claim["start"], claim["end"]
    if not isinstance(days, list) or not all(isinstance(x, str) for x in (tz, start, end)):
        raise InvalidRecurrence("rec has a field of the wrong type")
    return Recurrence(tz=tz, days=tuple(days), start=start, end=end)


def within_recurrence(rec: Recurrence, at: datetime) -> bool:
    if at.tzinfo is None:
        raise ValueError("a naive datetime has no place in time; pass an aware one")
    local = at.astimezone(ZoneInfo(rec.tz))
    seconds = local.hour * 3600 + local.minute * 60 + local.second
    in_hours = _minutes(rec.start) * 60 <= seconds < _minutes(rec.end) * 60
    return local.isoweekday() in rec.days and in_hours


def _minutes(hhmm: str) -> int:
    if not _HHMM.fullmatch(hhmm):
        raise InvalidRecurrence(f"{hhmm!r} is not HH:MM")
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _not_weekday(day: object) -> bool:
    return isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 7


def _check_zone(tz: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidRecurrence(f"unknown time zone {tz!r}") from error
