"""Staff sign-in and the password form over a real server: a code in other scripts' digits is a
wrong code, and every guess at a member's password is counted and written to the trail."""

from __future__ import annotations

import re

import httpx

from models.enums import StaffAction
from models.staff import ConsoleSession, Staff, StaffAudit
from tests import test_console_http
from tests.factories import make_staff
from tests.test_console_http import browser, change_password, log_in, signed_in, totp_now

console_url = test_console_http.console_url

ARABIC_INDIC = str.maketrans(
    "0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
)


def login_error(response: httpx.Response) -> str | None:
    match = re.search(r'id="login-error">([^<]*)<', response.text)
    return match.group(1) if match else None


async def failed_sign_ins() -> list[StaffAudit]:
    return await StaffAudit.filter(action=StaffAction.SIGN_IN_FAILED).order_by("id")


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
