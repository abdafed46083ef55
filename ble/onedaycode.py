"""One Day Codes: an 8-digit HOTP of the date, for lockboxes (or people) without the app."""

import hmac
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pyotp

from ble.outcomes import AccessOutcome
from ble.secret import normalize_secret

DIGITS = 8
OPENS = time(8)
CLOSES = time(22)


def one_day_code(secret: str, day: date) -> str:
    """The counter is the date's ordinal, so the offline lockbox computes the same code."""
    return pyotp.HOTP(normalize_secret(secret), digits=DIGITS).at(day.toordinal())


def one_day_code_window(day: date, tz: str) -> tuple[datetime, datetime]:
    """When the code for `day` opens the lockbox, as UTC datetimes (start inclusive)."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, OPENS, tzinfo=zone)
    end = datetime.combine(day, CLOSES, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def check_one_day_code(secret: str, code: str, at: datetime, tz: str) -> AccessOutcome:
    """What a lockbox in zone `tz` does with `code` entered at `at`.

    Yesterday's and tomorrow's codes are recognised only to record a useful denial.
    """
    today = at.astimezone(ZoneInfo(tz)).date()
    if _matches(secret, code, today):
        start, end = one_day_code_window(today, tz)
        if at < start:
            return AccessOutcome.DENIED_NOT_YET_VALID
        return AccessOutcome.OPENED if at < end else AccessOutcome.DENIED_EXPIRED
    if _matches(secret, code, today + timedelta(days=1)):
        return AccessOutcome.DENIED_NOT_YET_VALID
    if _matches(secret, code, today - timedelta(days=1)):
        return AccessOutcome.DENIED_EXPIRED
    return AccessOutcome.DENIED_INVALID_CREDENTIAL


def _matches(secret: str, code: str, day: date) -> bool:
    return hmac.compare_digest(code.encode(), one_day_code(secret, day).encode())
