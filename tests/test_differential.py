"""The fast paths answer exactly as graphql-core does, for generated queries.

hypothesis-graphql generates valid query documents from the schema (Query fields only, with
arguments drawn from the seeded data's ids, serials, times and small counts as well as
arbitrary values). Each one is asked, as each kind of caller, of the real HTTP path with the
fast paths on, as in production (compiled plans, SQL pages, admitted documents,
kept answers: three times, so a document is planned, then admitted, then answered from
memory), and of graphql-core's own executor through Strawberry's whole pipeline with every
fast path off, over the same data at the same frozen instant. Data, error paths, messages and
codes, and the HTTP status must be the same. A second agent's answers must hold nothing of
the first agent's account.

KEYBIN_DIFFERENTIAL_EXAMPLES sets the number of documents per caller (default 300);
generation is derandomized, so a run is reproducible and a failure names its document."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes, queries
from starlette.applications import Starlette

from core import clock
from core.ids import to_global_id
from models.access import AccessEvent
from models.enums import AccessMethod, AccessOutcome, MessageKind
from models.messages import Message
from schema.fast import page_sql
from schema.fast.plans import CompiledExecutor
from schema.schema import export_sdl
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
)

EXAMPLES = int(os.environ.get("KEYBIN_DIFFERENTIAL_EXAMPLES", "300"))
# The instant every request of this module is answered at (grant statuses, expiries).
NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
# In everything of the first agent's that another account must never see.
PRIVATE = "PRIVATEA"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Production's schema: errors masked, no introspection, no field suggestions; kept
    answers on, so that they are compared too."""
    return {"env": "production", "answer_cache": True}


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer at the same instant, still noted as read (schema/fast/answer_cache.py)."""
    real_now = clock.now

    def now() -> datetime:
        real_now()  # marks the answer as depending on the time
        return NOW

    monkeypatch.setattr(clock, "now", now)


@dataclass
class Seeded:
    tokens: dict[str, str | None]
    ids: list[str]
    serials: list[str]


async def seed(gql: GraphQLClient) -> Seeded:
    """Two agents' accounts: listings, lockboxes, grants in every status, contractors,
    messages read and unread, access events of every method."""
    owner = await make_agent(
        email=f"{PRIVATE.lower()}@example.com", last_name=f"Owner{PRIVATE}", key_id="100000777"
    )
    other = await make_agent(last_name="Other")
    cleaner = await make_contractor(company="Sparkle")
    painter = await make_contractor(first_name="Pat", company=None)
    ids = [to_global_id("Agent", owner.id), to_global_id("Agent", other.id)]
    ids += [to_global_id("Contractor", c.id) for c in (cleaner, painter)]
    serials: list[str] = []
    hour = 3600
    # (starts in, hours, revoked): future, active, ended, revoked; one recurring.
    shapes = [(2 * hour, 2, False), (-hour, 3, False), (-30 * hour, 1, False), (-hour, 5, True)]
    for n in range(3):
        listing = await make_listing(owner, mls_number=f"MLS-{PRIVATE}-{n}")
        lockbox = await make_lockbox(
            owner, listing=listing, serial_number=f"SL-{PRIVATE}-{n}", ble=n != 1
        )
        ids += [to_global_id("Listing", listing.id), to_global_id("Lockbox", lockbox.id)]
        serials.append(lockbox.serial_number)
        for index, (starts_in, hours, revoked) in enumerate(shapes):
            grantee = (cleaner, painter, None)[(n + index) % 3]
            grant = await make_grant(
                owner,
                listing,
                lockbox,
                grantee,
                starts_in=starts_in,
                hours=hours,
                revoked_at=NOW - timedelta(minutes=5) if revoked else None,
                grantee_email=None if grantee else f"invitee{n}{PRIVATE.lower()}@example.com",
                **({"rec_weekdays": "1,3", "rec_start": "09:00", "rec_end": "12:00"} if n else {}),
            )
            ids.append(to_global_id("Grant", grant.id))
            for account, kind in (
                (owner, MessageKind.ACCESS_GRANTED),
                (grantee, MessageKind.ACCESS_USED),
            ):
                if account is None:
                    continue
                message = await Message.create(
                    account=account,
                    kind=kind,
                    title=f"Grant {grant.id}",
                    body=f"For {listing.mls_number}",
                    grant=grant,
                    read_at=NOW if index % 2 else None,
                )
                ids.append(to_global_id("Message", message.id))
            event = await AccessEvent.create(
                lockbox=lockbox,
                listing=listing,
                grant=grant,
                actor=grantee or owner,
                actor_name="Someone",
                method=list(AccessMethod)[index % len(AccessMethod)],
                outcome=list(AccessOutcome)[(n + index) % len(AccessOutcome)],
                occurred_at=NOW - timedelta(hours=index + n),
            )
            ids.append(to_global_id("AccessEvent", event.id))
    spare = await make_lockbox(owner, serial_number=f"SL-{PRIVATE}-SPARE")
    unassigned = await make_lockbox(None, serial_number="SL-FREE-1")
    theirs = await make_listing(other, mls_number="MLS-OTHER-1")
    their_box = await make_lockbox(other, listing=theirs, serial_number="SL-OTHER-1")
    their_grant = await make_grant(other, theirs, their_box, cleaner, starts_in=-60)
    ids += [to_global_id("Lockbox", spare.id), to_global_id("Lockbox", unassigned.id)]
    ids += [to_global_id("Listing", theirs.id), to_global_id("Grant", their_grant.id)]
    serials += [spare.serial_number, unassigned.serial_number, their_box.serial_number]
    tokens: dict[str, str | None] = {"anonymous": None}
    for name, account in (("agent", owner), ("contractor", cleaner), ("other_agent", other)):
        tokens[name] = await gql.sign_in(account.email or "")
    ids += [to_global_id(kind, n) for kind in ("Device", "Region", "Agent") for n in (1, 999)]
    return Seeded(tokens, ids, serials)


def documents(seeded: Seeded, count: int) -> list[str]:
    """`count` query documents, the same ones on every run (derandomized)."""
    moments = [NOW + timedelta(days=d) for d in (-40, -2, -1, 0, 1, 30)]
    custom = {
        "ID": st.one_of(st.sampled_from(seeded.ids), st.text(max_size=12)).map(nodes.String),
        "String": st.one_of(st.sampled_from(seeded.serials), st.text(max_size=20)).map(
            nodes.String
        ),
        "Int": st.one_of(st.integers(-1, 6), st.integers(-(2**31), 2**31 - 1)).map(nodes.Int),
        "DateTime": st.one_of(
            st.sampled_from([m.isoformat() for m in moments]), st.just("not a time")
        ).map(nodes.String),
        "Date": st.sampled_from([m.date().isoformat() for m in moments]).map(nodes.String),
    }
    schema = graphql.build_schema(export_sdl())
    assert schema.query_type is not None
    roots = list(schema.query_type.fields)
    drawn: list[str] = []
    # Root field by root field: each gets its share (`me` and `regions` too, not only the
    # fields with arguments that most draws would start with).
    for n, root in enumerate(roots):
        share = count // len(roots) + (n < count % len(roots))

        @settings(
            max_examples=share,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(queries(schema, fields=[root], custom_scalars=custom))
        def collect(document: str) -> None:
            drawn.append(document)

        collect()
    return drawn


@pytest.fixture
def fast_paths_off(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Any]:
    """A context in which the request runs Strawberry's whole pipeline and graphql-core's own
    executor: no plan, no SQL page, no admitted document, no kept answer."""
    schema = app.state.graphql.schema
    kept = app.state.answers

    class Off:
        def __enter__(self) -> None:
            self.saved = (schema.admitted, kept.versions)
            monkeypatch.setattr(CompiledExecutor, "enabled", False)
            schema.admitted, kept.versions = None, None

        def __exit__(self, *_: object) -> None:
            monkeypatch.setattr(CompiledExecutor, "enabled", True)
            schema.admitted, kept.versions = self.saved

    return Off


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pages the database answered as one statement (schema/fast/page_sql.py)."""
    ran: list[str] = []
    original = page_sql._run

    async def counted(sql: str, values: list[Any]) -> Any:
        ran.append(sql)
        return await original(sql, values)

    monkeypatch.setattr(page_sql, "_run", counted)
    return ran


async def ask(http: httpx.AsyncClient, query: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post("/graphql", json={"query": query}, headers=headers)
    return response.status_code, response.json()


def comparable(answer: tuple[int, Any]) -> tuple[int, Any, list[tuple[str, str, str]]]:
    """Status, data, and the errors as (path, message, code), in no particular order: the
    API does not promise the order of errors."""
    status, body = answer
    errors = [
        (
            json.dumps(error.get("path")),
            error.get("message"),
            str((error.get("extensions") or {}).get("code")),
        )
        for error in body.get("errors") or []
    ]
    return status, body.get("data"), sorted(errors)


CALLERS = ["anonymous", "agent", "contractor", "other_agent"]

# Pages the fast paths answer in one SQL statement, asked besides whatever the draw holds (a
# draw is the same on every run, but another schema draws other documents).
PAGES = [
    "{ me { messages(first: 3) { totalCount pageInfo { hasNextPage endCursor } "
    "edges { cursor node { id kind title readAt } } } } }",
    "{ me { ... on Contractor { grants(first: 3) { edges { cursor node { id status "
    "startsAt endsAt } } } } } }",
    "{ me { ... on Agent { listings(first: 2) { edges { node { id status "
    "address { line1 city } } } } } } }",
]


@pytest.mark.parametrize("caller", CALLERS)
async def test_generated_queries_answer_the_same_with_and_without_fast_paths(
    caller: str,
    gql: GraphQLClient,
    http: httpx.AsyncClient,
    app: Starlette,
    fast_paths_off: Callable[[], Any],
    statements: list[str],
) -> None:
    # given the seeded accounts and a caller signed in as one of them (or no one)
    seeded = await seed(gql)
    token = seeded.tokens[caller]
    generated = [*documents(seeded, EXAMPLES), *PAGES]
    kept = app.state.answers
    hits_before = kept.hits
    kinds: set[str] = set()
    for query in generated:
        # when the document is asked without the fast paths, then three times with them
        with fast_paths_off():
            plain = comparable(await ask(http, query, token))
        fast = [await ask(http, query, token) for _ in range(3)]
        # then every answer is graphql-core's
        for attempt, answer in enumerate(fast):
            assert comparable(answer) == plain, f"answer {attempt + 1} differs for:\n{query}"
        kinds.add("error" if plain[2] else "data")
        if caller == "other_agent":
            # and another agent sees nothing of the first one's account
            assert PRIVATE not in json.dumps(fast[0][1]), query
    # then the run covered answers with and without errors, and kept answers were used
    assert kinds == {"data", "error"}
    assert kept.hits > hits_before
    if caller in {"agent", "contractor"}:
        # and some pages were answered by one statement
        assert statements


def test_generation_is_reproducible() -> None:
    # given the same seeded values twice
    seeded = Seeded({}, ["QWdlbnQ6MQ=="], ["SL-1"])
    # when documents are drawn twice
    first, second = documents(seeded, 20), documents(seeded, 20)
    # then they are the same documents, and all of them are queries
    assert first == second
    assert all(graphql.parse(q).definitions[0].operation.value == "query" for q in first)  # type: ignore[attr-defined]
