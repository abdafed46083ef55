"""Per-client-address rate limits: a sliding one-minute window per (action, address)."""

from __future__ import annotations

import time
from collections import defaultdict, deque

from resolvers.errors import DomainError


class RateLimiter:
    """In-process; with several instances each allows the limit (the lockouts are global)."""

    def __init__(self, per_minute: int, window: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window
        self._hits: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def hit(self, action: str, address: str | None) -> None:
        """Count one attempt; raise TOO_MANY_ATTEMPTS past the limit."""
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        hits = self._hits[(action, address or "?")]
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.per_minute:
            raise DomainError(
                "TOO_MANY_ATTEMPTS", "Too many attempts from this address: wait a minute."
            )
        hits.append(now)
        if len(self._hits) > 100_000:
            self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]
