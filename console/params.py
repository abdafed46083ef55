"""Numbers the console reads from its addresses: ids and positions, as the columns hold them."""

from __future__ import annotations

from starlette.convertors import Convertor

# The columns' ranges: ids are 32-bit integers on PostgreSQL (int4), the trail's are 64-bit.
MAX_ID = 2**31 - 1
MAX_BIG_ID = 2**63 - 1
_DIGITS = frozenset("0123456789")  # str.isdigit() also takes "²" (int() refuses it) and "١"


def number(text: str, limit: int = MAX_ID) -> int | None:
    """The whole number written in ASCII digits, when it is at most `limit`; otherwise None."""
    text = text.strip()
    if not text or not _DIGITS.issuperset(text) or len(text) > len(str(limit)):
        return None
    value = int(text)
    return value if value <= limit else None


def at_most(limit: int) -> str:
    """A regular expression for the decimal numbers 0 to `limit` (leading zeros aside): a path
    with a larger one matches no route, so it is a 404 before any query is made of it."""
    digits = str(limit)
    options = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for place, digit in enumerate(digits):
        if digit != "0":
            rest = len(digits) - place - 1
            options.append(f"{digits[:place]}[0-{int(digit) - 1}][0-9]{{{rest}}}")
    options.append(digits)
    return "(?:" + "|".join(options) + ")"


class IdConvertor(Convertor[int]):
    """`{name:id}` in a route: an id the id columns can hold."""

    regex = at_most(MAX_ID)

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(int(value))
