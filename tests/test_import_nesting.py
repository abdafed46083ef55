"""RESO JSON files nested deeper than RESO ever is, and files that are not JSON, are refused
whole with a message a person can read, before the import takes memory or lands a row."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from importers.listings import import_listings
from importers.members import import_members
from importers.report import ImportFileError, ImportReport
from importers.sources import MAX_DEPTH
from models.accounts import Account
from tests.test_imports import KEYBIN, cli_env, member, write_json  # noqa: F401

DEEP = f"arrays and objects nest more than {MAX_DEPTH} deep: RESO Web API JSON never does"


def nested_arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def reso(rows: str = "", before: str = "", after: str = "") -> str:
    """A roster with one good row first, then `rows`; `before` and `after` beside `value`."""
    return "{" + before + '"value": [{"MemberMlsId": "A0"}' + rows + "]" + after + "}"


@pytest.mark.parametrize(
    "content",
    [
        reso(rows=", " + nested_arrays(2000)),
        reso(rows=', {"MemberMlsId": "A1", "Media": ' + nested_arrays(MAX_DEPTH) + "}"),
        reso(before='"@odata.context": ' + nested_arrays(MAX_DEPTH) + ", "),
        reso(after=', "@odata.nextLink": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {}}}}}}}}'),
    ],
)
async def test_nesting_deeper_than_reso_is_refused_whole(
    orm: None, tmp_path: Path, content: str
) -> None:
    # given a file with a good row, and nesting no RESO file has
    path = tmp_path / "members.json"
    path.write_text(content)
    # when / then
    with pytest.raises(ImportFileError) as refused:
        await import_members(path, ImportReport())
    assert str(refused.value) == DEEP
    assert await Account.all().count() == 0


async def test_the_deepest_nesting_reso_has_is_read(orm: None, tmp_path: Path) -> None:
    # given a row whose field holds arrays and objects as deep as the limit: the response,
    # `value`, the row, then Rooms, a room, its Features, a feature, its Levels
    deepest = {"Rooms": [{"Features": [{"Levels": ["Main"]}]}]}
    path = write_json(tmp_path / "members.json", [member("N1", **deepest)])
    # when
    report = await import_members(path, ImportReport())
    # then
    assert (report.created, report.skipped) == (1, [])


async def test_a_deeply_nested_file_is_refused_at_once_however_deep(
    orm: None, tmp_path: Path
) -> None:
    # given 60 KB of nested arrays, which took gigabytes to read before
    path = tmp_path / "listings.json"
    path.write_text(reso(rows=", " + nested_arrays(30_000)))
    started = time.perf_counter()
    # when / then
    with pytest.raises(ImportFileError, match="nest more than"):
        await import_listings(path, ImportReport())
    assert time.perf_counter() - started < 1


def test_the_command_line_refuses_a_deep_file_within_bounded_memory(
    cli_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    # given 400 KB of nested arrays, and a process allowed 1 GiB of address space
    path = tmp_path / "members.json"
    path.write_text(reso(rows=", " + nested_arrays(200_000)))
    command = f'ulimit -v 1048576 && exec "{KEYBIN}" import members "{path}"'
    # when
    result = subprocess.run(  # noqa: S603
        ["/bin/sh", "-c", command], env=cli_env, capture_output=True, text=True, timeout=120
    )
    # then a message, no traceback
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1] == f"keybin: cannot import {path}: {DEEP}"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"value": ["\xff"]}', "not JSON: lexical error: invalid bytes in UTF8 string."),
        (b"{oops", "not JSON: lexical error: invalid char in json text."),
        (b'{"value": [', "not JSON: parse error: premature EOF"),
        (b'{"value": []} {"x": 1}', "not JSON: parse error: trailing garbage"),
        (b'{"value": [], "value": [{}]}', 'the key "value" appears twice'),
    ],
)
async def test_a_file_that_is_not_json_is_told_in_words(
    orm: None, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "members.json"
    path.write_bytes(content)
    with pytest.raises(ImportFileError) as refused:
        await import_members(path, ImportReport())
    assert str(refused.value) == message
