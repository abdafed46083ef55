"""Persisted documents on a real server: Apollo's automatic persisted queries, trusted
documents (TRUSTED_DOCUMENTS) in production and in development, and what an attacker tries
with them, over HTTP and graphql-transport-ws."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from schema.fast import plans
from settings import ConfigurationError, Settings
from tests.factories import PASSWORD, SIGN_IN, make_agent
from tests.live import Live
from tests.smtp import free_port

ROOT = Path(__file__).resolve().parent.parent

REGIONS = "query Regions { regions { code } }"
ME = "query Me { me { id firstName } }"
SET_PIN = """
mutation SetPin($input: SetPinInput!) { setPin(input: $input) { ok userErrors { code } } }
"""
LIVE = "subscription Live { messageAdded { kind title } }"
INTROSPECTION = "query Peek { __schema { types { name } } }"
# What the front-end team ships: these, and nothing else, in production.
TRUSTED = {"Regions": REGIONS, "SignIn": SIGN_IN, "Me": ME, "SetPin": SET_PIN, "Live": LIVE}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def manifest_ids(form: str) -> dict[str, str]:
    """Each trusted operation's id as the tool writing `form` names it."""
    if form == "relay":  # Relay's compiler: MD5 by default
        return {
            name: hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
            for name, text in TRUSTED.items()
        }
    if form == "codegen":  # graphql-codegen's client preset: SHA-1 by default
        return {
            name: hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
            for name, text in TRUSTED.items()
        }
    return {name: sha256(text) for name, text in TRUSTED.items()}


def write_manifest(path: Path, form: str) -> Path:
    ids = manifest_ids(form)
    if form == "apollo":
        content: Any = {
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [
                {"id": ids[name], "name": name, "type": "query", "body": text}
                for name, text in TRUSTED.items()
            ],
        }
    else:
        content = {ids[name]: text for name, text in TRUSTED.items()}
    path.write_text(json.dumps(content))
    return path


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """`{"manifest": "apollo" | "codegen" | "relay", ...}` writes TRUSTED in that format."""
    wanted = dict(getattr(request, "param", {}))
    form = wanted.pop("manifest", None)
    if form is not None:
        wanted["trusted_documents"] = str(write_manifest(tmp_path / "manifest.json", form))
    return wanted


def production(form: str = "apollo", **more: Any) -> Any:
    return pytest.param({"env": "production", "manifest": form, **more}, id=f"production-{form}")


@pytest.fixture
async def client(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.http_url.removesuffix("/graphql")) as http:
        yield http


async def ask(
    client: httpx.AsyncClient, body: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def by_hash(sha: str, query: str | None = None, **fields: Any) -> dict[str, Any]:
    """A request as Apollo's persisted-queries link sends it."""
    body: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha}}}
    if query is not None:
        body["query"] = query
    return {**body, **fields}


def code(answer: dict[str, Any]) -> str:
    return str(answer["errors"][0]["extensions"]["code"])


SIGN_IN_VARIABLES = {"deviceId": "d", "deviceName": "Phone", "password": PASSWORD}


async def sign_in_by_id(client: httpx.AsyncClient, email: str, sign_in_id: str) -> str:
    variables = {"input": {**SIGN_IN_VARIABLES, "login": email}}
    answer = await ask(client, {"documentId": sign_in_id, "variables": variables})
    token: str = answer["data"]["signIn"]["token"]
    return token


# Automatic persisted queries (development, as by default)


async def test_an_unknown_hash_is_not_found_then_its_text_is_kept_and_answered_by_hash(
    client: httpx.AsyncClient,
) -> None:
    # given a query the server has never seen
    await ask(client, {"query": "{ regions { code } }"})  # other traffic: nothing registers
    # when the client sends its hash alone
    first = await ask(client, by_hash(sha256(REGIONS)))
    # then it hears what Apollo's link waits for, and sends the text with the hash
    assert first["errors"][0]["message"] == "PersistedQueryNotFound"
    assert code(first) == "PERSISTED_QUERY_NOT_FOUND"
    registered = await ask(client, by_hash(sha256(REGIONS), REGIONS, operationName="Regions"))
    assert registered == {"data": {"regions": []}}
    # and from then on the hash alone is answered
    again = await ask(client, by_hash(sha256(REGIONS), operationName="Regions"))
    assert again == {"data": {"regions": []}}


async def test_a_hash_that_is_not_the_texts_is_refused_and_keeps_nothing(
    client: httpx.AsyncClient,
) -> None:
    # given an attacker pairing a query's hash with another text
    other = "query Other { me { id } }"
    # when
    answer = await ask(client, by_hash(sha256(REGIONS), other))
    # then it is refused before it is parsed, and neither hash knows a text
    assert code(answer) == "INVALID_INPUT" and answer["data"] is None
    assert "does not match" in answer["errors"][0]["message"]
    for sha in (sha256(REGIONS), sha256(other)):
        assert code(await ask(client, by_hash(sha))) == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_huge_document_with_a_made_up_hash_is_refused_unparsed(
    client: httpx.AsyncClient,
) -> None:
    # given a document of a million characters and a hash that is not its own
    huge = "{ regions { " + "code " * 200_000 + "} }"
    # when
    answer = await ask(client, by_hash("0" * 64, huge))
    # then
    assert code(answer) == "INVALID_INPUT"
    assert "does not match" in answer["errors"][0]["message"]


@pytest.mark.parametrize(
    ("document", "refusal"),
    [
        ("{ regions { " + "code " * 5001 + "} }", "token"),
        ("{ " + " ".join(f"a{i}: regions {{ code }}" for i in range(31)) + " }", "alias"),
        ("{ me { " + "... on Agent { listings { edges { node { lockbox { listing { " * 4, "depth"),
    ],
    ids=["tokens", "aliases", "depth"],
)
async def test_the_limits_apply_to_registered_text_and_a_refused_one_is_not_kept(
    client: httpx.AsyncClient, document: str, refusal: str
) -> None:
    # given a document over a limit, sent with its true hash
    if refusal == "depth":
        document += "id" + " } } } } } }" * 4 + " } }"
    sha = sha256(document)
    # when
    answer = await ask(client, by_hash(sha, document))
    # then the limit refuses it as it refuses text, and the hash alone still finds nothing
    assert answer["data"] is None
    assert refusal in answer["errors"][0]["message"].lower(), answer
    assert code(await ask(client, by_hash(sha))) == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    "settings_overrides", [{"apq_max_documents": 2, "apq_max_bytes": 300}], indirect=True
)
async def test_what_is_kept_is_bounded_by_count_and_by_bytes(client: httpx.AsyncClient) -> None:
    # given three texts registered on a server keeping two documents or 300 bytes
    texts = [f"query Q{i} {{ regions {{ code }} }}" for i in range(3)]
    for text in texts:
        assert "errors" not in await ask(client, by_hash(sha256(text), text))
    # then the oldest went first
    assert code(await ask(client, by_hash(sha256(texts[0])))) == "PERSISTED_QUERY_NOT_FOUND"
    for text in texts[1:]:
        assert "errors" not in await ask(client, by_hash(sha256(text)))
    # when a text larger than all the room is sent
    big = "query Big { regions { code } }" + " " * 400
    assert "errors" not in await ask(client, by_hash(sha256(big), big))
    # then it is answered but not kept, and it evicted nothing
    assert code(await ask(client, by_hash(sha256(big)))) == "PERSISTED_QUERY_NOT_FOUND"
    for text in texts[1:]:
        assert "errors" not in await ask(client, by_hash(sha256(text)))


@pytest.mark.parametrize("settings_overrides", [{"apq": False}], indirect=True)
async def test_with_apq_off_a_hash_is_not_supported_and_text_still_works(
    client: httpx.AsyncClient,
) -> None:
    answer = await ask(client, by_hash(sha256(REGIONS)))
    assert answer["errors"][0]["message"] == "PersistedQueryNotSupported"
    assert code(answer) == "PERSISTED_QUERY_NOT_SUPPORTED"
    assert await ask(client, by_hash(sha256(REGIONS), REGIONS)) == {"data": {"regions": []}}
    assert code(await ask(client, by_hash(sha256(REGIONS)))) == "PERSISTED_QUERY_NOT_SUPPORTED"


async def test_a_mutation_by_hash_still_needs_its_token_and_a_json_post(
    client: httpx.AsyncClient,
) -> None:
    # given setPin registered by a signed-in agent
    agent = await make_agent(pin=None)
    token = await sign_in(client, agent.email or "")
    variables = {"input": {"password": PASSWORD, "newPin": "4321"}}
    sha = sha256(SET_PIN)
    first = await ask(client, by_hash(sha, SET_PIN, variables=variables), token)
    assert first["data"]["setPin"] == {"ok": True, "userErrors": []}
    # when someone else sends the same hash without a token
    anonymous = await ask(client, by_hash(sha, variables=variables))
    # then it is refused as the text would be
    assert code(anonymous) == "UNAUTHENTICATED" and anonymous["data"] is None
    # and a cross-site form (text/plain, no preflight) or a GET does not run it either
    form = await client.post(
        "/graphql",
        content=json.dumps(by_hash(sha, variables=variables)),
        headers={"Content-Type": "text/plain", "Authorization": f"Bearer {token}"},
    )
    assert form.status_code == 400 and "setPin" not in form.text
    params = {"extensions": json.dumps(by_hash(sha)["extensions"]), "variables": "{}"}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    get = await client.get("/graphql", params=params, headers=headers)
    assert get.status_code in {400, 405} and "setPin" not in get.text


async def test_a_get_never_registers_a_text(client: httpx.AsyncClient) -> None:
    # given a GET carrying a text and its hash
    extensions = json.dumps(by_hash(sha256(REGIONS))["extensions"])
    params = {"query": REGIONS, "extensions": extensions}
    get = await client.get("/graphql", params=params, headers={"Accept": "application/json"})
    # then keybin runs no query from a GET, and nothing was kept
    assert get.status_code in {400, 405} and "regions" not in get.text
    assert code(await ask(client, by_hash(sha256(REGIONS)))) == "PERSISTED_QUERY_NOT_FOUND"


async def sign_in(client: httpx.AsyncClient, email: str) -> str:
    variables = {"input": {**SIGN_IN_VARIABLES, "login": email}}
    answer = await ask(client, {"query": SIGN_IN, "variables": variables})
    token: str = answer["data"]["signIn"]["token"]
    return token


async def subscribe(live: Live, token: str, payload: dict[str, Any]) -> ClientConnection:
    ws = await connect(live.ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": token}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    return ws


async def test_a_subscription_by_hash_over_websocket(live: Live, client: httpx.AsyncClient) -> None:
    agent = await make_agent()
    token = "Bearer " + await sign_in(client, agent.email or "")
    # given an unknown hash: the error for that operation, the connection stays
    ws = await subscribe(live, token, by_hash(sha256(LIVE)))
    refused = json.loads(await ws.recv())
    assert refused["type"] == "error" and refused["id"] == "1"
    assert refused["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # when the text comes with its hash, then by hash alone on another connection
    await ws.send(
        json.dumps({"id": "2", "type": "subscribe", "payload": by_hash(sha256(LIVE), LIVE)})
    )
    await live.wait_for_subscribers(1)
    again = await subscribe(live, token, by_hash(sha256(LIVE)))
    # then both subscriptions run
    await live.wait_for_subscribers(2)
    await ws.close()
    await again.close()


# Trusted documents


def manifest_form(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["settings_overrides"]["manifest"])


FORMS = [production(form) for form in ("apollo", "codegen", "relay")]


@pytest.mark.parametrize("settings_overrides", FORMS, indirect=True)
async def test_production_answers_the_manifest_by_id_and_refuses_anything_else(
    client: httpx.AsyncClient, request: pytest.FixtureRequest
) -> None:
    # given a production server with a manifest of the front-end's documents
    ids = manifest_ids(manifest_form(request))
    agent = await make_agent()
    # when the documents are asked for by id, the ways clients send one
    token = await sign_in_by_id(client, agent.email or "", ids["SignIn"])
    for body in (
        by_hash(ids["Regions"]),
        {"documentId": ids["Regions"]},
        {"id": ids["Regions"]},
        {"doc_id": ids["Regions"]},
        by_hash(sha256(REGIONS)),  # a hash of the text, as Apollo's link makes it
        {"documentId": f"sha256:{sha256(REGIONS)}"},
    ):
        assert await ask(client, body) == {"data": {"regions": []}}, body
    me = await ask(client, {"documentId": ids["Me"]}, token)
    assert me["data"]["me"]["id"]
    # then anything else is refused before it is parsed
    for body in (
        {"query": "{ regions { code } }"},
        {"query": INTROSPECTION},
        by_hash(sha256(INTROSPECTION), INTROSPECTION),  # registering: not here
        by_hash(sha256(INTROSPECTION)),
        {"documentId": "0" * 40},
    ):
        answer = await ask(client, body)
        assert code(answer) == "PERSISTED_QUERY_NOT_ALLOWED", (body, answer)
        assert answer["data"] is None
    # and a trusted id with another text is a mismatch
    assert code(await ask(client, by_hash(ids["Regions"], ME))) == "INVALID_INPUT"


@pytest.mark.parametrize("settings_overrides", [production()], indirect=True)
async def test_production_a_trusted_mutation_still_needs_its_token(
    client: httpx.AsyncClient,
) -> None:
    # given setPin in the manifest, asked for by id without a token
    ids = manifest_ids("apollo")
    variables = {"input": {"password": PASSWORD, "newPin": "4321"}}
    # when
    answer = await ask(client, {"documentId": ids["SetPin"], "variables": variables})
    # then it is refused as its text would be
    assert code(answer) == "UNAUTHENTICATED" and answer["data"] is None


@pytest.mark.parametrize("settings_overrides", [production()], indirect=True)
async def test_production_subscriptions_follow_the_same_rules(
    live: Live, client: httpx.AsyncClient
) -> None:
    ids = manifest_ids("apollo")
    agent = await make_agent()
    token = "Bearer " + await sign_in_by_id(client, agent.email or "", ids["SignIn"])
    # given free text, and a text sent to register with its hash: each refused
    ws = await subscribe(live, token, {"query": "subscription { messageAdded { kind } }"})
    refused = json.loads(await ws.recv())
    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"
    other = "subscription Other { messageAdded { title } }"
    payload = by_hash(sha256(other), other)
    await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": payload}))
    refused = json.loads(await ws.recv())
    assert refused["id"] == "2"
    assert refused["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"
    assert live.app.state.pubsub.subscriber_count() == 0
    # when the trusted subscription is asked for by its id
    payload = by_hash(ids["Live"])
    await ws.send(json.dumps({"id": "3", "type": "subscribe", "payload": payload}))
    # then it runs
    await live.wait_for_subscribers(1)
    await ws.close()


@pytest.mark.parametrize("settings_overrides", [{"manifest": "codegen"}], indirect=True)
async def test_in_development_trusted_documents_by_id_and_free_text_and_apq_all_work(
    client: httpx.AsyncClient,
) -> None:
    ids = manifest_ids("codegen")
    assert await ask(client, {"documentId": ids["Regions"]}) == {"data": {"regions": []}}
    assert await ask(client, {"query": "{ regions { code } }"}) == {"data": {"regions": []}}
    other = "query Other { regions { code } }"
    assert "errors" not in await ask(client, by_hash(sha256(other), other))
    assert "errors" not in await ask(client, by_hash(sha256(other)))
    unknown = await ask(client, {"documentId": "f" * 40})
    assert code(unknown) == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize("settings_overrides", [production()], indirect=True)
async def test_trusted_queries_are_admitted_and_planned_before_the_first_request(
    app: Starlette,
) -> None:
    # given a server that has started and answered nothing yet
    schema = app.state.graphql.schema
    # then each trusted query skips the pipeline from its first request on, planned ahead
    for name in ("Regions", "Me"):
        text = TRUSTED[name]
        assert schema.admitted.get(text, name) is not None
        assert schema.admitted.get(text, None) is not None
        kept = plans._plans[schema._schema]
        assert kept[(text, name, "query")] is not None
    assert plans._plans[schema._schema][(LIVE, "Live", "subscription")] is not None
    assert schema.admitted.get(SET_PIN, "SetPin") is None  # mutations never are


@pytest.mark.parametrize(
    "body",
    [
        {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "ab"}}},
        {"extensions": {"persistedQuery": {"version": 1}}},
        {"extensions": {"persistedQuery": "abc"}},
        {"documentId": 12},
    ],
    ids=["version-2", "no-hash", "not-an-object", "id-not-a-string"],
)
async def test_a_malformed_persisted_request_is_invalid_input(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    answer = await ask(client, body)
    assert code(answer) == "INVALID_INPUT" and answer["data"] is None


# Start-up

BROKEN = {
    "ok": REGIONS,
    "unknown-field": "query Broken { regions { code nickname } }",
}


def test_a_manifest_document_that_does_not_validate_stops_start_up_naming_it(
    settings: Settings, tmp_path: Path
) -> None:
    from app import create_app

    # given a manifest with a document the schema does not have fields for
    path = tmp_path / "persisted-documents.json"
    path.write_text(json.dumps(BROKEN))
    # when / then
    with pytest.raises(ConfigurationError) as refused:
        create_app(settings.with_(trusted_documents=str(path)))
    message = str(refused.value)
    assert "unknown-field" in message and "Broken" in message and "nickname" in message


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (INTROSPECTION, "introspection"),
        ("{ " + " ".join(f"a{i}: regions {{ code }}" for i in range(31)) + " }", "aliases"),
        ("query Broken { regions { code }", "Syntax Error"),
        ("fragment Codes on Region { code }", "no operation"),
    ],
    ids=["introspection", "aliases", "syntax", "no-operation"],
)
def test_production_checks_manifest_documents_by_the_rules_requests_meet(
    settings: Settings, tmp_path: Path, document: str, reason: str
) -> None:
    from app import create_app

    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"doc-1": document}))
    production_settings = settings.with_(env="production", trusted_documents=str(path))
    with pytest.raises(ConfigurationError, match="doc-1") as refused:
        create_app(production_settings)
    assert reason.lower() in str(refused.value).lower()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json", "is not JSON"),
        ("[1, 2]", "neither"),
        ("{}", "holds no document"),
        ('{"a": 3}', "document a has no text"),
        (
            json.dumps(
                {"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}
            ),
            "version 1",
        ),
        (
            json.dumps(
                {
                    "format": "apollo-persisted-query-manifest",
                    "version": 1,
                    "operations": [{"id": "x", "body": REGIONS}, {"id": "x", "body": ME}],
                }
            ),
            "two different documents",
        ),
    ],
)
def test_a_manifest_keybin_cannot_read_is_refused_with_the_reason(
    settings: Settings, tmp_path: Path, content: str, reason: str
) -> None:
    from app import create_app

    path = tmp_path / "manifest.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=reason):
        create_app(settings.with_(trusted_documents=str(path)))
    with pytest.raises(ConfigurationError, match="cannot read"):
        create_app(settings.with_(trusted_documents=str(tmp_path / "missing.json")))


async def test_keybin_serve_stops_with_one_line_naming_the_document(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(BROKEN))
    environment = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "KEYBIN_DATA_DIR": str(tmp_path),
        "KEYBIN_ENV": "development",
        "TRUSTED_DOCUMENTS": str(path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import cli; cli.main()",
        "serve",
        "--port",
        str(free_port()),
        env=environment,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 1
    last = stderr.decode().strip().splitlines()[-1]
    assert last.startswith("keybin: TRUSTED_DOCUMENTS: document unknown-field (operation Broken)")


@pytest.mark.parametrize("settings_overrides", [production(answer_cache=True)], indirect=True)
async def test_a_trusted_query_asked_by_id_again_is_answered_from_the_kept_answers(
    live: Live, client: httpx.AsyncClient
) -> None:
    # given a trusted query asked for by its id once
    kept = live.app.state.answers
    ids = manifest_ids("apollo")
    first = await ask(client, by_hash(ids["Regions"]))
    hits = kept.hits
    # when the same request comes again, nothing having changed
    second = await ask(client, by_hash(ids["Regions"]))
    # then the answer kept for its document is sent, and a refusal is never kept
    assert first == second == {"data": {"regions": []}}
    assert kept.hits == hits + 1
    for _ in range(2):
        refused = await ask(client, by_hash(sha256(INTROSPECTION)))
        assert code(refused) == "PERSISTED_QUERY_NOT_ALLOWED"
    assert kept.hits == hits + 1
