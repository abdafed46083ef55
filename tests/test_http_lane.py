"""The lane for admitted queries over HTTP (schema/fast/http_lane.py): it answers exactly as
the view would, byte for byte and header for header, errors included; everything that is not
a plain JSON POST of an admitted document goes to the view; and with trusted documents in
production it runs no text the view would refuse."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from strawberry.asgi import GraphQL

from schema.fast.http_lane import MAX_REQUEST, AdmittedLane
from tests.factories import SIGN_IN, GraphQLClient, make_contractor

ME = """
query Me($first: Int) {
  me { id firstName email messages(first: $first) { totalCount edges { cursor node { id title } } } }
}
"""
OTHER = "query Other { me { id lastName } }"
SIGN_OUT = "mutation { signOut { ok } }"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    """Production (errors masked), kept answers off (each answer worked out), and the texts
    production runs: ME, signing in and out."""
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({_digest(text): text for text in (ME, SIGN_IN, SIGN_OUT)}))
    return {"env": "production", "answer_cache": False, "trusted_documents": str(manifest)}


@pytest.fixture
def view_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The requests that reached the view itself, by method."""
    runs: list[str] = []
    original = GraphQL.run

    async def counted(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        runs.append(request.scope["method"])
        return await original(self, request, *args, **kwargs)

    monkeypatch.setattr(GraphQL, "run", counted)
    return runs


def _seen(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(k, v) for k, v in response.headers.items() if k != "x-request-id"]
    return response.status_code, headers, response.content


async def _both(
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    view_runs: list[str],
    content: bytes,
    headers: dict[str, str],
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The lane's answer, after checking it is the view's own for the same request."""
    with monkeypatch.context() as closed:
        closed.setattr(AdmittedLane, "_asked", lambda self, body: None)
        before = len(view_runs)
        by_view = await http.post("/graphql", content=content, headers=headers)
        assert len(view_runs) == before + 1
    by_lane = await http.post("/graphql", content=content, headers=headers)
    assert len(view_runs) == before + 1, "the lane sent it to the view"
    assert _seen(by_lane) == _seen(by_view)
    return _seen(by_lane)


def _body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


async def test_admitted_queries_are_answered_as_the_view_answers_them(
    http: httpx.AsyncClient,
    gql: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
    view_runs: list[str],
) -> None:
    contractor = await make_contractor(first_name="Lane")
    token = await gql.sign_in(contractor.email or "")
    signed_in = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    # The first answer admits the document; until then the view answers.
    body = _body(query=ME, variables={"first": 2}, operationName="Me")
    await http.post("/graphql", content=body, headers=signed_in)

    status, headers, content = await _both(http, monkeypatch, view_runs, body, signed_in)
    assert status == 200
    assert ("content-type", "application/json") in headers
    assert json.loads(content)["data"]["me"]["firstName"] == "Lane"

    # Other variables, a charset, an Accept of JSON, no operation name: the lane still.
    for variables, content_type, accept in [
        ({"first": 1}, "application/json; charset=utf-8", "application/json"),
        (None, "application/json;charset=UTF-8", "*/*"),
    ]:
        asked = {**signed_in, "content-type": content_type, "accept": accept}
        await _both(http, monkeypatch, view_runs, _body(query=ME, variables=variables), asked)

    # Nobody, and errors: the same document without a token, a forged one, a bad variable.
    anonymous = {"content-type": "application/json"}
    status, _, content = await _both(http, monkeypatch, view_runs, body, anonymous)
    assert json.loads(content)["data"]["me"] is None
    copied = {**signed_in, "authorization": "Bearer " + token[:-2] + "xx"}
    await _both(http, monkeypatch, view_runs, body, copied)
    wrong = _body(query=ME, variables={"first": "ten"})
    status, _, content = await _both(http, monkeypatch, view_runs, wrong, signed_in)
    assert "errors" in json.loads(content)


async def test_anything_but_a_plain_request_goes_to_the_view(
    http: httpx.AsyncClient, gql: GraphQLClient, view_runs: list[str]
) -> None:
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "")
    signed_in = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    body = _body(query=ME, variables={"first": 2})
    await http.post("/graphql", content=body, headers=signed_in)  # admitted from here on
    view_runs.clear()
    plain = await http.post("/graphql", content=body, headers=signed_in)
    assert plain.status_code == 200 and view_runs == []

    refused_here: list[tuple[str, bytes, dict[str, str]]] = [
        ("/graphql?first=2", body, signed_in),
        ("/graphql", body, {**signed_in, "accept": "multipart/mixed;deferSpec=20220824"}),
        ("/graphql", body, {**signed_in, "accept": "application/graphql-response+json"}),
        ("/graphql", body, {**signed_in, "content-type": "application/jsonx"}),
        ("/graphql", body, {**signed_in, "content-type": "Application/JSON"}),
        ("/graphql", body, {**signed_in, "accept": "application/json, */*"}),
        ("/graphql", body, {**signed_in, "content-type": "text/plain"}),
        ("/graphql", _body(query=ME, extensions={}), signed_in),
        ("/graphql", _body(query=ME, variables={"first": 2}, extra=1), signed_in),
        ("/graphql", json.dumps([{"query": ME}]).encode(), signed_in),
        ("/graphql", _body(query=ME, variables=[2]), signed_in),
        ("/graphql", _body(query=ME, operationName=7), signed_in),
        ("/graphql", b'{"query": "' + ME.encode().replace(b"\n", b" "), signed_in),
        ("/graphql", b"\xff\xfe", signed_in),
        ("/graphql", _body(query=ME, variables={"pad": "x" * MAX_REQUEST}), signed_in),
    ]
    for path, content, headers in refused_here:
        view_runs.clear()
        answer = await http.post(path, content=content, headers=headers)
        assert view_runs == ["POST"], (path, content[:80], headers)
        assert answer.status_code < 500, (path, content[:80], headers)
    view_runs.clear()
    await http.get("/graphql", params={"query": ME}, headers=signed_in)
    assert view_runs == ["GET"]


async def test_an_operation_name_that_is_not_text_is_an_unknown_name_not_a_crash(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "")
    signed_in = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    for name in (7, [], {"a": 1}, True):
        answer = await http.post(
            "/graphql", content=_body(query=ME, operationName=name), headers=signed_in
        )
        # As for any name the document does not have: Strawberry's 400.
        assert answer.status_code == 400, (name, answer.text)
        assert answer.text == 'Unknown operation named "<not a string>".'


async def test_with_trusted_documents_the_lane_runs_no_text_the_view_refuses(
    http: httpx.AsyncClient,
    gql: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
    view_runs: list[str],
) -> None:
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "")
    signed_in = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    # An attacker's text, admitted by some other way: production still refuses it.
    schema = http._transport.app.state.graphql.schema  # type: ignore[attr-defined]
    monkeypatch.setattr(schema, "admits_again", lambda query, name: True)
    view_runs.clear()
    refused = await http.post("/graphql", content=_body(query=OTHER), headers=signed_in)
    assert view_runs == ["POST"]
    assert refused.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"
    # The trusted text itself may be sent as text, and the lane answers it.
    view_runs.clear()
    allowed = await http.post("/graphql", content=_body(query=ME), headers=signed_in)
    assert view_runs == [] and "errors" not in allowed.json()


async def test_a_real_server_answers_through_the_lane(
    live_gql: GraphQLClient, view_runs: list[str]
) -> None:
    contractor = await make_contractor(first_name="Wire")
    token = await live_gql.sign_in(contractor.email or "")
    first = await live_gql(ME, {"first": 3}, token=token)
    view_runs.clear()
    again = await live_gql(ME, {"first": 3}, token=token)
    assert again == first and again["me"]["firstName"] == "Wire"
    assert view_runs == []
    # Signed out, the same token names nobody, through the lane as through the view.
    assert (await live_gql(SIGN_OUT, token=token))["signOut"]["ok"]
    view_runs.clear()
    copied = await live_gql.raw(ME, {"first": 3}, token=token)
    assert view_runs == []
    assert copied["data"]["me"] is None
