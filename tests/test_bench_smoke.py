"""The benchmark harness runs end to end at its smallest and writes its results file.

Speed is measured by `python -m bench`, never asserted here: this only shows that the
harness starts its servers, measures both sides and records what it measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MACHINE_KEYS = {"cpu_model", "cores", "memory_bytes", "python"}
ROW_KEYS = {"case", "metric", "unit", "keybin", "floor", "floor_name", "ratio", "target", "met"}


def test_quick_run_of_the_smallest_cases_writes_machine_date_and_rows(tmp_path: Path) -> None:
    # given
    command = [
        sys.executable,
        "-m",
        "bench",
        "--quick",
        "--tiny",
        "--only",
        "small,search",
        "--seconds",
        "0.3",
        "--results-dir",
        str(tmp_path),
    ]

    # when
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )

    # then
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*.json")
    assert path.name.endswith("-tiny-small-search.json"), path.name  # not the whole run's name
    document = json.loads(path.read_text())
    assert {"date", "host", "mode", "machine", "cases", "rows"} <= set(document)
    assert set(document["machine"]) >= MACHINE_KEYS
    assert set(document["cases"]) == {"small", "search"}
    for name, case in document["cases"].items():
        assert case["error"] is None, (name, case["error"])
        assert case["rows"], name
    for row in document["rows"]:
        assert set(row) >= ROW_KEYS
        assert row["keybin"] is not None and row["keybin"] > 0, row
    assert document["cases"]["search"]["details"]["2,000"]["same_results"] == "16/16"
    assert "met?" in done.stdout and "requests/s" in done.stdout


def test_the_live_case_times_every_grant_behind_a_relay_that_answers_and_one_that_hangs(
    tmp_path: Path,
) -> None:
    # given
    command = [
        sys.executable,
        "-m",
        "bench",
        "--tiny",
        "--only",
        "live",
        "--results-dir",
        str(tmp_path),
    ]

    # when
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )

    # then every grant's message reached every one of its connections, on both sides
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*-tiny-live.json")
    case = json.loads(path.read_text())["cases"]["live"]
    assert case["error"] is None, case["error"]
    details = case["details"]
    measured = ["sqlite"] + (["postgres"] if "postgres_unavailable" not in details else [])
    for database in measured:
        for side in ("relay_answering", "relay_hanging"):
            for kind in ("single", "burst"):
                found = details[database][side][kind]
                assert found["grants"] > 0, (database, side, kind)
                assert found["complete"] == found["grants"], (database, side, kind)
                assert found["wrong_frames"] == 0, (database, side, kind)
        # and the invitations' mail went out through one relay and stuck behind the other
        mail = details[database]["mail"]
        assert mail["answering"]["SENT"] > 0, mail
        assert mail["hanging"]["SENT"] == 0 and mail["hanging"]["PENDING"] > 0, mail
    rows = {row["metric"]: row for row in case["rows"]}
    assert any("(SQLite)" in metric for metric in rows)
    for metric, row in rows.items():
        if row["note"].startswith("unavailable"):
            assert "PostgreSQL" in metric and "postgres_unavailable" in details, row
            continue
        assert row["keybin"] is not None and row["floor"] is not None, row
    assert "relay hanging" in done.stdout


def test_the_traffic_case_runs_its_schedule_with_kept_answers_on_and_off(tmp_path: Path) -> None:
    # given
    command = [
        sys.executable,
        "-m",
        "bench",
        "--tiny",
        "--only",
        "traffic",
        "--results-dir",
        str(tmp_path),
    ]

    # when
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )

    # then every request of the schedule was answered, as checked, under both configurations
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*-tiny-traffic.json")
    case = json.loads(path.read_text())["cases"]["traffic"]
    assert case["error"] is None, case["error"]
    details = case["details"]
    measured = ["sqlite"] + (["postgres"] if "postgres_unavailable" not in details else [])
    for database in measured:
        on, off = details[database]["on"], details[database]["off"]
        assert on["instances"] == off["instances"] == (1 if database == "sqlite" else 2)
        for config in (on, off):
            assert config["errors"] == 0, (database, config["first_errors"])
            for kind in ("messages", "grants", "mark_read", "revoke", "grant", "sign_in"):
                assert config["open_loop"][kind]["answered"] > 0, (database, kind)
            assert config["closed_loop"]["reads"] > 0, database
        # both configurations got the very same requests in the open loop
        for kind, found in on["open_loop"].items():
            assert found["answered"] == off["open_loop"][kind]["answered"], (database, kind)
        # and the hit rate was read from the servers: the cache counted its Message Center
        # reads when on, nothing when off
        kept = on["kept_answers"]
        assert kept["hits"] + kept["misses"] > 0, (database, kept)
        assert off["kept_answers"]["hits"] == off["kept_answers"]["misses"] == 0, database
    rows = {row["metric"]: row for row in case["rows"]}
    assert any("(SQLite)" in metric for metric in rows)
    for metric, row in rows.items():
        if row["note"].startswith("unavailable"):
            assert "PostgreSQL" in metric and "postgres_unavailable" in details, row
        elif "cache pays?" in metric:
            assert row["keybin"] is not None and row["floor"] is not None, row
            assert row["met"] is not None, row
    assert "cache pays?" in done.stdout
