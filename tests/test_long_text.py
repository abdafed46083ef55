"""Every query and mutation, with every text argument longer than any column: each answers
a code the client can act on (a userError, INVALID_INPUT, UNAUTHENTICATED, ...), never an
unexpected error. The schemathesis run (test_fuzz.py) probes at random; this goes through
every field, anonymous, as an agent and as a contractor, every time."""

from __future__ import annotations

import json

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    get_named_type,
    is_leaf_type,
)

from schema.schema import build_schema
from settings import Settings
from tests.factories import GraphQLClient, make_agent, make_contractor, make_listing, make_lockbox

# Longer than every length-limited column (the longest is 255), under the 10,000 limit.
TEXT = "x" * 300
SCALARS = {
    "Int": "1",
    "Float": "1.0",
    "Boolean": "true",
    "DateTime": '"2026-12-01T10:00:00+00:00"',
    "Date": '"2026-12-01"',
}
# Last, so the rest run while the session still stands.
ENDING = ("signOut", "deleteMyAccount")


def literal(input_type: GraphQLInputType) -> str:
    """A value for an argument: long text wherever text goes, every input field given."""
    if isinstance(input_type, GraphQLNonNull):
        return literal(input_type.of_type)
    if isinstance(input_type, GraphQLList):
        return f"[{literal(input_type.of_type)}]"
    if isinstance(input_type, GraphQLEnumType):
        return str(next(iter(input_type.values)))
    if isinstance(input_type, GraphQLInputObjectType):
        fields = ", ".join(f"{n}: {literal(f.type)}" for n, f in input_type.fields.items())
        return f"{{{fields}}}"
    return SCALARS.get(input_type.name, json.dumps(TEXT))


def operations(schema: GraphQLSchema) -> list[tuple[str, str]]:
    roots = (("query", schema.query_type), ("mutation", schema.mutation_type))
    found = []
    for kind, root in roots:
        assert root is not None
        for name, field in root.fields.items():
            args = ", ".join(f"{a}: {literal(arg.type)}" for a, arg in field.args.items())
            call = f"{name}({args})" if args else name
            selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
            found.append((name, f"{kind} {{ {call}{selection} }}"))
    return sorted(found, key=lambda item: item[0] in ENDING)


@pytest.mark.parametrize("who", ["anonymous", "agent", "contractor"])
async def test_no_field_answers_long_text_with_an_unexpected_error(
    gql: GraphQLClient, settings: Settings, who: str
) -> None:
    # given
    agent = await make_agent()
    await make_lockbox(agent, await make_listing(agent))
    contractor = await make_contractor()
    login = {"agent": agent.email, "contractor": contractor.email}.get(who)
    token = await gql.sign_in(login) if login else None
    documents = operations(build_schema(settings)._schema)
    # when
    unexpected = []
    for name, document in documents:
        body = await gql.raw(document, token=token)
        for error in body.get("errors") or []:
            if (error.get("extensions") or {}).get("code") in (None, "INTERNAL"):
                unexpected.append((name, error["message"][:200]))
    # then
    assert len(documents) > 25
    assert unexpected == []
