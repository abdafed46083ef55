"""Phone numbers in, E.164 out (phonenumbers): US numbers in any common format, other
countries with their country code; shown back as people write them."""

from __future__ import annotations

import re

import phonenumbers

from core.errors import invalid_input

# ASCII digits only (\d would take any script's): what a phone keypad types and SMS shows.
_ALLOWED = re.compile(r"\+?[0-9\s.\-/()]+")
# North American Numbering Plan: area code and exchange never start with 0 or 1.
_NANP = re.compile(r"[2-9][0-9]{2}[2-9][0-9]{6}")
PHONE_RULE = "Enter a mobile number, e.g. (513) 555-0100 or +44 20 7946 0958."
# Numbers typed without a country code are read as this region's, and shown without one.
HOME_REGION = "US"


def normalize_phone(raw: str, *field: str) -> str:
    """The number as E.164 (+15135550100), or INVALID_INPUT on the given input field.

    phonenumbers reads it (a national number as the home region's, any country's trunk
    prefix and layout) and judges its length for its country. Letters, extensions and
    unbalanced brackets are refused first: a mobile number is digits."""
    text = raw.strip()
    if not text or len(text) > 32 or not _ALLOWED.fullmatch(text) or "+" in text[1:]:
        raise invalid_input(PHONE_RULE, *field)
    if text.count("(") != text.count(")"):
        raise invalid_input(PHONE_RULE, *field)
    try:
        number = phonenumbers.parse(text, HOME_REGION)
    except phonenumbers.NumberParseException as error:
        raise invalid_input(PHONE_RULE, *field) from error
    if not phonenumbers.is_possible_number(number):
        raise invalid_input(PHONE_RULE, *field)
    national = str(number.national_number)
    # The plan's own rule, which a possible-length check does not make: in the +1 plan an
    # area code and an exchange never start with 0 or 1.
    if number.country_code == 1 and not _NANP.fullmatch(national):
        raise invalid_input(PHONE_RULE, *field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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
