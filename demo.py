"""Demo data for `keybin serve --demo`: regions, agents, listings, lockboxes, a contractor."""

from __future__ import annotations

from settings import Settings


async def load_demo(settings: Settings, announce: bool = True, host: str = "127.0.0.1", port: int = 8000) -> None:
    raise NotImplementedError
