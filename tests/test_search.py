"""The console's account search: what agents type finds the account, and nothing else does."""

from __future__ import annotations

import httpx
import pytest
from tortoise import Tortoise
from tortoise.transactions import in_transaction

from core import clock
from models import prepared
from models.accounts import Account, Device, SecurityAnswer
from resolvers.support import (
    QUERY_MAX_LENGTH,
    SEARCH_LIMIT,
    _search_condition,
    name_matches,
    normalize_query,
    search_accounts,
)
from tests.factories import make_agent, make_contractor
from tests.sql_count import StatementCounter
from tests.test_console_http import HX, signed_in


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


# What agents type: a phone's last digits, part of an email, a Key ID read off the card.


async def found(text: str) -> set[int]:
    return {account.id for account in (await search_accounts(text)).accounts}


async def test_a_phone_by_its_last_4_or_7_digits(orm: None) -> None:
    # given
    caller = await make_contractor(phone="+15135550142")
    same_last_4 = await make_contractor(phone="+16149870142")
    await make_contractor(phone="+15135550143")
    await make_contractor(phone="+15130142999")  # 0142 inside, not at the end
    # when / then
    assert await found("0142") == {caller.id, same_last_4.id}
    assert await found("555-0142") == {caller.id}
    assert await found("5550142") == {caller.id}
    assert await found("50142") == set()  # neither 4 nor 7 digits, nor a number's start


async def test_a_whole_phone_number_in_any_format(orm: None) -> None:
    # given
    caller = await make_contractor(phone="+15135550142")
    await make_contractor(phone="+15135550143")
    abroad = await make_contractor(phone="+442079460958")
    # when / then
    for typed in ("(513) 555-0142", "+1 513 555 0142", "513.555.0142", "1-513-555-0142"):
        assert await found(typed) == {caller.id}, typed
    assert await found("+44 20 7946 0958") == {abroad.id}


async def test_an_email_by_its_domain_or_any_part(orm: None) -> None:
    # given
    jane = await make_contractor(email="jane.smith@acme-realty.com", first_name="Jane")
    gold = await make_contractor(email="goldsmith@other.net", first_name="Gil")
    await make_contractor(email="bob@example.org", first_name="Bob")
    # when / then
    assert await found("smith") == {jane.id, gold.id}
    assert await found("@acme-realty.com") == {jane.id}
    assert await found("ACME-realty.com") == {jane.id}
    assert await found("other.net") == {gold.id}
    assert await found("sm") == set()  # two letters: the start of a name or email only


# Trigrams of an address and a name no other test account shares (rare letters).
RARE_EMAIL = "qjzxv.wkpy@vvqx.io"
RARE_TRIGRAMS = (b"qjz", b"jzx", b"zxv", b"wkp", b"vvq", b"vqx", b"xqv", b"jkw")


async def index_bytes(table: str) -> bytes:
    statement = f"SELECT block FROM {table}_data"  # noqa: S608 (the tests' own names)
    rows = await prepared.fetch(Tortoise.get_connection("default"), statement, [])
    return b"".join(bytes(row[0]) for row in rows if isinstance(row[0], bytes))


async def test_a_wiped_address_and_name_leave_no_trigram_in_the_indexes(orm: None) -> None:
    if Tortoise.get_connection("default").capabilities.dialect != "sqlite":
        pytest.skip("FTS5 segments are SQLite's (PostgreSQL's GIN entries go with VACUUM)")
    # given an account in both indexes, and beside them an FTS5 table without secure-delete
    # fed the same way, to show the check sees trigrams that stay behind
    connection = Tortoise.get_connection("default")
    await connection.execute_script(
        "CREATE VIRTUAL TABLE plain_fts USING fts5(email, tokenize='trigram')"
    )
    for n in range(20):
        await make_contractor(email=f"someone{n}@example.com")
    rare = await make_contractor(email=RARE_EMAIL, first_name="Xqvz", last_name="Jkwq")
    await connection.execute_query(
        "INSERT INTO plain_fts(rowid, email) VALUES (?, ?)", [rare.id, RARE_EMAIL]
    )
    assert await found("zxv.wkp") == {rare.id}
    stored = await index_bytes("account_email_fts")
    # (a term that shares its first letters with the one before is stored without them)
    seen = [g for g in RARE_TRIGRAMS if g in stored]
    assert len(seen) >= 3, seen
    # when the account is wiped, as deletion does, and the control row deleted
    await Account.filter(id=rare.id).update(email=None, first_name="", last_name="")
    await connection.execute_query("DELETE FROM plain_fts WHERE rowid = ?", [rare.id])
    # then
    assert await found("zxv.wkp") == set()
    kept = await index_bytes("plain_fts")
    assert [g for g in seen if g in kept], "the control keeps them"
    for table in ("account_email_fts", "account_name_fts"):
        stored = await index_bytes(table)
        left = [g for g in seen if g in stored]
        assert left == [], (table, left)


async def test_a_key_id_typed_with_spaces(orm: None) -> None:
    # given
    agent = await make_agent(key_id="123456789")
    await make_agent(key_id="987654321")
    # when / then
    assert await found("123 456 789") == {agent.id}
    assert await found("1234 5678") == {agent.id}
    assert await found("123-456-789") == {agent.id}


async def test_a_deleted_account_is_never_found(orm: None) -> None:
    # given a deleted account whose contact details were (wrongly) left in place
    gone = await make_contractor(
        email="gone.person@example.com",
        first_name="Gina",
        last_name="Gonewell",
        phone="+15135550177",
    )
    await Account.filter(id=gone.id).update(deleted_at=clock.now())
    # when / then
    for typed in ("gone.person", "@example.com", "0177", "5550177", "(513) 555-0177", "gonewell"):
        assert gone.id not in await found(typed), typed


async def test_other_fields_are_not_searched(orm: None) -> None:
    # given an account whose other fields hold words nobody should find it by
    agent = await make_agent(
        mls_id="MLS-ZX9931", association="Quixotic Board", company="Zyxcorp", phone="+15135550100"
    )
    await SecurityAnswer.create(
        account=agent, question="First pet?", answer_hash="h", answer_sealed="Biscuitbone"
    )
    await Device.create(account=agent, device_id="dev-1", name="Yolanda's Pixel")
    # when / then
    for typed in ("ZX9931", "quixotic", "zyxcorp", "biscuitbone", "yolanda", "argon2"):
        assert await found(typed) == set(), typed


async def test_sql_wildcards_in_the_search_are_taken_literally(orm: None) -> None:
    # given
    underscore = await make_contractor(email="a_c@example.com", first_name="U", last_name="Nder")
    await make_contractor(email="abc@example.com", first_name="A", last_name="Bee")
    percent = await make_contractor(email="per%cent@example.com", first_name="P", last_name="Cent")
    backslash = await make_contractor(email="x\\yz@example.com", first_name="B", last_name="Slash")
    # when / then: an attacker's % or _ matches only itself, never everyone
    assert await found("a_c") == {underscore.id}
    assert await found("r%c") == {percent.id}
    assert await found("x\\y") == {backslash.id}
    for typed in ("%%%", "___", "%_%", "\\\\\\", "%@%", "_%_%"):
        assert await found(typed) == set(), typed


async def test_a_very_long_search_is_cut_to_the_searched_length(orm: None) -> None:
    # given
    await make_contractor(first_name="Anna", last_name="Long")
    text = "anna" + "x" * 10_000
    # when
    where, params = _search_condition(text, "sqlite")
    result = await search_accounts(text)
    # then: what reaches the database is at most QUERY_MAX_LENGTH characters (+ wildcards)
    assert normalize_query(text) == text[:QUERY_MAX_LENGTH]
    assert all(len(p) <= QUERY_MAX_LENGTH + 2 for p in params if isinstance(p, str))
    assert where and result.accounts == []


async def test_one_statement_per_search_whatever_matches(orm: None, sql: StatementCounter) -> None:
    # given
    for n in range(SEARCH_LIMIT + 5):
        await make_contractor(email=f"many{n}@example.com", phone=f"+1513777{n:04d}")
    # when / then: phone ending, email part, name, key id: one query each, capped rows
    for typed in ("0007", "many1", "carl", "5137770003", "123 456 789"):
        result = await sql.count(search_accounts(typed))
        assert len(sql.statements) == 1, (typed, sql.statements)
        assert len(result.accounts) <= SEARCH_LIMIT
    assert (await sql.count(search_accounts("@example.com"))).more is True


async def test_a_phone_ending_is_looked_up_on_its_index(orm: None) -> None:
    # given
    await make_contractor(phone="+15135550142")
    connection = Tortoise.get_connection("default")
    dialect = connection.capabilities.dialect
    where, params = _search_condition("0142", dialect)
    statement = f'SELECT "id" FROM "account" WHERE "deleted_at" IS NULL AND ({where})'  # noqa: S608
    # when: the plan PostgreSQL would choose on a table too big for a scan
    async with in_transaction() as transaction:
        if dialect == "postgres":
            await transaction.execute_script("SET LOCAL enable_seqscan = off")
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "
        plan = " ".join(
            str(row[-1]) for row in await prepared.fetch(transaction, explain + statement, params)
        )
    # then
    assert "account_phone_last4" in plan, plan
    assert "SCAN account " not in plan.replace("SCAN account USING", ""), plan


# The console's search page over HTTP: what was searched, what can be, phones as people read them.


async def test_the_empty_state_says_what_was_searched_and_what_can_be(
    http: httpx.AsyncClient,
) -> None:
    # given
    await signed_in(http)
    # when
    page = await http.get("/console/search", params={"q": "<b>zzz</b>-nobody"})
    # then: the search repeated, escaped, and the ways to search named
    assert "No account matches “&lt;b&gt;zzz&lt;/b&gt;-nobody”" in page.text
    assert "<b>zzz" not in page.text
    assert "name, email or part of it, phone (or its last 4 or 7 digits), Key ID" in page.text
    assert 'placeholder="Search by name, email, phone or Key ID"' in page.text
    assert f'maxlength="{QUERY_MAX_LENGTH}"' in page.text
    start = await http.get("/console/search", params={"q": "a"}, headers=HX)
    assert "last 4 or 7 digits" in start.text and "Key ID" in start.text


async def test_a_very_long_search_is_cut_on_the_page_too(http: httpx.AsyncClient) -> None:
    # given
    await signed_in(http)
    # when
    page = await http.get("/console/search", params={"q": "q" * 10_000})
    # then
    assert page.status_code == 200
    assert "“" + "q" * QUERY_MAX_LENGTH + "”" in page.text
    assert "q" * (QUERY_MAX_LENGTH + 1) not in page.text


async def test_phones_are_shown_formatted_in_results_and_on_the_account(
    http: httpx.AsyncClient,
) -> None:
    # given
    await signed_in(http)
    home = await make_contractor(first_name="Hope", last_name="Homer", phone="+15135550142")
    abroad = await make_contractor(first_name="Hope", last_name="Abroad", phone="+442079460958")
    # when
    results = await http.get("/console/search", params={"q": "hope"}, headers=HX)
    home_page = await http.get(f"/console/accounts/{home.id}")
    abroad_page = await http.get(f"/console/accounts/{abroad.id}")
    # then
    assert "(513) 555-0142" in results.text and "+44 20 7946 0958" in results.text
    assert "+15135550142" not in results.text and "+442079460958" not in results.text
    assert "(513) 555-0142" in home_page.text and "+15135550142" not in home_page.text
    assert "+44 20 7946 0958" in abroad_page.text
