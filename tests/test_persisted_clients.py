"""The persisted documents front-end tools make, against a real keybin: Apollo Client's
persisted-queries link (automatic persisted queries, then ids from the manifest Apollo's
generate-persisted-query-manifest writes), graphql-codegen's client preset manifest, and
Relay's compiler and runtime (the ids its `persistConfig` wrote), made from keybin's exported
schema.graphql and the documents in tests/js/persisted/."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.ids import to_global_id
from tests.factories import PASSWORD, make_agent
from tests.live import Live

pytestmark = pytest.mark.needs("node")

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "tests" / "js" / "persisted"
DOCUMENTS = sorted((JS / "documents").glob("*.graphql"))
TEXTS = {path.stem: path.read_text() for path in DOCUMENTS}  # regions, me, sign-in


@pytest.fixture(scope="session")
def npm_tools() -> Path:
    """The pinned packages (package-lock.json), installed on first use and kept."""
    npm = shutil.which("npm")
    assert npm, "npm is needed for the persisted documents clients"
    wanted = (
        "@apollo/client",
        "@graphql-codegen/cli",
        "@apollo/generate-persisted-query-manifest",
        "relay-compiler",
        "relay-runtime",
    )
    if not all((JS / "node_modules" / name).exists() for name in wanted):
        subprocess.run(
            [npm, "ci", "--prefix", str(JS), "--no-audit", "--no-fund"], check=True, timeout=600
        )
    return JS


def run_tool(tools: Path, name: str, config: Path) -> None:
    # From the packages' folder: the codegen finds its preset there.
    done = subprocess.run(
        [str(tools / "node_modules" / ".bin" / name), "--config", str(config)],
        cwd=tools,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
def apollo_manifest(npm_tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Apollo's generate-persisted-query-manifest over the documents."""
    folder = tmp_path_factory.mktemp("apollo")
    config = folder / "persisted-query-manifest.config.json"
    output = folder / "persisted-query-manifest.json"
    documents = [str(path) for path in DOCUMENTS]
    config.write_text(json.dumps({"documents": documents, "output": str(output)}))
    run_tool(npm_tools, "generate-persisted-query-manifest", config)
    return output


@pytest.fixture(scope="session")
def codegen_manifest(npm_tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """graphql-codegen's client preset with persistedDocuments, on keybin's exported schema."""
    folder = tmp_path_factory.mktemp("codegen")
    config = folder / "codegen.json"
    preset = {"preset": "client", "presetConfig": {"persistedDocuments": True}}
    config.write_text(
        json.dumps(
            {
                "schema": str(ROOT / "schema.graphql"),
                "documents": [str(path) for path in DOCUMENTS],
                "generates": {f"{folder}/gql/": preset},
            }
        )
    )
    run_tool(npm_tools, "graphql-codegen", config)
    return folder / "gql" / "persisted-documents.json"


@pytest.fixture(scope="session")
def relay_artifacts(npm_tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """relay-compiler over tests/js/persisted/relay/ with local query persisting (its
    default, MD5 ids): the artifacts, and beside them the persisted.json it wrote."""
    folder = tmp_path_factory.mktemp("relay")
    (folder / "artifacts").mkdir()
    (folder / "persisted.json").write_text("{}")  # the compiler adds to it
    config = folder / "relay.config.json"
    settings = {
        "src": str(JS / "relay"),
        "schema": str(ROOT / "schema.graphql"),
        "language": "javascript",
        "eagerEsModules": True,
        "artifactDirectory": str(folder / "artifacts"),
        "persistConfig": {"file": str(folder / "persisted.json")},
    }
    config.write_text(json.dumps(settings))
    done = subprocess.run(
        [str(npm_tools / "node_modules" / ".bin" / "relay-compiler"), str(config)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return folder / "artifacts"


@pytest.fixture(scope="session")
def relay_manifest(relay_artifacts: Path) -> Path:
    return relay_artifacts.parent / "persisted.json"


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """`"apollo"`, `"codegen"` or `"relay"`: production with that manifest; nothing:
    development."""
    manifest = getattr(request, "param", None)
    if manifest is None:
        return {}
    path = request.getfixturevalue(f"{manifest}_manifest")
    return {"env": "production", "trusted_documents": str(path)}


async def node_lines(script: Path, *args: str) -> list[Any]:
    """What a Node script printed, a JSON line each: each request sent, each answer."""
    node = shutil.which("node") or "node"
    process = await asyncio.create_subprocess_exec(
        node,
        str(script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


async def apollo(live: Live, tools: Path, steps: list[dict[str, Any]], *manifest: Path) -> Any:
    """Apollo Client, as apollo.mjs runs it."""
    return await node_lines(
        tools / "apollo.mjs", live.http_url, json.dumps(steps), *map(str, manifest)
    )


async def relay(live: Live, artifacts: Path, steps: list[dict[str, Any]]) -> Any:
    """Relay's runtime, as relay.mjs runs it."""
    return await node_lines(JS / "relay.mjs", live.http_url, str(artifacts), json.dumps(steps))


def sent_kinds(lines: list[dict[str, Any]]) -> list[str]:
    """Each request as "hash" (its id alone) or "hash+text"."""
    kinds = []
    for line in lines:
        if "sent" in line:
            body = line["sent"]
            assert "persistedQuery" in body["extensions"], body
            kinds.append("hash+text" if "query" in body else "hash")
    return kinds


def answers(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line["answer"] for line in lines if "answer" in line]


async def test_apollo_link_registers_a_query_once_then_sends_its_hash_alone(
    live: Live, npm_tools: Path
) -> None:
    # given an agent, and a development server that has never seen these documents
    agent = await make_agent(first_name="Ada")
    sign_in = {
        "document": TEXTS["sign-in"],
        "variables": {
            "input": {
                "login": agent.email,
                "password": PASSWORD,
                "deviceId": "d",
                "deviceName": "Phone",
            }
        },
    }
    # when Apollo Client signs in, asks for the regions twice, each with a client of its own
    lines = await apollo(
        live, npm_tools, [sign_in, {"document": TEXTS["regions"]}, {"document": TEXTS["regions"]}]
    )
    # then each first request carried the hash alone, the server asked for the text once,
    # and the second client's hash alone was answered
    assert sent_kinds(lines) == ["hash", "hash+text", "hash", "hash+text", "hash"]
    signed_in, regions, again = answers(lines)
    token = signed_in["data"]["signIn"]["token"]
    assert signed_in["errors"] is None and token
    assert regions == again == {"data": {"regions": []}, "errors": None}
    # and a query that needs the token answers by hash with it, and without it as before
    me = {"document": TEXTS["me"]}
    lines = await apollo(live, npm_tools, [{**me, "token": token}, me])
    assert sent_kinds(lines) == ["hash", "hash+text", "hash"]
    with_token, without = answers(lines)
    assert with_token["data"]["me"]["firstName"] == "Ada"
    assert without == {"data": {"me": None}, "errors": None}


@pytest.mark.parametrize("settings_overrides", ["apollo"], indirect=True)
async def test_production_answers_apollos_manifest_ids_and_refuses_anything_else(
    live: Live, npm_tools: Path, apollo_manifest: Path
) -> None:
    # given a production server started with Apollo's generated manifest
    agent = await make_agent(first_name="Ada")
    variables = {
        "input": {"login": agent.email, "password": PASSWORD, "deviceId": "d", "deviceName": "P"}
    }
    steps = [{"document": TEXTS["sign-in"], "variables": variables}, {"document": TEXTS["regions"]}]
    # when Apollo Client sends the manifest's ids
    lines = await apollo(live, npm_tools, steps, apollo_manifest)
    # then each is answered from its id alone
    assert sent_kinds(lines) == ["hash", "hash"]
    signed_in, regions = answers(lines)
    assert signed_in["data"]["signIn"]["token"]
    assert regions == {"data": {"regions": []}, "errors": None}
    # and a document outside the manifest, sent by the same link, is refused for good
    other = {"document": "query Other { regions { code } }"}
    lines = await apollo(live, npm_tools, [other])
    assert sent_kinds(lines) == ["hash"]
    (refused,) = answers(lines)
    assert refused["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"


@pytest.mark.parametrize("settings_overrides", ["codegen"], indirect=True)
async def test_production_answers_codegens_persisted_documents_by_hash(
    live: Live, codegen_manifest: Path
) -> None:
    # given a production server started with the client preset's persisted-documents.json
    manifest: dict[str, str] = json.loads(await asyncio.to_thread(codegen_manifest.read_text))
    assert len(manifest) == len(DOCUMENTS)
    regions_id = next(key for key, text in manifest.items() if text.startswith("query Regions"))
    async with httpx.AsyncClient() as client:
        # when a client sends the hash the preset embedded in the document, either way
        for body in (
            {"documentId": regions_id},
            {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": regions_id}}},
        ):
            answer = (await client.post(live.http_url, json=body)).json()
            # then
            assert answer == {"data": {"regions": []}}, body
        # and the same document as free text, as written in the app, is refused
        free = await client.post(live.http_url, json={"query": TEXTS["regions"]})
        assert free.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"


@pytest.mark.parametrize("settings_overrides", ["relay"], indirect=True)
async def test_production_answers_relays_persisted_ids_from_its_runtime(
    live: Live, relay_artifacts: Path, relay_manifest: Path
) -> None:
    # given a production server started with the persisted.json relay-compiler wrote (the
    # documents as Relay rewrote them: `me` asks for __typename too)
    manifest: dict[str, str] = json.loads(await asyncio.to_thread(relay_manifest.read_text))
    assert len(manifest) == 3
    assert any("__typename" in text for text in manifest.values())
    agent = await make_agent(first_name="Ada")
    variables = {
        "input": {"login": agent.email, "password": PASSWORD, "deviceId": "d", "deviceName": "P"}
    }
    # when Relay's runtime signs in and asks for the regions
    lines = await relay(
        live,
        relay_artifacts,
        [{"operation": "SignInMutation", "variables": variables}, {"operation": "RegionsQuery"}],
    )
    # then it sent each document's id alone, and each was answered
    sent = [line["sent"] for line in lines if "sent" in line]
    assert [set(body) for body in sent] == [{"doc_id", "variables"}] * 2
    assert all(body["doc_id"] in manifest for body in sent)
    signed_in, regions = answers(lines)
    token = signed_in["data"]["signIn"]["token"]
    assert token and signed_in["errors"] is None
    assert regions == {"data": {"regions": []}, "errors": None}
    # and `me` answers with the token, as Relay asked for it
    (me,) = answers(await relay(live, relay_artifacts, [{"operation": "MeQuery", "token": token}]))
    assert me == {
        "data": {"me": {"id": to_global_id("Agent", agent.id), "firstName": "Ada"}},
        "errors": None,
    }
    # and an id the compiler did not write is refused for good, as is a document it did not
    # persist sent as text
    async with httpx.AsyncClient() as client:
        unknown = await client.post(live.http_url, json={"doc_id": "0" * 32})
        text = await client.post(live.http_url, json={"query": "query Other { regions { code } }"})
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"
    assert text.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"
