"""Compiled execution answers exactly as graphql-core does: the same operations run both
ways over the same data compare equal, errors included, and the plan is really used."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from graphql import GraphQLObjectType, OperationDefinitionNode, parse
from graphql.execution.collect_fields import FieldDetails

from models.accounts import Account
from schema.fast.plans import CompiledExecutor, Compiler
from schema.schema import build_schema
from settings import Settings
from tests.factories import (
    GraphQLClient,
    both_ways,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
)

AGENT_PAGE = """
query AgentPage($first: Int!, $grants: Int = 20) {
  me {
    __typename
    id
    ...Person
    ... on Agent {
      keyId
      association
      devices { name }
      homes: listings(first: $first) {
        pageInfo { hasNextPage endCursor }
        edges {
          cursor
          node {
            __typename
            id
            mlsNumber
            address { line1 city postalCode }
            lockbox { id serialNumber }
            grants(first: $grants) {
              edges {
                node {
                  id
                  granteeEmail
                  startsAt
                  endsAt
                  status
                  grantee { id firstName lastName role company }
                }
              }
            }
          }
        }
      }
      lockboxes(first: 5) { edges { node { serialNumber listing { mlsNumber } } } }
    }
  }
}
fragment Person on Account { firstName lastName email status }
"""

CONTRACTOR_PAGE = """
query ContractorPage {
  me {
    ... on Contractor {
      id
      role
      company
      unreadMessageCount
      messages(first: 10) { edges { cursor node { id kind title body createdAt readAt } } }
      grants(first: 10) { edges { node { status listing { mlsNumber } } } }
    }
  }
  regions { code }
}
"""

WITH_DIRECTIVES = """
query Skipping($skip: Boolean!) {
  me { id firstName @skip(if: $skip) lastName @include(if: $skip) }
}
"""

ANONYMOUS_LOOKUP = """
query Lookup { regions { code } lockboxBySerial(serialNumber: "SL-1") { id } }
"""


@pytest.fixture
def plan_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    runs: list[str] = []
    original = CompiledExecutor._run_plan

    async def counted(self: CompiledExecutor, plan: Any, serially: bool | None) -> Any:
        runs.append(self.operation.name.value if self.operation.name else "")
        return await original(self, plan, serially)

    monkeypatch.setattr(CompiledExecutor, "_run_plan", counted)
    yield runs


async def portfolio(agent: Account) -> None:
    people = [await make_contractor(first_name=f"P{n}") for n in range(3)]
    for n in range(4):
        listing = await make_listing(agent)
        lockbox = await make_lockbox(agent, listing=listing) if n != 2 else None
        if lockbox is None:
            continue
        for person in people[: 1 + n % 3]:
            await make_grant(agent, listing, lockbox, person, starts_in=3600 * (n - 2))
        await make_grant(agent, listing, lockbox, None)


async def test_agent_page_compiles_and_matches_graphql_core(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, plan_runs: list[str]
) -> None:
    # given
    agent = await make_agent()
    await portfolio(agent)
    token = await gql.sign_in(agent.email or "")
    plan_runs.clear()
    # when
    compiled, general = await both_ways(gql, monkeypatch, AGENT_PAGE, {"first": 3}, token)
    # then
    assert compiled == general
    assert "errors" not in compiled, compiled
    homes = compiled["data"]["me"]["homes"]
    assert len(homes["edges"]) == 3 and homes["pageInfo"]["hasNextPage"] is True
    grantees = [g["node"]["grantee"] for e in homes["edges"] for g in e["node"]["grants"]["edges"]]
    assert None in grantees and any(g and g["firstName"] == "P0" for g in grantees)
    assert plan_runs == ["AgentPage"]


async def test_contractor_page_with_messages_matches(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, plan_runs: list[str]
) -> None:
    # given
    agent = await make_agent()
    contractor = await make_contractor()
    listing = await make_listing(agent)
    lockbox = await make_lockbox(agent, listing=listing)
    await make_grant(agent, listing, lockbox, contractor, starts_in=-60)
    token = await gql.sign_in(contractor.email or "")
    plan_runs.clear()
    # when
    compiled, general = await both_ways(gql, monkeypatch, CONTRACTOR_PAGE, token=token)
    # then
    assert compiled == general
    assert "errors" not in compiled, compiled
    assert compiled["data"]["me"]["grants"]["edges"][0]["node"]["status"] == "ACTIVE"
    assert plan_runs == ["ContractorPage"]


async def test_an_error_is_answered_by_graphql_core_the_same_way(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, plan_runs: list[str]
) -> None:
    # when
    compiled, general = await both_ways(gql, monkeypatch, ANONYMOUS_LOOKUP)
    # then: the plan ran, met the error and left the answer to graphql-core
    assert plan_runs == ["Lookup"]
    assert compiled == general
    assert compiled["errors"][0]["path"] == ["lockboxBySerial"], compiled
    assert compiled["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert compiled["data"]["lockboxBySerial"] is None
    assert isinstance(compiled["data"]["regions"], list)


async def test_directives_are_left_to_graphql_core(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, plan_runs: list[str]
) -> None:
    # given
    agent = await make_agent(first_name="Skippy")
    token = await gql.sign_in(agent.email or "")
    plan_runs.clear()
    # when
    skipped, _ = await both_ways(gql, monkeypatch, WITH_DIRECTIVES, {"skip": True}, token)
    kept, _ = await both_ways(gql, monkeypatch, WITH_DIRECTIVES, {"skip": False}, token)
    # then: the selection depends on the variables, so no plan is made for it
    assert plan_runs == []
    assert "firstName" not in skipped["data"]["me"] and "lastName" in skipped["data"]["me"]
    assert kept["data"]["me"]["firstName"] == "Skippy"


async def test_anonymous_me_is_null_both_ways(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled, general = await both_ways(gql, monkeypatch, CONTRACTOR_PAGE)
    assert compiled == general
    assert compiled["data"]["me"] is None


def _given_the_address(address: int, make: Callable[[], list[Any]]) -> list[Any]:
    """A new list placed where a freed one was (CPython hands a freed list's memory to the
    next list made); the lists tried on the way are kept so each try gets other memory."""
    made = make()  # first: any other list made before it could take the freed memory
    tried: list[list[Any]] = []
    while id(made) != address:
        assert len(tried) < 10_000, "no list was given the freed list's address"
        tried.append(made)
        made = make()
    return made


def test_a_plan_is_never_reused_for_another_selection_at_a_freed_address() -> None:
    # given: two selections on the same type, the first planned and its list freed
    schema = build_schema(Settings())._schema
    document = parse("query { a: regions { code } b: regions { name } }")
    executor = CompiledExecutor.build(schema, document)
    assert isinstance(executor, CompiledExecutor)
    compiler = Compiler(executor)
    region = schema.get_type("Region")
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode) and isinstance(region, GraphQLObjectType)
    code_field, name_field = operation.selection_set.selections
    details = [FieldDetails(code_field, None)]  # type: ignore[arg-type]
    freed = id(details)
    first = compiler.subplan(region, details)
    del details
    # when: the second selection's list is given the first one's address
    again = _given_the_address(freed, lambda: [FieldDetails(name_field, None)])  # type: ignore[arg-type]
    second = compiler.subplan(region, again)
    # then: each selection has its own plan
    assert [step.key for step in first.steps] == ["code"]
    assert [step.key for step in second.steps] == ["name"]
