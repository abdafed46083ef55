"""Phone numbers as people type them, read by phonenumbers into E.164, and shown back."""

from __future__ import annotations

import pytest

from core.errors import DomainError
from resolvers.phones import display_phone, normalize_phone


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("(513) 555-0142", "+15135550142"),
        ("513.555.0142", "+15135550142"),
        ("1 513 555 0142", "+15135550142"),
        ("+1 513-555-0142", "+15135550142"),
        ("+44 20 7946 0958", "+442079460958"),
        # the trunk prefix people write in brackets is not part of the number
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("+49 30 901820", "+4930901820"),
    ],
)
def test_a_number_in_any_common_layout_is_stored_as_e164(typed: str, stored: str) -> None:
    assert normalize_phone(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "123",
        "+999 1234567",  # no country has code 999
        "+1 113 555 0100",  # an area code never starts with 1
        "+1 513 155 0100",  # nor an exchange
        "513-555-0142 ext. 7",  # an extension is no mobile number
        "1-800-FLOWERS",
        "(513 555-0142",
        "+1 513 555 0142 +1",
        "5" * 40,
    ],
)
def test_anything_else_is_refused_with_the_rule(typed: str) -> None:
    with pytest.raises(DomainError) as refused:
        normalize_phone(typed, "phone")
    assert refused.value.code == "INVALID_INPUT"
    assert refused.value.field == ["input", "phone"] or refused.value.field[-1] == "phone"


def test_numbers_are_shown_nationally_at_home_and_internationally_otherwise() -> None:
    assert display_phone("+15135550142") == "(513) 555-0142"
    assert display_phone("+442079460958") == "+44 20 7946 0958"
    assert display_phone("not a number") == "not a number"
