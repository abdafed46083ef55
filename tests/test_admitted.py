"""Admitted queries (schema/fast/admitted.py): a document that answered cleanly once runs again
without the per-request pipeline, with the same answers, errors included (finished as the
pipeline finishes them, never worked out again); any mutation and bad text in the
variables still go through the whole pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import strawberry
from starlette.applications import Starlette
from strawberry.extensions import (
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)

from core.ids import to_global_id
from schema import query as query_module
from schema.fast import admitted as admitted_module
from schema.fast.admitted import Admitted, admits
from schema.limits import RejectBadText
from tests.factories import GraphQLClient, make_agent, make_listing

ME = """
query Me($first: Int) {
  me {
    id firstName email
    messages(first: $first) { totalCount edges { cursor node { id title createdAt } } }
    ... on Agent { listings(first: 5) { edges { node { id mlsNumber lockbox { id } } } } }
  }
}
"""
LISTING = "query One($id: ID!) { node(id: $id) { id ... on Listing { mlsNumber } } }"
TWO_OPERATIONS = """
query Read { me { firstName } }
mutation Write { markMessagesRead(input: {ids: []}) { count userErrors { code } } }
"""


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """These tests look at admission itself: no answer is kept (schema/fast/answer_cache.py)."""
    return {"answer_cache": False}


@pytest.fixture
def pipeline_runs(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The queries that went through Strawberry's whole pipeline, in order."""
    runs: list[str | None] = []
    original = strawberry.Schema.execute

    async def counted(self: Any, query: str | None, *args: Any, **kwargs: Any) -> Any:
        runs.append(query)
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(strawberry.Schema, "execute", counted)
    return runs


@pytest.fixture
def node_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids `Query.node` was resolved for, in order."""
    calls: list[str] = []
    original = query_module.resolve_node  # type: ignore[attr-defined]

    async def counted(info: Any, global_id: str) -> Any:
        calls.append(global_id)
        return await original(info, global_id)

    monkeypatch.setattr(query_module, "resolve_node", counted)
    return calls


def admitted_of(app: Starlette) -> Admitted:
    found = app.state.graphql.schema.admitted
    assert found is not None
    return found  # type: ignore[no-any-return]


async def test_a_clean_answer_admits_the_document_and_the_next_skips_the_pipeline(
    gql: GraphQLClient, app: Starlette, pipeline_runs: list[str | None]
) -> None:
    # given an agent with a listing, signed in
    agent = await make_agent()
    await make_listing(agent)
    token = await gql.sign_in(agent.email or "")
    pipeline_runs.clear()
    # when the same query is asked three times
    answers = [await gql.raw(ME, {"first": 3}, token) for _ in range(3)]
    # then only the first went through the pipeline, and all three answers are the same
    assert pipeline_runs == [ME]
    assert answers[0] == answers[1] == answers[2]
    assert "errors" not in answers[0] and answers[0]["data"]["me"]["listings"]["edges"]
    assert admitted_of(app).get(ME, None) is not None


async def test_an_answer_with_an_error_is_finished_without_running_again(
    gql: GraphQLClient,
    app: Starlette,
    pipeline_runs: list[str | None],
    node_calls: list[str],
) -> None:
    # given both documents admitted by a listing's agent
    agent = await make_agent()
    listing_id = to_global_id("Listing", (await make_listing(agent)).id)
    token = await gql.sign_in(agent.email or "")
    assert "errors" not in await gql.raw(LISTING, {"id": listing_id}, token)
    assert "errors" not in await gql.raw(ME, {"first": 1}, token)
    # and how often the lookup's resolver runs for one request through the pipeline
    admitted = admitted_of(app).documents
    kept = dict(admitted)
    admitted.clear()
    node_calls.clear()
    through_pipeline = await gql.raw(LISTING, {"id": listing_id})
    once = len(node_calls)
    admitted.update(kept)
    pipeline_runs.clear()
    node_calls.clear()
    # when they are asked without a token, with a page too long, and with a null id
    anonymous = await gql.raw(LISTING, {"id": listing_id})
    too_long = await gql.raw(ME, {"first": 101}, token)
    null_id = await gql.raw(LISTING, {"id": None}, token)
    # then none went through the pipeline again, the lookup ran as often as the pipeline
    # alone runs it, and each answer is the pipeline's, with its code
    assert pipeline_runs == []
    assert len(node_calls) == once
    assert anonymous == through_pipeline
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert too_long["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert null_id["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


@pytest.mark.parametrize("settings_overrides", [{"answer_cache": False, "env": "production"}])
async def test_an_unexpected_error_is_masked_and_logged_once_as_by_the_pipeline(
    gql: GraphQLClient,
    app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    pipeline_runs: list[str | None],
) -> None:
    # given the lookup admitted, then its resolver failing unexpectedly
    agent = await make_agent()
    listing_id = to_global_id("Listing", (await make_listing(agent)).id)
    token = await gql.sign_in(agent.email or "")
    assert "errors" not in await gql.raw(LISTING, {"id": listing_id}, token)

    async def broken(info: Any, global_id: str) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(query_module, "resolve_node", broken)
    pipeline_runs.clear()
    caplog.clear()
    # when it is asked while admitted, then through the pipeline
    direct = await gql.raw(LISTING, {"id": listing_id}, token)
    direct_logs = [r for r in caplog.records if "secret detail" in r.getMessage()]
    admitted_of(app).documents.clear()
    caplog.clear()
    through_pipeline = await gql.raw(LISTING, {"id": listing_id}, token)
    pipeline_logs = [r for r in caplog.records if "secret detail" in r.getMessage()]
    # then both answers are the same masked error, and each request logged it once
    assert pipeline_runs == [LISTING]
    assert direct == through_pipeline
    assert direct["errors"][0]["message"] == "Unexpected error"
    assert direct["errors"][0]["extensions"] == {"code": "INTERNAL"}
    assert "secret detail" not in str(direct)
    assert len(direct_logs) == len(pipeline_logs) == 1


async def test_another_agents_listing_answers_the_same_either_way(
    gql: GraphQLClient, app: Starlette, pipeline_runs: list[str | None]
) -> None:
    # given the lookup admitted by the listing's own agent
    owner, other = await make_agent(), await make_agent()
    listing_id = to_global_id("Listing", (await make_listing(owner)).id)
    owner_token = await gql.sign_in(owner.email or "")
    other_token = await gql.sign_in(other.email or "")
    await gql.raw(LISTING, {"id": listing_id}, owner_token)
    pipeline_runs.clear()
    # when another agent asks, then asks again with nothing admitted
    direct = await gql.raw(LISTING, {"id": listing_id}, other_token)
    admitted_of(app).documents.clear()
    through_pipeline = await gql.raw(LISTING, {"id": listing_id}, other_token)
    # then the answers are the same, and say nothing of the listing
    assert pipeline_runs == [LISTING]
    assert direct == through_pipeline == {"data": {"node": None}}


@pytest.mark.parametrize("bad", ["nul\x00byte", "x" * 10_001])
async def test_bad_text_in_the_variables_is_refused_even_for_an_admitted_document(
    gql: GraphQLClient, pipeline_runs: list[str | None], bad: str
) -> None:
    agent = await make_agent()
    listing = await make_listing(agent)
    token = await gql.sign_in(agent.email or "")
    await gql.raw(LISTING, {"id": to_global_id("Listing", listing.id)}, token)
    pipeline_runs.clear()
    body = await gql.raw(LISTING, {"id": bad}, token)
    assert pipeline_runs == [LISTING]
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_mutations_are_never_admitted(
    gql: GraphQLClient, app: Starlette, pipeline_runs: list[str | None]
) -> None:
    # given a document with a query and a mutation
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    pipeline_runs.clear()

    async def run(operation: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await gql.http.post(
            "/graphql",
            json={"query": TWO_OPERATIONS, "operationName": operation, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        body: dict[str, Any] = response.json()
        return body

    # when each is run twice
    for _ in range(2):
        assert "errors" not in await run("Read", {})
    for _ in range(2):
        written = await run("Write", {})
        assert written["data"]["markMessagesRead"] == {"count": 0, "userErrors": []}
    # then the query went through the pipeline once, the mutation every time
    assert pipeline_runs == [TWO_OPERATIONS] * 3
    assert admitted_of(app).get(TWO_OPERATIONS, "Read") is not None
    assert admitted_of(app).get(TWO_OPERATIONS, "Write") is None


@pytest.mark.parametrize(
    "settings_overrides",
    [{"env": "production", "secret_key": "p" * 40, "answer_cache": False}],
)
async def test_refused_documents_are_never_admitted(
    gql: GraphQLClient, app: Starlette, pipeline_runs: list[str | None]
) -> None:
    introspection = "{ __schema { queryType { name } } }"
    too_many = "{ " + " ".join(f"a{i}: regions {{ code }}" for i in range(31)) + " }"
    for query in (introspection, too_many):
        for _ in range(2):
            assert (await gql.raw(query))["errors"]
    assert pipeline_runs == [introspection, introspection, too_many, too_many]
    assert admitted_of(app).documents == {}


def test_the_admitted_documents_are_bounded() -> None:
    admitted = Admitted()
    for n in range(admitted_module.MAX_DOCUMENTS + 10):
        admitted.admit(f"query Q{n} {{ regions {{ code }} }}", None)
    assert len(admitted.documents) == admitted_module.MAX_DOCUMENTS
    assert admitted.get("query Q0 { regions { code } }", None) is None
    assert admitted.get(
        f"query Q{admitted_module.MAX_DOCUMENTS + 9} {{ regions {{ code }} }}", None
    )
    admitted.admit("subscription { messageAdded { id } }", None)
    assert admitted.get("subscription { messageAdded { id } }", None) is None


def test_an_extension_not_known_to_be_document_level_turns_admission_off() -> None:
    class Timing(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            yield

    known = [
        ParserCache(),
        ValidationCache(),
        MaxTokensLimiter(max_token_count=10),
        RejectBadText(),
    ]
    assert admits(known)
    assert admits([*known, DisableIntrospection()])  # validation rules, like the limits
    assert not admits([*known, Timing()])
