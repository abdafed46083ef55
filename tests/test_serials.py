"""Lockbox serial numbers match whatever their case and spacing: lookups, imports, uploads."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from pathlib import Path

from tortoise import connections

from ble.simulator import LockboxSimulator
from importers.lockboxes import import_lockboxes
from importers.report import ImportReport
from models.access import AccessEvent
from models.enums import AccessOutcome
from models.listings import Lockbox
from tests.factories import TEST_SECRET, GraphQLClient, make_agent, make_lockbox

BY_SERIAL = """
query($serial: String!) { lockboxBySerial(serialNumber: $serial) { serialNumber } }
"""
ASSIGN = """
mutation($serial: String!) {
  assignLockbox(input: {serialNumber: $serial}) {
    lockbox { serialNumber assignedTo { keyId } } userErrors { code message }
  }
}
"""
REPORT = """
mutation($serial: String!, $records: [String!]!) {
  reportLockboxEvents(input: {lockboxSerial: $serial, records: $records}) {
    accepted duplicates userErrors { code message }
  }
}
"""


async def test_an_agent_finds_and_assigns_a_lockbox_typed_any_way(gql: GraphQLClient) -> None:
    # given a free lockbox SL00000042 and an agent
    await make_lockbox(serial_number="SL00000042")
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    # when the agent types it in lower case with spaces
    found = (await gql(BY_SERIAL, {"serial": " sl 0000 0042 "}, token=token))["lockboxBySerial"]
    assigned = (await gql(ASSIGN, {"serial": "sL00000042"}, token=token))["assignLockbox"]
    # then
    assert found == {"serialNumber": "SL00000042"}
    assert assigned["userErrors"] == []
    assert assigned["lockbox"] == {
        "serialNumber": "SL00000042",
        "assignedTo": {"keyId": agent.key_id},
    }


async def test_the_import_keeps_one_lockbox_per_serial_however_spelled(
    orm: None, tmp_path: Path
) -> None:
    # given a lockbox imported as "lb 77"
    first = tmp_path / "first.csv"
    first.write_text(f"serial_number,model,ble,secret\nlb 77,VBox BLE,yes,{TEST_SECRET}\n")
    await import_lockboxes(first, ImportReport())
    # when the next file spells it "LB77"
    second = tmp_path / "second.csv"
    second.write_text(f"serial_number,model,ble,secret\nLB77,VBox Pro,yes,{TEST_SECRET}\n")
    report = await import_lockboxes(second, ImportReport())
    # then it updated the one lockbox, kept in the canonical form
    assert (report.created, report.updated) == (0, 1)
    assert await Lockbox.all().values_list("serial_number", "model") == [("LB77", "VBox Pro")]


async def test_records_upload_under_any_spelling_of_the_serial(gql: GraphQLClient) -> None:
    # given a lockbox whose own serial setting is spelled in lower case: its records say so
    lockbox = await make_lockbox(serial_number="SL00000043")
    simulator = LockboxSimulator("sl00000043", TEST_SECRET, {}, lambda: datetime.now(UTC))
    simulator.present("not-a-credential", "no-signature", None)
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    # when a phone uploads them naming the lockbox with a space
    variables = {"serial": "Sl0000 0043", "records": simulator.pending_records()}
    report = (await gql(REPORT, variables, token=token))["reportLockboxEvents"]
    # then
    assert report == {"accepted": 1, "duplicates": 0, "userErrors": []}
    event = await AccessEvent.get(lockbox_id=lockbox.id)
    assert event.outcome == AccessOutcome.DENIED_INVALID_CREDENTIAL


async def test_the_migration_makes_serials_already_stored_canonical(gql: GraphQLClient) -> None:
    # given lockboxes stored before serials were kept canonical
    await Lockbox.create(serial_number="lb 9", model="VBox BLE", ble=True, secret=TEST_SECRET)
    await Lockbox.create(serial_number="LB10", model="VBox BLE", ble=True, secret=TEST_SECRET)
    migration = importlib.import_module("models.migrations.0004_access_chain").Migration
    [statement] = [
        operation.sql
        for operation in migration.operations
        if "UPDATE lockbox SET serial_number" in str(getattr(operation, "sql", ""))
    ]
    # when it runs
    await connections.get("default").execute_script(statement)
    # then every lookup finds them
    assert sorted(await Lockbox.all().values_list("serial_number", flat=True)) == ["LB10", "LB9"]
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    assigned = (await gql(ASSIGN, {"serial": "lb 9"}, token=token))["assignLockbox"]
    assert assigned["lockbox"]["serialNumber"] == "LB9"
