"""Reading import files (RESO Web API JSON, CSV with a header) and checking their fields."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import ijson

from core.text import is_one_line
from importers.report import ImportFileError, RowError

# Rows per transaction: big enough that the per-batch lookups and the commit (a WAL sync
# each) are amortised, small enough that one batch holds SQLite's single connection for
# tens of milliseconds and its IN lists stay far below both databases' parameter limits.
BATCH_SIZE = 2000

T = TypeVar("T")


def batched(items: Iterable[T], size: int = BATCH_SIZE) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True)
class ResoFile:
    """The `value` array of a RESO Web API response, read as a stream: memory stays flat
    however large the file is. Checked and counted once up front, before any row lands."""

    path: Path
    count: int

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Any]:
        with self.path.open("rb") as handle:
            yield from ijson.items(handle, "value.item", use_float=True)


def reso_values(path: Path) -> ResoFile:
    """Check the shape (`{"value": [...]}`) and count the rows, streaming. The whole file is
    parsed here, so a broken one is refused before any row lands."""
    try:
        with path.open("rb") as handle:
            _require_value_array(handle)
            handle.seek(0)
            # Items are built by the C parser; counting them beats looping over its events.
            count = sum(1 for _ in ijson.items(handle, "value.item", use_float=True))
    except OSError as error:
        raise ImportFileError(f"cannot read the file: {error.strerror}") from error
    except ijson.JSONError as error:
        raise ImportFileError(f"not JSON: {error}") from error
    return ResoFile(path, count)


def _require_value_array(handle: BinaryIO) -> None:
    """An object whose `value` is an array; reads only up to where `value` starts."""
    events = ijson.parse(handle, use_float=True)
    first = next(events, None)
    if first is not None and first[:2] == ("", "start_map"):
        for prefix, event, _ in events:
            if prefix == "value":
                if event == "start_array":
                    return
                break
    raise ImportFileError('expected RESO Web API JSON: an object {"value": [...]}')


def count_csv_rows(path: Path) -> int:
    """Data lines in a CSV file, for the progress bar: counted in chunks, not loaded."""
    lines = 0
    last = b"\n"
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError as error:
        raise ImportFileError(f"cannot read the file: {error.strerror}") from error
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


def csv_rows(path: Path, columns: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row, streamed; column names are case-insensitive."""
    expected = list(columns)
    try:
        # utf-8-sig: spreadsheets save a byte-order mark that would stick to the first name.
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames
            if not header:
                raise ImportFileError(f"empty file: expected a header row {','.join(expected)}")
            reader.fieldnames = [name.strip().lower() for name in header]
            missing = [name for name in expected if name not in reader.fieldnames]
            if missing:
                raise ImportFileError(
                    f"the header row lacks {', '.join(missing)} (expected {','.join(expected)})"
                )
            for row in reader:
                yield reader.line_num, row
    except OSError as error:
        raise ImportFileError(f"cannot read the file: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise ImportFileError("not UTF-8 text") from error
    except csv.Error as error:
        raise ImportFileError(f"not CSV: {error}") from error


def check_csv_shape(row: Mapping[Any, Any]) -> None:
    """DictReader files surplus values under None and pads short rows with None."""
    if row.get(None):
        raise RowError("more values than the header has columns")


def required(row: Mapping[str, Any], key: str, max_length: int) -> str:
    value = optional(row, key, max_length)
    if value is None:
        raise RowError(f"{key} is missing")
    return value


def optional(row: Mapping[str, Any], key: str, max_length: int) -> str | None:
    """The field as stripped text, or None when absent or blank; numbers are taken as text."""
    value = row.get(key)
    if type(value) is not str:  # the common case first: called for every field of every row
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise RowError(f"{key} must be text")
        value = str(value)
    text = value.strip()
    if not text:
        return None
    if len(text) > max_length:
        raise RowError(f"{key} is longer than {max_length} characters")
    # Every field is one line where it is shown or mailed (names, addresses); PostgreSQL
    # refuses NUL, and SQLite would take it and break the data later.
    if not is_one_line(text):
        raise RowError(f"{key} contains a line break or another control character")
    return text


def json_object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise RowError(f"expected an object, found {type(value).__name__}")
    return value
