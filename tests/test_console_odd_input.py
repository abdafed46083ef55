"""The console over a real server given odd values in its addresses: digits of other scripts,
ids past what the columns hold, the last date there is, NUL and characters next to the
surrogates. Each is answered as any bad or unknown value is (a 404, a message, a filter left
out), never with a 500 or a connection dropped halfway."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from console.params import MAX_ID, at_most, number
from models.enums import StaffAction
from models.staff import Staff, StaffAudit
from tests import test_console_http
from tests.factories import make_agent, make_contractor, make_staff
from tests.test_console_http import HX, browser, log_in, signed_in

console_url = test_console_http.console_url

HUGE = "99999999999999999999"  # past 64 bits
PAST_INT4 = "3000000000"  # fits SQLite's integers, not PostgreSQL's 32-bit id columns
# Characters that have broken searches: other scripts' digits, the last character before the
# surrogates, the last there is, zero-width and format characters, controls, ligatures.
ODD = [
    *"abc@.+-()/ \"'*%_\\^:12 90",
    "\u0130",
    "\u00df",
    "\ufb00",
    "\u0301",
    "\U0010ffff",
    "\ud7ff",
    "\ue000",
    "\uffff",
    "\u200b",
    "\u0661",
    "\uff11",
    "\u00b2",
    "\x00",
    "\x01",
    "\x7f",
    "\u2028",
    "\ufeff",
]


@pytest.fixture
async def sysadmin(console_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(console_url) as http:
        await signed_in(http, "SYSADMIN", "Ada Admin")
        yield http


def test_an_id_is_read_in_ascii_digits_within_the_columns_range() -> None:
    assert [number(text) for text in ("7", " 12 ", "0", str(MAX_ID))] == [7, 12, 0, MAX_ID]
    for odd in ("\u00b2", "\u0661", "\uff11", "-1", "+1", "1.0", "", str(MAX_ID + 1), HUGE):
        assert number(odd) is None, odd
    pattern = re.compile(at_most(MAX_ID) + "$")
    for value in (0, 9, 999_999_999, 1_999_999_999, 2_147_483_639, MAX_ID):
        assert pattern.match(str(value)), value
    for value in (MAX_ID + 1, 2_147_483_650, 2_200_000_000, 9_999_999_999, 10**10):
        assert not pattern.match(str(value)), value


async def test_digits_of_other_scripts_in_positions_and_filters_are_left_out(
    sysadmin: httpx.AsyncClient,
) -> None:
    # given
    contractor = await make_contractor(email="odd.digits@example.com")
    base = f"/console/accounts/{contractor.id}"
    # when
    page = await sysadmin.get(f"{base}?events_before=%C2%B2")
    log = await sysadmin.get(f"{base}/events?before=%C2%B2", headers=HX)
    audits = {
        name: await sysadmin.get("/console/audit", params={name: "\u00b2"})
        for name in ("account", "staff", "before", "after")
    }
    arabic = await sysadmin.get("/console/audit", params={"account": "\u0663"})
    # then: the page as with no position, and the bad filter named and left out
    assert page.status_code == 200 and "odd.digits@example.com" in page.text
    assert log.status_code == 200
    assert [response.status_code for response in audits.values()] == [200] * 4
    assert "is not an account number: that filter is left out" in audits["account"].text
    assert "is not a staff member: that filter is left out" in audits["staff"].text
    assert arabic.status_code == 200 and "is not an account number" in arabic.text


async def test_ids_past_the_columns_range_name_nothing(
    console_url: str, sysadmin: httpx.AsyncClient
) -> None:
    # given
    member = await make_staff(name="Other Member")
    csrf = test_console_http.csrf_of((await sysadmin.get("/console/")).text)
    # when
    pages = [
        f"/console/accounts/{too_big}{tail}"
        for too_big in (HUGE, PAST_INT4)
        for tail in ("", "/events", "/email/edit", "/delete")
    ] + [f"/console/staff/{too_big}/disable" for too_big in (HUGE, PAST_INT4)]
    shown = [await sysadmin.get(page) for page in pages]
    posted = [
        await sysadmin.post(path, data={"csrf_token": csrf, "confirm": "yes"})
        for path in (
            f"/console/staff/{HUGE}/disable",
            f"/console/staff/{PAST_INT4}/enable",
            f"/console/accounts/{PAST_INT4}/devices/{HUGE}/remove",
        )
    ]
    filtered = await sysadmin.get("/console/audit", params={"account": PAST_INT4})
    # then
    assert [response.status_code for response in shown + posted] == [404] * (len(pages) + 3)
    assert filtered.status_code == 200 and "is not an account number" in filtered.text
    assert (await Staff.get(id=member.staff.id)).disabled is False
    # ... while an id in range still reaches its page.
    agent = await make_agent()
    assert (await sysadmin.get(f"/console/accounts/{agent.id}")).status_code == 200


async def test_the_last_date_there_is_bounds_nothing_and_the_export_completes(
    sysadmin: httpx.AsyncClient,
) -> None:
    # when
    page = await sysadmin.get("/console/audit", params={"to": "9999-12-31"})
    first = await sysadmin.get("/console/audit", params={"from": "0001-01-01"})
    export = await sysadmin.get("/console/audit.csv", params={"to": "9999-12-31"})
    # then: every line is there, the export's own included, and the CSV is whole
    assert page.status_code == 200 and first.status_code == 200
    assert "SIGNED_IN" in page.text
    assert export.status_code == 200
    lines = export.text.splitlines()
    assert lines[0].startswith("id,when_utc,") and any(",SIGNED_IN," in line for line in lines)
    [exported] = await StaffAudit.filter(action=StaffAction.AUDIT_EXPORTED)
    assert exported.detail == "to 9999-12-31"


async def test_a_nul_in_the_login_email_is_a_wrong_login(console_url: str) -> None:
    # given
    created = await make_staff()
    async with browser(console_url) as http:
        # when
        response = await log_in(http, created.staff.email + "\x00", created.password, "123456")
    # then
    assert response.status_code == 401 and "Wrong email, password or code." in response.text
    [line] = await StaffAudit.filter(action=StaffAction.SIGN_IN_FAILED)
    assert line.staff_label == created.staff.email + "\ufffd" and line.target_staff_id is None


async def test_searches_over_odd_characters_all_answer(
    console_url: str, sysadmin: httpx.AsyncClient
) -> None:
    # given accounts whose names, emails and phones the odd searches come near
    await make_contractor(email="ab@example.com", first_name="Abe", last_name="\u00dfmith")
    await make_agent(email="abc.d@example.com", first_name="\u0130lse", last_name="Ab")
    picked = random.Random(1)  # the same searches on every run
    searches = [
        "ab\ud7ff",
        "ab\U0010ffff",
        "ab\uffff",
        "\ud7ff\ud7ff",
        "\u0661\u0662\u0663\u0664",
        "\uff11\uff12\uff13",
        "1\u00b2\u00b3",
        "abc\x00def",
        *("".join(picked.choices(ODD, k=picked.randint(2, 12))) for _ in range(200)),
    ]
    # when
    answers = [
        (text, await sysadmin.get("/console/search", params={"q": text}, headers=HX))
        for text in searches
    ]
    # then
    failed = [(text, response.status_code) for text, response in answers if response.is_error]
    assert failed == []
