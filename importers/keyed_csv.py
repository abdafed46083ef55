"""The CSV imports keyed by one column (lockboxes, regions): batched upserts, bad rows skipped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from importers import bulk
from importers.report import ImportReport, RowError
from importers.sources import batched, count_csv_rows, csv_rows

ATTEMPTS = 3
R = TypeVar("R")


@dataclass(frozen=True)
class KeyedCsv(Generic[R]):
    """One CSV kind: how to parse a row, the model it lands in, and what a re-import changes."""

    label: str
    columns: tuple[str, ...]
    parse: Callable[[int, dict[str, str]], R]
    model: type[Model]
    key: str  # the row attribute and model field that identify a row
    pk: str  # the model's primary key, for updates
    fields: tuple[str, ...]  # what a re-import may change

    async def run(self, path: Path, report: ImportReport) -> ImportReport:
        """Create or update one row per CSV line, keyed by `key`."""
        report.position = "line"
        progress = report.progress(self.label, count_csv_rows(path) if report.progress_to else 0)
        done = 0
        for batch in batched(csv_rows(path, self.columns)):
            rows: dict[str, R] = {}
            repeats = 0
            for line, raw in batch:
                try:
                    row = self.parse(line, raw)
                except RowError as error:
                    report.skip(line, str(error))
                    continue
                key = getattr(row, self.key)
                repeats += key in rows  # the later line wins
                rows[key] = row
            created, updated = await self._write(list(rows.values()))
            report.created += created
            report.updated += updated + repeats
            done += len(batch)
            progress.update(done)
        progress.finish(done)
        return report

    async def _write(self, rows: Sequence[R]) -> tuple[int, int]:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with in_transaction() as db:
                    return await self._upsert(db, rows)
            except IntegrityError:
                # Another writer added one of these meanwhile: plan the batch again.
                if attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def _upsert(self, db: BaseDBAsyncClient, rows: Sequence[R]) -> tuple[int, int]:
        if not rows:
            return 0, 0
        keys = [getattr(row, self.key) for row in rows]
        found = await self.model.filter(**{f"{self.key}__in": keys}).values_list(
            self.pk, self.key, *self.fields
        )
        existing = {old[1]: old for old in found}
        changes: list[list[Any]] = []
        new: list[list[Any]] = []
        for row in rows:
            values = [getattr(row, name) for name in self.fields]
            old = existing.get(getattr(row, self.key))
            if old is None:
                new.append([getattr(row, self.key), *values])
            elif list(old[2:]) != values:
                changes.append([*values, old[0]])
        await bulk.update(db, self.model, self.fields, changes)
        await bulk.insert(db, self.model, (self.key, *self.fields), new)
        return len(new), len(rows) - len(new)
