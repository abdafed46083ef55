"""What every case is handed: the mode, sizes, durations, CPUs and a scratch directory."""

from __future__ import annotations

import os
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench.report import Row
from bench.seed import Template

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """uvloop where installed: the load client must not be the slow side."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        import asyncio

        return asyncio.run(coro)
    return uvloop.run(coro)


@dataclass
class Context:
    quick: bool
    tiny: bool
    workdir: Path
    server_cpu: int | None
    client_cpu: int | None
    seconds: float
    warmup: float
    template: Template = field(init=False)

    def __post_init__(self) -> None:
        self.template = Template(self.workdir)
        self.log_dir = self.workdir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def size(self, full: int, quick: int, tiny: int | None = None) -> int:
        if self.tiny and tiny is not None:
            return tiny
        return quick if self.quick else full

    def database(self, name: str) -> str:
        """A fresh migrated SQLite database for one case."""
        return self.template.copy_to(self.workdir / f"{name}.sqlite3")

    def keybin_env(self, database_url: str) -> dict[str, str]:
        """keybin as it runs in production: errors masked, no introspection, no GraphiQL."""
        return {
            "DATABASE_URL": database_url,
            "KEYBIN_ENV": "production",
            "SECRET_KEY": "bench-secret-" + "k" * 40,
            # Required in production; nothing the benchmarks do sends mail.
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": "9",
            "SMS_BACKEND": "http",
            "SMS_HTTP_URL": "http://127.0.0.1:9/sms",
            "RATE_LIMIT_PER_MINUTE": "1000000",
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }


@dataclass
class CaseResult:
    rows: list[Row]
    details: dict[str, Any] = field(default_factory=dict)
