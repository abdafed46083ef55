"""Phone numbers in, E.164 out: US numbers in any common format, other countries as +E.164."""

from __future__ import annotations

import re

import phonenumbers

from core.errors import invalid_input

# What people type between digits: spaces, dots, dashes, slashes and brackets.
_SEPARATORS = re.compile(r"[\s.\-/()]")
_ALLOWED = re.compile(r"\+?[\d\s.\-/()]+")
# North American Numbering Plan: area code and exchange never start with 0 or 1.
_NANP = re.compile(r"[2-9]\d{2}[2-9]\d{6}")
# E.164: a country code (no leading 0), at most 15 digits in all.
_E164 = re.compile(r"[1-9]\d{7,14}")
PHONE_RULE = "Enter a mobile number, e.g. (513) 555-0100 or +44 20 7946 0958."
# Numbers typed without a country code are read as this region's, and shown without one.
HOME_REGION = "US"


def normalize_phone(raw: str, *field: str) -> str:
    """The number as E.164 (+15135550100), or INVALID_INPUT on the given input field."""
    text = raw.strip()
    if not text or len(text) > 32 or not _ALLOWED.fullmatch(text) or "+" in text[1:]:
        raise invalid_input(PHONE_RULE, *field)
    if text.count("(") != text.count(")"):
        raise invalid_input(PHONE_RULE, *field)
    digits = _SEPARATORS.sub("", text)
    if digits.startswith("+"):
        digits = digits[1:]
        if digits.startswith("1"):
            return _nanp(digits[1:], field)
        if not _E164.fullmatch(digits):
            raise invalid_input(PHONE_RULE, *field)
        return f"+{digits}"
    # Without a country code the number is read as a US one (the service's home).
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return _nanp(digits, field)


def _nanp(national: str, field: tuple[str, ...]) -> str:
    if not _NANP.fullmatch(national):
        raise invalid_input(PHONE_RULE, *field)
    return f"+1{national}"


def display_phone(e164: str) -> str:
    """A stored number as people read it: (513) 555-0100 at home (the whole +1 plan, which
    dials alike from anywhere in it), +44 20 7946 0958 elsewhere; unparsable text unchanged."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    home = number.country_code == phonenumbers.country_code_for_region(HOME_REGION)
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if home
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)
