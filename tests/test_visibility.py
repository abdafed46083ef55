"""Nobody reads another account's data through a field: every field that reaches an account,
read as anonymous, as the account itself, as another agent and as a contractor (README:
Visibility), through the API, and the attacks played against a real server."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLOutputType

from core import clock
from core.ids import to_global_id
from models.access import AccessEvent
from models.accounts import Account, Device
from models.enums import AccessMethod, AccessOutcome, MessageKind
from models.grants import Grant
from models.listings import Listing, Lockbox
from models.messages import Message
from resolvers.deletion import delete_account
from schema.schema import build_schema
from settings import Settings
from tests.factories import (
    PIN,
    GraphQLClient,
    both_ways,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
)
from tests.live import Live, subscribed

# What anyone who reaches another account may read of it: who they deal with.
NAMED = {"id", "firstName", "lastName", "association", "role", "company"}
# Nullable fields read as null for others; every other field of the account's own answers
# FORBIDDEN (the contract makes it non-null).
NULLABLE = {"phone", "company"}
AGENT_FIELDS = [
    "id",
    "firstName",
    "lastName",
    "association",
    "email",
    "phone",
    "status",
    "emailVerified",
    "keyId",
    "linkedAccounts { keyId association status }",
    "listings { totalCount }",
    "lockboxes { totalCount }",
    "messages { totalCount }",
    "unreadMessageCount",
    "devices { name }",
]
CONTRACTOR_FIELDS = [
    "id",
    "firstName",
    "lastName",
    "role",
    "company",
    "email",
    "phone",
    "status",
    "emailVerified",
    "grants { totalCount }",
    "messages { totalCount }",
    "unreadMessageCount",
    "devices { name }",
]

# Where each path starts (a node id of the scene) and how it reaches the account.
AGENT_PATHS = {
    "grant.grantedBy": ("grant", "... on Grant { grantedBy { @@ } }", ["grantedBy"]),
    "grant.listing.agent": (
        "grant",
        "... on Grant { listing { agent { @@ } } }",
        ["listing", "agent"],
    ),
    "grant.lockbox.assignedTo": (
        "grant",
        "... on Grant { lockbox { assignedTo { @@ } } }",
        ["lockbox", "assignedTo"],
    ),
    "accessEvent.actor": (
        "agent_visit",
        "... on AccessEvent { actor { ... on Agent { @@ } } }",
        ["actor"],
    ),
    "node": ("agent", "... on Agent { @@ }", []),
}
CONTRACTOR_PATHS = {
    "grant.grantee": ("grant", "... on Grant { grantee { @@ } }", ["grantee"]),
    "accessEvent.actor": (
        "contractor_visit",
        "... on AccessEvent { actor { ... on Contractor { @@ } } }",
        ["actor"],
    ),
    "node": ("contractor", "... on Contractor { @@ }", []),
}

READERS = ["anonymous", "agent", "other agent", "contractor", "other contractor"]
ALL, NAMED_ONLY, NOTHING, UNAUTHENTICATED = "all", "named", "nothing", "unauthenticated"
# The README's table, per path: what each reader gets of the agent ("agent") who granted the
# contractor ("contractor") access; "other agent" and "other contractor" have no grant.
AGENT_SEEN = {
    "grant.grantedBy": [UNAUTHENTICATED, ALL, NOTHING, NAMED_ONLY, NOTHING],
    "grant.listing.agent": [UNAUTHENTICATED, ALL, NOTHING, NAMED_ONLY, NOTHING],
    "grant.lockbox.assignedTo": [UNAUTHENTICATED, ALL, NOTHING, NAMED_ONLY, NOTHING],
    # the agent opened the other agent's lockbox with an agent key: the other agent's record
    "accessEvent.actor": [UNAUTHENTICATED, NOTHING, NAMED_ONLY, NOTHING, NOTHING],
    "node": [UNAUTHENTICATED, ALL, NOTHING, NOTHING, NOTHING],
}
CONTRACTOR_SEEN = {
    "grant.grantee": [UNAUTHENTICATED, NAMED_ONLY, NOTHING, ALL, NOTHING],
    "accessEvent.actor": [UNAUTHENTICATED, NAMED_ONLY, NOTHING, ALL, NOTHING],
    "node": [UNAUTHENTICATED, NOTHING, NOTHING, ALL, NOTHING],
}


@dataclass
class Scene:
    agent: Account
    linked: Account  # the same person's other agent account
    other_agent: Account
    contractor: Account
    other_contractor: Account
    listing: Listing
    lockbox: Lockbox
    grant: Grant
    contractor_visit: AccessEvent
    agent_visit: AccessEvent

    def node_id(self, name: str) -> str:
        kinds = {
            "grant": ("Grant", self.grant.id),
            "agent": ("Agent", self.agent.id),
            "contractor": ("Contractor", self.contractor.id),
            "contractor_visit": ("AccessEvent", self.contractor_visit.id),
            "agent_visit": ("AccessEvent", self.agent_visit.id),
        }
        return to_global_id(*kinds[name])

    def login(self, reader: str) -> str:
        """Key IDs for agents: the agent's email is shared with the linked account."""
        account = {
            "agent": self.agent,
            "other agent": self.other_agent,
            "contractor": self.contractor,
            "other contractor": self.other_contractor,
        }[reader]
        return account.key_id or account.email or ""

    def secrets_of(self, target: str) -> list[str]:
        """What must never appear in another reader's answer."""
        if target == "agent":
            values = [self.agent.email, self.agent.phone, self.agent.key_id, self.linked.key_id]
        else:
            values = [self.contractor.email, self.contractor.phone]
        return [v for v in values if v]


async def visit(
    lockbox: Lockbox, listing: Listing, actor: Account, grant: Grant | None, method: AccessMethod
) -> AccessEvent:
    return await AccessEvent.create(
        lockbox=lockbox,
        listing=listing,
        grant=grant,
        actor=actor,
        actor_name=actor.full_name,
        method=method,
        outcome=AccessOutcome.OPENED,
        occurred_at=clock.now() - timedelta(minutes=5),
    )


async def make_scene() -> Scene:
    """An agent (with a linked second account) who granted a contractor access, the
    contractor's visit, and the agent's own visit to another agent's listing."""
    agent = await make_agent("pat@realty.example", first_name="Pat", phone="+15135550101")
    linked = await make_agent("pat@realty.example", first_name="Pat", association="Other MLS")
    other_agent = await make_agent(first_name="Olga")
    contractor = await make_contractor(first_name="Cleo", company="Clean Co")
    other_contractor = await make_contractor(first_name="Dirk")
    listing = await make_listing(agent)
    lockbox = await make_lockbox(agent, listing=listing)
    their_listing = await make_listing(other_agent)
    their_lockbox = await make_lockbox(other_agent, listing=their_listing)
    grant = await make_grant(agent, listing, lockbox, contractor, starts_in=-600)
    for account in (agent, contractor):
        await Message.create(account=account, kind=MessageKind.ACCOUNT, title="Hi", body="")
    return Scene(
        agent=agent,
        linked=linked,
        other_agent=other_agent,
        contractor=contractor,
        other_contractor=other_contractor,
        listing=listing,
        lockbox=lockbox,
        grant=grant,
        contractor_visit=await visit(
            lockbox, listing, contractor, grant, AccessMethod.BLE_CREDENTIAL
        ),
        agent_visit=await visit(their_lockbox, their_listing, agent, None, AccessMethod.AGENT_KEY),
    )


def aliased(root: str, inner: str, fields: list[str], variables: str = "") -> str:
    """One root field per account field: a refused one nulls only its own alias."""
    parts = [f"f{n}: {root} {{ {inner.replace('@@', f)} }}" for n, f in enumerate(fields)]
    return f"query Reach{variables} {{ {' '.join(parts)} }}"


def answer_of(body: dict[str, Any], n: int, keys: list[str], name: str) -> tuple[Any, list[str]]:
    """The field's value at alias n (None where anything above it is null) and the codes of
    the errors under that alias."""
    found = (body.get("data") or {}).get(f"f{n}")
    for key in keys:
        found = found.get(key) if found is not None else None
    codes = [e["extensions"]["code"] for e in body.get("errors", []) if e["path"][0] == f"f{n}"]
    return (found.get(name) if found is not None else None), codes


async def truth(gql: GraphQLClient, token: str, kind: str, fields: list[str]) -> list[Any]:
    """What the account itself reads through `me`."""
    body = await gql.raw(aliased("me", f"... on {kind} {{ @@ }}", fields), token=token)
    assert "errors" not in body, body
    return [body["data"][f"f{n}"][f.split()[0]] for n, f in enumerate(fields)]


def check(seen: str, name: str, own: Any, value: Any, codes: list[str], where: str) -> None:
    """One field's answer against the README's table."""
    if seen == UNAUTHENTICATED:
        assert (value, codes) == (None, ["UNAUTHENTICATED"]), where
    elif seen == NOTHING:  # the same as a missing id: null, no error
        assert (value, codes) == (None, []), where
    elif seen == ALL or name in NAMED:
        assert own not in (None, "", []), where  # the scene gives every field a value
        assert (value, codes) == (own, []), where
    else:
        assert value is None, where
        assert codes == ([] if name in NULLABLE else ["FORBIDDEN"]), where


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    ("target", "paths", "fields", "seen"),
    [
        ("agent", AGENT_PATHS, AGENT_FIELDS, AGENT_SEEN),
        ("contractor", CONTRACTOR_PATHS, CONTRACTOR_FIELDS, CONTRACTOR_SEEN),
    ],
    ids=["of the agent", "of the contractor"],
)
async def test_what_each_reader_sees_of_an_account(
    gql: GraphQLClient,
    reader: str,
    target: str,
    paths: dict[str, tuple[str, str, list[str]]],
    fields: list[str],
    seen: dict[str, list[str]],
) -> None:
    # given
    s = await make_scene()
    kind = "Agent" if target == "agent" else "Contractor"
    own = await truth(gql, await gql.sign_in(s.login(target)), kind, fields)
    token = await gql.sign_in(s.login(reader)) if reader != "anonymous" else None
    for path, (start, inner, keys) in paths.items():
        # when
        query = aliased("node(id: $id)", inner, fields, "($id: ID!)")
        body = await gql.raw(query, {"id": s.node_id(start)}, token)
        # then
        expected = seen[path][READERS.index(reader)]
        for n, field in enumerate(fields):
            name = field.split()[0]
            value, codes = answer_of(body, n, keys, name)
            check(expected, name, own[n], value, codes, f"{reader} reads {path}.{field}: {body}")
        if expected != ALL:
            text = json.dumps(body)
            assert not [v for v in s.secrets_of(target) if v in text], (path, text)


@pytest.mark.parametrize("reader", ["other agent", "other contractor"])
async def test_another_accounts_nodes_read_as_missing_ones(gql: GraphQLClient, reader: str) -> None:
    # given: one object of every node type, none of them the reader's
    s = await make_scene()
    await gql.sign_in(s.login("agent"))  # registers the agent's device
    device = await Device.get(account_id=s.agent.id)
    message = await Message.filter(account_id=s.contractor.id).first()
    assert message is not None
    theirs = {
        "Agent": s.agent.id,
        "Contractor": s.contractor.id,
        "Device": device.id,
        "Message": message.id,
        "Listing": s.listing.id,
        "Lockbox": s.lockbox.id,
        "Grant": s.grant.id,
        "AccessEvent": s.contractor_visit.id,
    }
    token = await gql.sign_in(s.login(reader))
    ids = [to_global_id(kind, pk) for kind, pk in theirs.items()]
    missing = [to_global_id(kind, 10**6 + pk) for kind, pk in theirs.items()]
    fields = [f'n{n}: node(id: "{node_id}") {{ id }}' for n, node_id in enumerate(ids + missing)]
    query = f"query Nodes {{ {' '.join(fields)} }}"
    # when
    body = await gql.raw(query, token=token)
    # then: null without an error, exactly as for ids that exist nowhere
    assert body == {"data": {f"n{n}": None for n in range(len(ids + missing))}}


GRANT_PARTIES = """
query Parties($grant: ID!, $visit: ID!) {
  grant: node(id: $grant) { ... on Grant { grantee { id firstName } } }
  visit: node(id: $visit) { ... on AccessEvent { actorName actor { id } } }
  me { ... on Agent { listings { edges { node { grants { edges { node {
    id grantee { id firstName lastName role company }
  } } } } } } } }
}
"""


async def test_a_deleted_contractor_is_no_grantee_and_no_actor(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the contractor used the grant, then deleted the account
    s = await make_scene()
    await delete_account(s.contractor.id)
    token = await gql.sign_in(s.login("agent"))
    variables = {"grant": s.node_id("grant"), "visit": s.node_id("contractor_visit")}
    # when: the agent reads the grant, the visit and the listings page (on PostgreSQL built
    # by one statement), through the plans and through graphql-core
    compiled, general = await both_ways(gql, monkeypatch, GRANT_PARTIES, variables, token)
    # then: the account no longer exists; the access history keeps the name
    assert compiled == general
    assert "errors" not in compiled, compiled
    data = compiled["data"]
    assert data["grant"] == {"grantee": None}
    assert data["visit"] == {"actorName": s.contractor.full_name, "actor": None}
    [listing] = data["me"]["listings"]["edges"]
    assert [g["node"]["grantee"] for g in listing["node"]["grants"]["edges"]] == [None]


MESSAGE_GRANTS = "{ me { messages { edges { node { title grant { id } } } } } }"


async def test_a_message_shows_only_a_grant_its_reader_may_see(gql: GraphQLClient) -> None:
    # given: messages naming the grant, to its agent, its grantee and someone else (a
    # notice about an address that was never theirs to prove)
    s = await make_scene()
    for account in (s.agent, s.contractor, s.other_contractor, s.other_agent):
        await Message.create(
            account=account, kind=MessageKind.ACCESS_GRANTED, title="Access", body="", grant=s.grant
        )
    # when
    seen = {}
    for reader in ("agent", "contractor", "other contractor", "other agent"):
        token = await gql.sign_in(s.login(reader))
        edges = (await gql(MESSAGE_GRANTS, token=token))["me"]["messages"]["edges"]
        seen[reader] = [e["node"]["grant"] for e in edges if e["node"]["title"] == "Access"]
    # then
    grant = {"id": s.node_id("grant")}
    assert seen == {
        "agent": [grant],
        "contractor": [grant],
        "other contractor": [None],
        "other agent": [None],
    }


ACCESS_LOG = """
query Log($from: DateTime!, $to: DateTime!) {
  accessLog(from: $from, to: $to) { edges { node { id actorName listing { id } } } }
}
"""
GRANT_USES = "query Uses($id: ID!) { node(id: $id) { ... on Grant { accessEvents { id } } } }"


async def test_a_lockbox_that_changes_hands_keeps_its_history_with_the_listings_agent(
    gql: GraphQLClient,
) -> None:
    # given: the lockbox was used at the agent's listing, then went to another agent, who
    # used it off any listing
    s = await make_scene()
    await Lockbox.filter(id=s.lockbox.id).update(
        assigned_to_id=s.other_agent.id, listing_id=None, on_listing_since=None
    )
    since = await AccessEvent.create(
        lockbox=s.lockbox,
        actor=s.other_agent,
        actor_name=s.other_agent.full_name,
        method=AccessMethod.AGENT_KEY,
        outcome=AccessOutcome.OPENED,
        occurred_at=clock.now() - timedelta(minutes=1),
    )
    window = {
        "from": (clock.now() - timedelta(days=1)).isoformat(),
        "to": (clock.now() + timedelta(minutes=1)).isoformat(),
    }
    before = to_global_id("AccessEvent", s.contractor_visit.id)
    after = to_global_id("AccessEvent", since.id)
    # when
    logs = {}
    for reader in ("agent", "other agent"):
        token = await gql.sign_in(s.login(reader))
        edges = (await gql(ACCESS_LOG, window, token=token))["accessLog"]["edges"]
        logs[reader] = {e["node"]["id"] for e in edges}
    # then: the earlier visit stays the listing agent's record, the later the holder's
    assert before in logs["agent"] and after not in logs["agent"]
    assert after in logs["other agent"] and before not in logs["other agent"]


async def test_a_grantee_sees_only_their_own_uses_of_a_grant(gql: GraphQLClient) -> None:
    # given: someone else's use recorded under the contractor's grant
    s = await make_scene()
    stray = await visit(
        s.lockbox, s.listing, s.other_contractor, s.grant, AccessMethod.BLE_CREDENTIAL
    )
    # when
    uses = {}
    for reader in ("agent", "contractor"):
        token = await gql.sign_in(s.login(reader))
        found = await gql(GRANT_USES, {"id": s.node_id("grant")}, token=token)
        uses[reader] = {e["id"] for e in found["node"]["accessEvents"]}
    # then
    mine = to_global_id("AccessEvent", s.contractor_visit.id)
    theirs = to_global_id("AccessEvent", stray.id)
    assert uses == {"agent": {mine, theirs}, "contractor": {mine}}


def _account_type(output: GraphQLOutputType) -> str | None:
    while isinstance(output, GraphQLNonNull | GraphQLList):
        output = output.of_type
    return output.name if output.name in ("Account", "Agent", "Contractor") else None  # type: ignore[union-attr]


# Fields returning an account: the account itself (its own mutations' payloads, `me`) or
# another object's party, each in the README's table and in the tests above.
OWN_ACCOUNT_FIELDS = {
    "Query.me",
    "SignInPayload.account",
    "CompleteContractorSignupPayload.contractor",
    "UpdateMyInfoPayload.account",
    "ConfirmPhoneChangePayload.account",
    "UpdateEmailPayload.account",
    "ConfirmEmailPayload.account",  # to the signed-in account whose address it proved
}
PARTY_FIELDS = {
    "Grant.grantedBy",
    "Grant.grantee",
    "Listing.agent",
    "Lockbox.assignedTo",
    "AccessEvent.actor",
    "OneDayCodeIssue.issuedBy",
}


def test_every_field_that_reaches_an_account_is_in_the_table() -> None:
    # given
    schema = build_schema(Settings())._schema
    # when
    reaching = {
        f"{type_.name}.{name}"
        for type_ in schema.type_map.values()
        if isinstance(type_, GraphQLObjectType) and not type_.name.startswith("__")
        for name, field in type_.fields.items()
        if _account_type(field.type)
    }
    # then: a new one needs its row in the README's visibility table first
    assert reaching - OWN_ACCOUNT_FIELDS - PARTY_FIELDS == set()
    assert reaching >= PARTY_FIELDS


async def attack(
    live: Live, query: str, token: str, variables: dict[str, Any] | None = None
) -> Any:
    """A request to the real server whose answer may carry errors."""
    async with httpx.AsyncClient() as client:
        response = await client.post(
            live.http_url,
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    return response.json()


MY_AGENTS = """
query MyAgents { me { ... on Contractor { grants { edges { node {
  grantedBy { firstName lastName @@ }
} } } } } }
"""


async def test_a_grantee_reads_no_key_ids_of_the_agent_on_a_real_server(live: Live) -> None:
    # given: a contractor holding a grant from an agent who has two accounts
    s = await make_scene()
    token = await live.sign_in(s.login("contractor"))
    # when: the agent's name, then each of what is the agent's own
    named = await attack(live, MY_AGENTS.replace("@@", "association"), token)
    probes = [
        await attack(live, MY_AGENTS.replace("@@", field), token)
        for field in ("linkedAccounts { keyId association }", "keyId", "email", "status")
    ]
    # then
    [edge] = named["data"]["me"]["grants"]["edges"]
    assert edge["node"]["grantedBy"] == {
        "firstName": "Pat",
        "lastName": s.agent.last_name,
        "association": s.agent.association,
    }
    for probe in probes:
        assert [e["extensions"]["code"] for e in probe["errors"]] == ["FORBIDDEN"], probe
        assert not [v for v in s.secrets_of("agent") if v in json.dumps(probe)], probe


GRANT_ACCESS = """
mutation Grant($input: GrantAccessInput!) {
  grantAccess(input: $input) { grant { id } userErrors { code } }
}
"""
LIVE_GRANTED_BY = "subscription { messageAdded { kind grant { grantedBy { firstName @@ } } } }"


async def test_a_live_grant_tells_its_grantee_no_key_ids_over_websocket(live: Live) -> None:
    # given: the contractor subscribed twice, asking for the agent's name and Key IDs
    s = await make_scene()
    contractor_token = await live.sign_in(s.login("contractor"))
    agent_token = await live.sign_in(s.login("agent"))
    starts = clock.now() + timedelta(hours=1)
    variables = {
        "input": {
            "listingId": to_global_id("Listing", s.listing.id),
            "granteeEmail": s.contractor.email,
            "startsAt": starts.isoformat(),
            "endsAt": (starts + timedelta(hours=2)).isoformat(),
            "pin": PIN,
        }
    }
    async with (
        subscribed(live, contractor_token, LIVE_GRANTED_BY.replace("@@", "lastName")) as named,
        subscribed(
            live, contractor_token, LIVE_GRANTED_BY.replace("@@", "keyId linkedAccounts { keyId }")
        ) as prying,
    ):
        await live.wait_for_subscribers(2)
        # when: the agent grants the contractor access
        payload = (await live.post(GRANT_ACCESS, variables, agent_token))["grantAccess"]
        assert payload["userErrors"] == []
        async with asyncio.timeout(5):
            told, refused = json.loads(await named.recv()), json.loads(await prying.recv())
    # then
    assert told["type"] == "next" and "errors" not in told["payload"], told
    assert told["payload"]["data"]["messageAdded"]["grant"] == {
        "grantedBy": {"firstName": "Pat", "lastName": s.agent.last_name}
    }
    assert refused["type"] == "next", refused
    assert refused["payload"]["data"]["messageAdded"] == {"kind": "ACCESS_GRANTED", "grant": None}
    assert {e["extensions"]["code"] for e in refused["payload"]["errors"]} == {"FORBIDDEN"}
    assert not [v for v in s.secrets_of("agent") if v in json.dumps(refused)], refused
