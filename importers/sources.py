"""Reading import files (RESO Web API JSON, CSV with a header) and checking their fields."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import ijson

from core.text import is_one_line
from importers.report import ImportFileError, RowError

# Rows per transaction: big enough that the per-batch lookups and the commit (a WAL sync
# each) are amortised, small enough that one batch holds SQLite's single connection for
# tens of milliseconds and its IN lists stay far below both databases' parameter limits.
BATCH_SIZE = 2000
# An association's name as accounts and listings store it.
ASSOCIATION_LENGTH = 128

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
    """Check the shape (`{"value": [...]}`) and the nesting, and count the rows, streaming.
    The whole file is read here, so a broken one is refused before any row lands."""
    try:
        with path.open("rb") as handle:
            count = _count_rows(ijson.basic_parse(handle, use_float=True))
    except OSError as error:
        raise ImportFileError(f"cannot read the file: {error.strerror}") from error
    except ijson.JSONError as error:
        raise ImportFileError(f"not JSON: {_parser_message(error)}") from error
    return ResoFile(path, count)


def _parser_message(error: ijson.JSONError) -> str:
    """The parser's first line, as text: it gives bytes when the file is not UTF-8, and
    follows with an excerpt of the file and a caret."""
    detail = error.args[0] if error.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return str(detail).strip().split("\n", 1)[0]


# A RESO response nests its rows two deep, and a row's fields (Media, Rooms, ...) a few more.
# ijson.items keeps a path per open level, so its memory grows with the square of the depth:
# a small file of nested brackets would take gigabytes. Deeper files are refused before that.
MAX_DEPTH = 8
_NESTING = {"start_map": 1, "start_array": 1, "end_map": -1, "end_array": -1}
_OPENING = ("start_map", "start_array")
_NOT_RESO = 'expected RESO Web API JSON: an object {"value": [...]}'
Event = tuple[str, Any]


def _count_rows(events: Iterator[Event]) -> int:
    """Rows in the top object's `value` array, from the parser's events (no paths kept)."""
    if next(events, (None, None))[0] != "start_map":
        raise ImportFileError(_NOT_RESO)
    rows: int | None = None
    for kind, key in events:
        if kind == "end_map":
            break
        first = next(events)[0]  # kind is map_key: this starts the key's value
        if key == "value":
            if rows is not None:
                raise ImportFileError('the key "value" appears twice')
            if first != "start_array":
                raise ImportFileError(_NOT_RESO)
            rows = _count_items(map(itemgetter(0), events))
        elif first in _OPENING:
            _read_to_close(map(itemgetter(0), events), 2)
    for _ in events:  # the parser refuses anything after the top object
        pass
    if rows is None:
        raise ImportFileError(_NOT_RESO)
    return rows


def _count_items(kinds: Iterator[str]) -> int:
    """Items up to the end of the array being read; the array is open at depth 2."""
    items = 0
    for kind in kinds:
        if kind == "end_array":
            return items
        items += 1
        if kind in _OPENING:
            _read_to_close(kinds, 3)
    return items  # not reached: the parser raises at a premature end


def _read_to_close(kinds: Iterator[str], depth: int) -> None:
    """Read past the array or object just opened at `depth`, refusing deeper nesting. Only
    brackets reach this loop: the filter drops keys and values in C, which keeps a large
    file's check about as quick as counting its rows with ijson.items was."""
    opened = depth
    for kind in filter(_NESTING.__contains__, kinds):
        depth += _NESTING[kind]
        if depth > MAX_DEPTH:
            raise ImportFileError(
                f"arrays and objects nest more than {MAX_DEPTH} deep: RESO Web API JSON never does"
            )
        if depth < opened:
            return


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


def originating_system(row: Mapping[str, Any], imported: str | None) -> str | None:
    """The association the row comes from: its OriginatingSystemName, or the one the command
    line names for the whole file (`imported`), which no row may contradict: one
    association's file must not write another's agents or listings."""
    named = optional(row, "OriginatingSystemName", ASSOCIATION_LENGTH)
    if imported is not None and named is not None and named != imported:
        raise RowError(
            f"OriginatingSystemName {named!r} is another association than {imported!r}, "
            "the one being imported"
        )
    return named or imported
