"""JSON the database wrote (schema/fast/page_sql.py), sent in the answer as it came.

Parsed into dicts and lists only to be encoded again, an agent's listings page cost as
much in Python as the statement that built it cost SQLite. The page's value stays its
text (a `Fragment`) until the answer is encoded, where the text takes its place: the same
JSON value, written as the database writes it (non-ASCII characters as themselves, not
escaped)."""

from __future__ import annotations

import json
import secrets


class Fragment:
    """A JSON value, as text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Fragment({self.text[:40]!r}...)"


# Stands for a fragment while the rest is encoded; unguessable, so no text sent by a user
# can be taken for one.
_MARK = f"keybin-fragment-{secrets.token_hex(12)}-"


def encode(data: object) -> str:
    """The answer as Strawberry encodes it (compact json.dumps), each Fragment's text in
    its place."""
    texts: list[str] = []

    def hold(value: object) -> str:
        if not isinstance(value, Fragment):
            raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
        texts.append(value.text)
        return f"{_MARK}{len(texts) - 1}"

    encoded = json.dumps(data, separators=(",", ":"), default=hold)
    for index, text in enumerate(texts):
        encoded = encoded.replace(f'"{_MARK}{index}"', text, 1)
    return encoded
