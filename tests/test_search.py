"""The console's account search: the trigram name index stays in step with the accounts."""

from __future__ import annotations

from models.accounts import Account
from resolvers.support import name_matches, search_accounts
from tests.factories import make_agent, make_contractor


async def test_partial_name_words_any_case_through_the_index(orm: None) -> None:
    # given
    carla = await make_contractor(first_name="Carla", last_name="Montgomery")
    await make_contractor(first_name="Carl", last_name="Smith")
    agent = await make_agent(first_name="Gomez", last_name="Carlsson")
    # when
    ids = await name_matches("GOMERY car")
    found = await search_accounts("gomery car")
    # then
    assert ids == [carla.id]
    assert [a.id for a in found.accounts] == [carla.id]
    assert {a.id for a in (await search_accounts("carl")).accounts} >= {carla.id, agent.id}


async def test_renames_and_deletions_follow_into_the_index(orm: None) -> None:
    contractor = await make_contractor(first_name="Dana", last_name="Whitfield")
    assert await name_matches("whitf") == [contractor.id]
    await Account.filter(id=contractor.id).update(last_name="Harrow")
    assert await name_matches("whitf") == []
    assert await name_matches("harrow") == [contractor.id]
    await Account.filter(id=contractor.id).update(first_name="", last_name="", deleted_at=None)
    assert await name_matches("harrow") == []


async def test_short_words_fall_back_to_a_scan(orm: None) -> None:
    contractor = await make_contractor(first_name="Al", last_name="Bo")
    assert await name_matches("al bo") is None
    assert [a.id for a in (await search_accounts("al bo")).accounts] == [contractor.id]


async def test_email_and_phone_are_not_name_searches(orm: None) -> None:
    contractor = await make_contractor(email="pat.lee@example.com", phone="+15135550142")
    assert await name_matches("pat.lee@example.com") is None
    assert await name_matches("(513) 555-0142") is None
    assert [a.id for a in (await search_accounts("(513) 555-0142")).accounts] == [contractor.id]
    assert [a.id for a in (await search_accounts("pat.lee@")).accounts] == [contractor.id]
