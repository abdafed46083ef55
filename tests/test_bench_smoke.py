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
