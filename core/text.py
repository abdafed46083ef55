"""Single-line text: what a name, an address line or a mail header may hold."""

from __future__ import annotations

import re

# C0 and C1 controls (CR, LF, NUL, NEL among them), DEL, and Unicode's line and paragraph
# separators: each either breaks a line where one line is shown or sent (a mail header, a
# subject, a message title, a console row) or is invisible there.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_BREAKS = re.compile(r"\s*[\x00-\x1f\x7f-\x9f\u2028\u2029][\s\x00-\x1f\x7f-\x9f\u2028\u2029]*")


def is_one_line(text: str) -> bool:
    """True when the text holds no control character and no line break."""
    return _NOT_ONE_LINE.search(text) is None


def one_line(text: str) -> str:
    """The text with each run of control characters and line breaks (and the spaces around
    them) made one space: for text stored before it was checked."""
    return _BREAKS.sub(" ", text).strip()
