"""A machine without Chromium or Node.js hears what to install in one line, not tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _collect(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", module],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_browser_tests_without_chromium_say_what_to_install() -> None:
    # given a machine whose Chromium is not where the tests look
    # when the browser tests are chosen
    run = _collect("tests/test_invitation_page.py", KEYBIN_CHROMIUM="/nonexistent/chromium")
    # then the run stops before any test with one line naming the package
    output = run.stdout + run.stderr
    assert run.returncode == 4
    lines = [line for line in output.splitlines() if "apt-get install chromium" in line]
    assert len(lines) == 1
    assert "Traceback" not in output


def test_npm_client_tests_without_node_say_what_to_install(tmp_path: Path) -> None:
    # given a PATH with Python but no node or npm on it
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").symlink_to(sys.executable)
    # when the subscription tests (one of them runs the npm client) are chosen
    run = _collect("tests/test_subscriptions.py", PATH=str(tmp_path / "bin"))
    # then one line says to install Node.js and npm
    output = run.stdout + run.stderr
    assert run.returncode == 4
    assert [line for line in output.splitlines() if "apt-get install nodejs npm" in line]
    assert "Traceback" not in output


def test_a_machine_with_everything_collects_the_tests() -> None:
    # given this machine (CI installs Chromium and Node.js before the suite)
    # when the same modules are collected
    run = _collect("tests/test_invitation_page.py")
    # then nothing stops the run
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_postgresql_run_without_postgresql_says_what_to_install(tmp_path: Path) -> None:
    # given a machine whose PostgreSQL server is not where the cluster script looks
    # when tox -e postgres starts its cluster
    run = subprocess.run(
        ["bash", str(ROOT / "tools" / "pg_cluster.sh"), "start", str(tmp_path / "pg"), "1"],
        env={**os.environ, "KEYBIN_PG_BIN": str(tmp_path / "none")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then it stops with one line naming the package, and starts nothing
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "PostgreSQL server binaries not found (Debian: apt-get install postgresql)"
    ]
    assert not (tmp_path / "pg").exists()
