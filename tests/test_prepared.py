"""Statements written once give the same model instances the query builder would."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise
from tortoise.models import Model

from core.security import token_digest
from models import prepared
from models.accounts import Account, Session
from models.enums import MessageKind
from models.messages import Message
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
)


def fields(instance: Model) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in instance._meta.fields_db_projection}


async def test_token_lookup_matches_select_related(gql: GraphQLClient) -> None:
    # given
    contractor = await make_contractor(first_name="Prepared")
    token = await gql.sign_in(contractor.email or "")
    # when
    ours = await prepared.get_with_related(Session, "account", "token_hash", token_digest(token))
    theirs = await Session.get(token_hash=token_digest(token)).select_related("account")
    # then
    assert ours is not None
    assert fields(ours) == fields(theirs)
    assert fields(ours.account) == fields(theirs.account)
    assert ours.account.first_name == "Prepared"
    assert not ours._partial and not ours.account._partial
    assert await prepared.get_with_related(Session, "account", "token_hash", "nope") is None


async def test_by_ids_and_select_match_filters(gql: GraphQLClient) -> None:
    # given
    agent = await make_agent()
    contractor = await make_contractor()
    for n in range(5):
        await Message.create(
            account=contractor, kind=MessageKind.ACCESS_GRANTED, title=f"t{n}", body=f"b{n}"
        )
    await Message.create(account=agent, kind=MessageKind.ACCESS_GRANTED, title="other", body="x")
    ids = [agent.id, contractor.id, 999_999]
    # when
    by_id = await prepared.by_ids(Account, ids)
    page = await prepared.select(Message, '"account_id" = ?', [contractor.id], '"id" DESC', 3)
    # then
    expected = await Account.filter(id__in=ids).order_by("id")
    assert sorted(map(fields, by_id), key=lambda f: f["id"]) == list(map(fields, expected))
    newest = await Message.filter(account_id=contractor.id).order_by("-id").limit(3)
    assert list(map(fields, page)) == list(map(fields, newest))
    assert [m.title for m in page] == ["t4", "t3", "t2"]
    assert await prepared.by_ids(Account, []) == []


async def test_rows_become_the_instances_tortoise_makes_for_every_model(
    gql: GraphQLClient,
) -> None:
    # given: rows in the tables the hot reads load (and whatever else they hold)
    agent = await make_agent()
    contractor = await make_contractor()
    await gql.sign_in(contractor.email or "")
    listing = await make_listing(agent)
    lockbox = await make_lockbox(agent, listing=listing)
    await make_grant(agent, listing, lockbox, grantee=contractor)
    await Message.create(account=contractor, kind=MessageKind.ACCESS_GRANTED, title="t", body="")
    compared = set()
    # when
    for model in Tortoise.apps["models"].values():
        connection = Tortoise.get_connection("default")
        sql = f'SELECT {prepared._listed(model)} FROM "{model._meta.db_table}"'  # noqa: S608
        for row in await prepared.fetch(connection, sql, []):
            ours = prepared._instance(model, row)
            theirs = model._init_from_db(**dict(zip(prepared._columns(model), row, strict=True)))
            # then: the same attributes, flags included (Tortoise's own loader, by column)
            assert ours.__dict__ == theirs.__dict__, model.__name__
            compared.add(model.__name__)
    assert {"Account", "Session", "Device", "Message", "Listing", "Lockbox", "Grant"} <= compared
