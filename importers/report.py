"""What an import did (created, updated, skipped rows with reasons) and its progress bar."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

# Past this many rows a progress bar is worth showing even when stderr is not a terminal.
LARGE_FILE_ROWS = 1000


class ImportFileError(Exception):
    """The file as a whole cannot be imported: unreadable, not JSON, no header, ..."""


class RowError(ValueError):
    """One row is bad; the import reports it and carries on with the next."""


@dataclass
class ImportReport:
    """Counts and bad rows; `position` says what the numbers in `skipped` are."""

    created: int = 0
    updated: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    # Rows that landed with a field left out (e.g. a phone number that is not one).
    warnings: list[tuple[int, str]] = field(default_factory=list)
    position: str = "line"
    # The command line points this at stderr; tests leave it None.
    progress_to: TextIO | None = None

    @property
    def ok(self) -> bool:
        return not self.skipped

    def skip(self, position: int, reason: str) -> None:
        self.skipped.append((position, reason))

    def warn(self, position: int, reason: str) -> None:
        self.warnings.append((position, reason))

    def summary(self) -> str:
        text = f"created {self.created}, updated {self.updated}, skipped {len(self.skipped)}"
        return text + " (see above)" if self.skipped else text

    def progress(self, label: str, total: int) -> Progress:
        stream = self.progress_to
        shown = stream is not None and (total > LARGE_FILE_ROWS or stream.isatty())
        return Progress(label, total, stream if shown else None)


class Progress:
    """A one-line text bar, redrawn in place with a carriage return, about once per percent."""

    def __init__(self, label: str, total: int, stream: TextIO | None) -> None:
        self.label = label
        self.total = max(total, 0)
        self.stream = stream
        self._drawn = -1

    def update(self, done: int) -> None:
        if self.stream is None:
            return
        percent = min(100, done * 100 // self.total) if self.total else 100
        if percent == self._drawn and done != self.total:
            return
        self._drawn = percent
        self.stream.write(f"\rimporting {self.label} {percent:3d}% {done}/{self.total}")
        self.stream.flush()

    def finish(self, done: int) -> None:
        if self.stream is None:
            return
        self.total = max(self.total, done)
        self._drawn = -1
        self.update(done)
        self.stream.write("\n")
        self.stream.flush()
