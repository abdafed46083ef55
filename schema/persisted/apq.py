"""Apollo's automatic persisted queries: the texts clients registered, by SHA-256.

A client sends a query's hash alone; the first time, the server answers
PersistedQueryNotFound and the client sends the text with its hash, which the server keeps.
Anyone may register, so what is kept is bounded twice, by count and by bytes, the least
recently used going first: filling it only evicts other texts, which their clients then send
again. Per process: another instance asks for the text once more, as Apollo's own servers do."""

from __future__ import annotations

import hashlib
from collections import OrderedDict


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class AutomaticStore:
    """Registered texts by their hash, an LRU bounded by count and bytes."""

    def __init__(self, max_documents: int, max_bytes: int) -> None:
        self.max_documents = max_documents
        self.max_bytes = max_bytes
        self.texts: OrderedDict[str, str] = OrderedDict()
        self.bytes = 0

    def get(self, sha256: str) -> str | None:
        text = self.texts.get(sha256)
        if text is not None:
            self.texts.move_to_end(sha256)
        return text

    def keep(self, sha256: str, text: str) -> bool:
        """Keep a text under its hash (the caller checked both); whether it fits at all."""
        size = _size(sha256, text)
        if size > self.max_bytes:
            return False
        self.drop(sha256)
        self.texts[sha256] = text
        self.bytes += size
        while len(self.texts) > self.max_documents or self.bytes > self.max_bytes:
            oldest, dropped = self.texts.popitem(last=False)
            self.bytes -= _size(oldest, dropped)
        return True

    def drop(self, sha256: str) -> None:
        text = self.texts.pop(sha256, None)
        if text is not None:
            self.bytes -= _size(sha256, text)


def _size(sha256: str, text: str) -> int:
    return len(sha256) + len(text.encode())
