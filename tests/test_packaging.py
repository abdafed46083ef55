"""Every package of keybin is in the wheel: pyproject lists them by name, so a new one must
be added there (a forgotten one works in a checkout and is missing once installed)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_SHIPPED = {"tests", "bench", "tools", "docs", "contract", "artifacts", "build"}


def test_every_package_is_listed_in_pyproject() -> None:
    # given the packages pyproject ships
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    # when the checkout's packages are found
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in ROOT.glob("**/__init__.py")
        if not ({".venv", ".tox", "node_modules"} & set(init.parts))
        and init.relative_to(ROOT).parts[0] not in NOT_SHIPPED
    }
    # then each is shipped, and nothing listed is missing
    assert found == listed
