"""The exported schema: committed, current, and keeping every promise of the contract."""

from __future__ import annotations

from pathlib import Path

from graphql import build_schema
from graphql.utilities import find_breaking_changes

from schema.schema import export_sdl

ROOT = Path(__file__).resolve().parent.parent
# The contract promised to the front-end teams, kept in the repository so a fresh clone tests
# on its own (.ci/run also checks this copy against the one the teams were given).
CONTRACT = ROOT / "contract" / "schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == export_sdl(), "run `keybin schema > schema.graphql` and commit it"


def test_schema_keeps_the_contract() -> None:
    contract = build_schema(CONTRACT.read_text())
    exported = build_schema(export_sdl())
    broken = [change.description for change in find_breaking_changes(contract, exported)]
    assert broken == []
