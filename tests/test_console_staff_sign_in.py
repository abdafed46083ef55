"""Staff sign-in and the password form over a real server: a code in other scripts' digits is a
wrong code, every guess at a member's password is counted and written to the trail, five are
checked per lock however many arrive at once, and an address that is no member's is answered
and locked out as a member's is."""

from __future__ import annotations

import asyncio
import re

import httpx
import pyotp
import pytest

from core import clock
from models.enums import StaffAction
from models.staff import ConsoleSession, Staff, StaffAudit, UnknownStaffLogin
from tests import test_console_http
from tests.factories import make_staff
from tests.test_console_http import (
    NEW_PASSWORD,
    browser,
    change_password,
    csrf_of,
    log_in,
    signed_in,
    totp_now,
)
from tests.test_lockout_races import Checks

console_url = test_console_http.console_url

LOCKED = "Too many failed attempts: try again in 15 minutes."

ARABIC_INDIC = str.maketrans(
    "0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
)


def login_error(response: httpx.Response) -> str | None:
    match = re.search(r'id="login-error">([^<]*)<', response.text)
    return match.group(1) if match else None


async def failed_sign_ins() -> list[StaffAudit]:
    return await StaffAudit.filter(action=StaffAction.SIGN_IN_FAILED).order_by("id")


# The per-login rate limit (a later wall) is off where a test is about the lockout.
NO_LOGIN_RATE_LIMIT = pytest.mark.parametrize(
    "settings_overrides", [{"rate_limit_per_account_per_minute": 0}]
)


def watch_staff_checks(monkeypatch: pytest.MonkeyPatch, password_hash: str) -> Checks:
    """Counts the passwords checked against the member's own, and tells when five have begun."""
    checks = Checks(password_hash, enough=5)
    monkeypatch.setattr("resolvers.staff.verify_secret_async", checks.verify)
    return checks


async def post_all_at_once(
    http: httpx.AsyncClient, path: str, forms: list[dict[str, str]]
) -> list[httpx.Response]:
    return list(await asyncio.gather(*(http.post(path, data=form) for form in forms)))


async def test_a_code_in_other_digits_is_a_wrong_code_whoever_the_email_names(
    console_url: str,
) -> None:
    # given a member, their right password, and their current code written in Arabic-Indic
    created = await make_staff()
    code = totp_now(created.staff.totp_secret).translate(ARABIC_INDIC)
    async with browser(console_url) as http:
        # when
        member = await log_in(http, created.staff.email, created.password, code)
        nobody = await log_in(http, "nobody@keybin.test", created.password, code)
    # then: the same answer for the member's address as for an unknown one
    assert (member.status_code, nobody.status_code) == (401, 401)
    assert login_error(member) == login_error(nobody) == "Wrong email, password or code."
    # ... counted toward the member's lockout, and both tries are in the trail
    assert (await Staff.get(id=created.staff.id)).failed_logins == 1
    tried, unknown = await failed_sign_ins()
    assert (tried.target_staff_id, tried.detail) == (created.staff.id, "wrong credentials")
    assert unknown.detail == "wrong credentials (unknown address)"


async def test_wrong_current_passwords_on_the_password_form_and_the_lock_are_in_the_trail(
    console_url: str,
) -> None:
    async with browser(console_url) as http:
        # given a signed-in member
        created = await signed_in(http, name="Pat Support")
        member_id = created.staff.id
        # when they (or whoever sits at their console) guess the current password five times
        tries: list[httpx.Response] = [
            await change_password(http, "NotMine42", "Changed42") for _ in range(5)
        ]
    # then: four refusals under the field, the fifth locks and signs out, each one a line
    assert [response.status_code for response in tries] == [422] * 4 + [303]
    lines = await failed_sign_ins()
    assert [line.detail for line in lines] == ["password form: wrong current password"] * 4 + [
        "password form: wrong current password: locked, every session ended"
    ]
    for line in lines:
        assert line.staff_id == member_id  # type: ignore[attr-defined]
        assert line.target_staff_id == member_id
        assert line.staff_label == "Pat Support"
        assert line.client_address == "127.0.0.1"
        assert "NotMine42" not in line.detail
    assert (await Staff.get(id=member_id)).locked_until is not None
    assert not await ConsoleSession.filter(staff_id=member_id).exists()


@NO_LOGIN_RATE_LIMIT
async def test_a_burst_of_sign_ins_checks_five_passwords_and_locks(
    console_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a member, and fourteen wrong passwords with the right code, sent at once
    created = await make_staff()
    member = created.staff
    checks = watch_staff_checks(monkeypatch, member.password_hash)
    async with browser(console_url) as http:
        csrf = csrf_of((await http.get("/console/login")).text)
        code = totp_now(member.totp_secret)

        def form(password: str) -> dict[str, str]:
            return {"email": member.email, "password": password, "code": code, "csrf_token": csrf}

        wrong = [form(f"Wrong{n:03d}x") for n in range(14)]
        burst = asyncio.create_task(post_all_at_once(http, "/console/login", wrong))
        # when the right password and code follow while they are being checked
        await asyncio.wait_for(checks.begun.wait(), 30)
        right = await http.post("/console/login", data=form(created.password))
        refused = await burst
    # then five were checked, and neither the burst nor the right password signed in
    assert checks.count == 5
    assert right.status_code == 401
    assert login_error(right) == "Too many failed attempts: try again in 15 minutes."
    assert {response.status_code for response in refused} == {401}
    assert {login_error(response) for response in refused} == {
        "Wrong email, password or code.",
        "Too many failed attempts: try again in 15 minutes.",
    }
    after = await Staff.get(id=member.id)
    assert after.locked_until is not None and after.last_totp_step == member.last_totp_step
    assert not await ConsoleSession.filter(staff_id=member.id).exists()
    details = [line.detail for line in await failed_sign_ins()]
    assert details.count("wrong credentials") == 4
    assert details.count("locked") == 11
    assert not await StaffAudit.filter(action=StaffAction.SIGNED_IN).exists()


@NO_LOGIN_RATE_LIMIT
async def test_a_burst_on_the_password_form_checks_five_and_changes_nothing(
    console_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with browser(console_url) as http:
        # given an open console, and fourteen guesses at its password sent at once
        created = await signed_in(http)
        member = await Staff.get(id=created.staff.id)
        checks = watch_staff_checks(monkeypatch, member.password_hash)
        csrf = csrf_of((await http.get("/console/password")).text)

        def form(current: str) -> dict[str, str]:
            return {
                "current": current,
                "password": "Changed42",
                "confirmation": "Changed42",
                "csrf_token": csrf,
            }

        wrong = [form(f"Guess{n:03d}x") for n in range(14)]
        burst = asyncio.create_task(post_all_at_once(http, "/console/password", wrong))
        # when the right password follows while they are being checked
        await asyncio.wait_for(checks.begun.wait(), 30)
        right = await http.post("/console/password", data=form(NEW_PASSWORD))
        refused = await burst
    # then five were checked, the password is as it was, and the member locked and signed out
    assert checks.count == 5
    assert right.status_code == 303 and right.headers["location"] == "/console/login"
    assert {response.status_code for response in refused} <= {422, 303}
    after = await Staff.get(id=member.id)
    assert after.password_hash == member.password_hash
    assert after.locked_until is not None
    assert not await ConsoleSession.filter(staff_id=member.id).exists()
    details = [line.detail for line in await failed_sign_ins()]
    assert details.count("password form: wrong current password") == 4
    assert details.count("password form: wrong current password: locked, every session ended") == 1


async def five_wrong_then_the_right_one(
    http: httpx.AsyncClient, email: str, password: str, code: str
) -> list[str | None]:
    """The answers to five wrong passwords, then to the right one (for a member)."""
    answers = [login_error(await log_in(http, email, "Wrong123", code)) for _ in range(5)]
    answers.append(login_error(await log_in(http, email, password, code)))
    return answers


async def test_an_address_that_is_no_members_is_locked_out_as_a_members_is(
    console_url: str,
) -> None:
    # given a member, an address that is no member's, and a member who signs in through the
    # company (no console password)
    created = await make_staff(email="member@keybin.test")
    provider_only = await Staff.create(
        email="provider.only@keybin.test",
        name="Pat Provider",
        role="SUPPORT",
        password_hash="",
        totp_secret=pyotp.random_base32(),
        must_change_password=False,
    )
    code = totp_now(created.staff.totp_secret)
    async with browser(console_url) as http:
        # when each is tried five times with a wrong password, then with the member's
        right = created.password
        member = await five_wrong_then_the_right_one(http, "member@keybin.test", right, code)
        nobody = await five_wrong_then_the_right_one(http, "nobody@keybin.test", right, code)
        provider = await five_wrong_then_the_right_one(http, provider_only.email, right, code)
        # ... the address typed otherwise (the member's would be the same lock)
        retyped = login_error(await log_in(http, " NOBODY@keybin.test ", "Wrong123", code))
        # then the three are answered alike: four wrong, then locked
        bad, locked = "Wrong email, password or code.", LOCKED
        assert member == nobody == provider == [bad] * 4 + [locked, locked]
        assert retyped == locked
        # and alike again once the lock is over
        clock.travel(15 * 60 + 1)
        again = [
            login_error(await log_in(http, email, "Wrong123", "000000"))
            for email in ("member@keybin.test", "nobody@keybin.test", provider_only.email)
        ]
        assert again == [bad] * 3
    # The counts never hold the addresses typed.
    keys = [row.key for row in await UnknownStaffLogin.all()]
    assert len(keys) == 2
    assert not [key for key in keys if "nobody" in key or "provider" in key]
    lines = [line.detail for line in await failed_sign_ins()]
    assert lines.count("locked (unknown address)") == 3


async def test_counts_of_addresses_whose_lock_ended_long_ago_are_forgotten(
    console_url: str,
) -> None:
    async with browser(console_url) as http:
        # given an address that is no member's, locked out
        for _ in range(5):
            await log_in(http, "gone@keybin.test", "Wrong123", "000000")
        assert await UnknownStaffLogin.all().count() == 1
        # when, long after its lock ended, another address is tried
        clock.travel(15 * 60 + 3600 + 1)
        await log_in(http, "other@keybin.test", "Wrong123", "000000")
        # then only the new address's count is kept, and the first starts afresh
        assert await UnknownStaffLogin.all().count() == 1
        answers = [
            login_error(await log_in(http, "gone@keybin.test", "Wrong123", "000000"))
            for _ in range(5)
        ]
    assert answers == ["Wrong email, password or code."] * 4 + [LOCKED]
