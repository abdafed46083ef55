"""`keybin staff add` as an operator runs it: every line whole, the TOTP URI on its own line."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import sys
from pathlib import Path

import pytest

from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
KEYBIN = [sys.executable, "-c", "import cli; cli.main()"]  # what the `keybin` script runs
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: .*")
CREDENTIAL_LINES = [
    re.compile(r"Staff member rita@keybin\.test \(SUPPORT\) added\."),
    re.compile(r"One-time password \(changed at first login\): \S+"),
    re.compile(r"Add this to an authenticator app \(TOTP\):"),
    re.compile(r"otpauth://totp/keybin:rita%40keybin\.test\?\S+"),
]


def environment(settings: Settings) -> dict[str, str]:
    # development: text log lines on stderr, interleaved with the output by the reader
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "KEYBIN_ENV": "development",
    }


async def run_into_one_pipe(args: list[str], settings: Settings) -> tuple[int, str]:
    """stdout and stderr into one pipe, as `keybin ... 2>&1 | tee` shows them."""
    process = await asyncio.create_subprocess_exec(
        *KEYBIN,
        *args,
        cwd=ROOT,
        env=environment(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    assert process.returncode is not None
    return process.returncode, output


async def run_in_a_terminal(args: list[str], settings: Settings) -> tuple[int, str]:
    """stdout and stderr on one pseudo-terminal, as an operator's shell shows them."""
    main, terminal = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        *KEYBIN, *args, cwd=ROOT, env=environment(settings), stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = await asyncio.to_thread(os.read, main, 4096)
        except OSError:  # EIO: the terminal's last writer has gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    return await process.wait(), b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.mark.parametrize("run", [run_into_one_pipe, run_in_a_terminal])
async def test_staff_add_ends_every_line_and_keeps_the_uri_on_its_own(
    run: object, settings: Settings, orm: None
) -> None:
    # given
    command = ["staff", "add", "--email", "rita@keybin.test", "--role", "SUPPORT"]
    # when
    code, output = await run(command, settings)  # type: ignore[operator]
    # then: every line is a whole log line or a whole line of the output, in order
    assert code == 0, output
    assert output.endswith("\n"), repr(output[-200:])
    lines = output.splitlines()
    ours = [line for line in lines if not LOG_LINE.fullmatch(line)]
    assert len(ours) == len(CREDENTIAL_LINES), output
    for line, expected in zip(ours, CREDENTIAL_LINES, strict=True):
        assert expected.fullmatch(line), (line, output)
    assert lines[-1].startswith("otpauth://"), output


async def test_a_refused_staff_add_says_why_on_stderr(settings: Settings, orm: None) -> None:
    # given a staff member with that email already
    command = ["staff", "add", "--email", "rita@keybin.test", "--role", "SUPPORT"]
    assert (await run_into_one_pipe(command, settings))[0] == 0
    # when
    process = await asyncio.create_subprocess_exec(
        *KEYBIN,
        *command,
        cwd=ROOT,
        env=environment(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    # then
    assert process.returncode == 1
    assert stdout == b""
    assert re.search(rb"^keybin: .+$", stderr, re.MULTILINE), stderr
    assert b"otpauth://" not in stdout + stderr
