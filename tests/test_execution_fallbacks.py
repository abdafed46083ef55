"""What a compiled plan leaves to graphql-core (schema/fast/plans.py), each case played:
introspection is never planned, and a plan that meets a null in a non-null position, a leaf
its scalar cannot serialize, or an object of the wrong runtime type stops, so graphql-core
answers, with its own messages, paths and nulls, exactly as without plans."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette

from schema import query as query_module
from schema.fast.plans import CompiledExecutor
from schema.listings import Lockbox, Region
from tests.factories import (
    GraphQLClient,
    both_ways,
    make_agent,
    make_listing,
    make_lockbox,
    make_region,
)


@pytest.fixture
def plan_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The operations a plan ran for (whether or not it answered them)."""
    runs: list[str] = []
    original = CompiledExecutor._run_plan

    async def counted(self: CompiledExecutor, plan: Any, serially: bool | None) -> Any:
        runs.append(self.operation.name.value if self.operation.name else "")
        return await original(self, plan, serially)

    monkeypatch.setattr(CompiledExecutor, "_run_plan", counted)
    yield runs


async def test_introspection_is_left_to_graphql_core(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, plan_runs: list[str]
) -> None:
    # given a region
    await make_region()
    # when a query reads the schema beside the data
    query = 'query Look { __type(name: "Region") { name fields { name } } regions { code } }'
    compiled, general = await both_ways(gql, monkeypatch, query)
    # then no plan ran, and the answer is graphql-core's
    assert plan_runs == []
    assert compiled == general
    assert compiled["data"]["__type"]["name"] == "Region", compiled


async def test_a_null_in_a_non_null_position_is_answered_by_graphql_core(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, plan_runs: list[str]
) -> None:
    # given a region whose code comes out null
    await make_region()

    def without_code(cls: type[Region], row: Any) -> Region:
        return cls(code=None, name=row.name, time_zone=row.time_zone)  # type: ignore[arg-type]

    monkeypatch.setattr(Region, "from_model", classmethod(without_code))
    # when the regions are asked for
    compiled, general = await both_ways(gql, monkeypatch, "query Codes { regions { code } }")
    # then the plan stopped and graphql-core's null propagation and message answer
    assert plan_runs == ["Codes"]
    assert compiled == general
    assert compiled["data"] is None
    assert compiled["errors"][0]["message"] == (
        "Cannot return null for non-nullable field Region.code."
    )
    assert compiled["errors"][0]["path"] == ["regions", 0, "code"]


async def test_a_leaf_its_scalar_cannot_serialize_is_answered_by_graphql_core(
    gql: GraphQLClient, app: Starlette, monkeypatch: pytest.MonkeyPatch, plan_runs: list[str]
) -> None:
    # given an agent signed in, and times that serialize to nothing
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    date_time = app.state.graphql.schema._schema.type_map["DateTime"]
    monkeypatch.setattr(date_time, "coerce_output_value", lambda value: None)
    plan_runs.clear()
    # when the agent's devices are asked for with their times
    query = "query Devices { me { ... on Agent { devices { name registeredAt } } } }"
    compiled, general = await both_ways(gql, monkeypatch, query, token=token)
    # then the plan stopped and graphql-core answered
    assert plan_runs == ["Devices"]
    assert compiled == general
    assert compiled["errors"][0]["path"] == ["me", "devices", 0, "registeredAt"], compiled


async def test_an_object_of_the_wrong_type_is_answered_by_graphql_core(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, plan_runs: list[str]
) -> None:
    # given an agent's lockbox that comes out as a region
    agent = await make_agent()
    lockbox = await make_lockbox(agent, listing=await make_listing(agent))
    token = await gql.sign_in(agent.email or "")
    region = Region(code="CIN", name="Cincinnati", time_zone="America/New_York")
    monkeypatch.setattr(Lockbox, "from_model", classmethod(lambda cls, row: region))
    plan_runs.clear()
    # when it is looked up
    query = 'query Box { lockboxBySerial(serialNumber: "%s") { serialNumber } }'
    compiled, general = await both_ways(
        gql, monkeypatch, query % lockbox.serial_number, token=token
    )
    # then the plan stopped and graphql-core said what it expected
    assert plan_runs == ["Box"]
    assert compiled == general
    assert compiled["data"] == {"lockboxBySerial": None}
    assert compiled["errors"][0]["path"] == ["lockboxBySerial"], compiled


async def test_a_node_of_a_type_outside_the_interface_is_answered_by_graphql_core(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, plan_runs: list[str]
) -> None:
    # given an agent, and a node lookup that comes out as a region
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    region = Region(code="CIN", name="Cincinnati", time_zone="America/New_York")

    async def a_region(info: Any, global_id: str) -> Region:
        return region

    monkeypatch.setattr(query_module, "resolve_node", a_region)
    plan_runs.clear()
    # when a node is looked up
    query = 'query Find { node(id: "TGlzdGluZzox") { id } }'
    compiled, general = await both_ways(gql, monkeypatch, query, token=token)
    # then the plan stopped and graphql-core answered
    assert plan_runs == ["Find"]
    assert compiled == general
    assert compiled["data"] == {"node": None}
    assert compiled["errors"][0]["path"] == ["node"], compiled


async def test_a_plan_that_meets_an_error_runs_no_resolver_twice(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, plan_runs: list[str]
) -> None:
    # given an agent, a node lookup that fails, and regions beside it, each resolver counted
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    await make_region()
    calls: list[str] = []

    async def failing_node(info: Any, global_id: str) -> Region:
        calls.append("node")
        raise ValueError("no such node")

    read_regions = query_module.listing_ops.regions

    async def counted_regions() -> Any:
        calls.append("regions")
        return await read_regions()

    monkeypatch.setattr(query_module, "resolve_node", failing_node)
    monkeypatch.setattr(query_module.listing_ops, "regions", counted_regions)
    plan_runs.clear()
    # when both are asked for in one query
    query = 'query Both { node(id: "TGlzdGluZzox") { id } regions { code } }'
    answer = await gql.raw(query, None, token)
    # then the plan met the error, graphql-core answered it, and each resolver ran once
    assert plan_runs == ["Both"]
    assert sorted(calls) == ["node", "regions"]
    assert answer["data"] == {"node": None, "regions": [{"code": "CIN"}]}, answer
    assert answer["errors"][0]["path"] == ["node"], answer
    # and the answer is what graphql-core alone gives (which also runs each one once)
    calls.clear()
    with monkeypatch.context() as patch:
        patch.setattr(CompiledExecutor, "enabled", False)
        general = await gql.raw(query, None, token)
    assert sorted(calls) == ["node", "regions"]
    assert answer == general


async def test_a_plan_that_meets_a_bad_object_runs_its_resolver_once(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, plan_runs: list[str]
) -> None:
    # given a node lookup that comes out as a region, counted
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    region = Region(code="CIN", name="Cincinnati", time_zone="America/New_York")
    calls: list[str] = []

    async def a_region(info: Any, global_id: str) -> Region:
        calls.append(global_id)
        return region

    monkeypatch.setattr(query_module, "resolve_node", a_region)
    plan_runs.clear()
    # when it is looked up twice under two aliases
    query = 'query Two { a: node(id: "TGlzdGluZzox") { id } b: node(id: "TGlzdGluZzoy") { id } }'
    answer = await gql.raw(query, None, token)
    # then the plan stopped, graphql-core answered both errors, and each lookup ran once
    assert plan_runs == ["Two"]
    assert sorted(calls) == ["TGlzdGluZzox", "TGlzdGluZzoy"]
    assert answer["data"] == {"a": None, "b": None}, answer
    assert [error["path"] for error in answer["errors"]] == [["a"], ["b"]]
