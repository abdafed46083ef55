"""Every console page that shows an account's personal data is a view in the staff audit trail,
whichever route draws it; a section swapped into a page already shown is not a view again."""

from __future__ import annotations

import httpx
import pytest

from core import clock
from models.enums import StaffAction
from models.staff import StaffAudit
from resolvers.audit import REPEAT_WINDOW
from tests import test_console_http
from tests.factories import make_contractor
from tests.test_console_http import HX, browser, signed_in

console_url = test_console_http.console_url

EMAIL = "casey.cleaner@example.com"


async def views_of(account_id: int) -> int:
    return await StaffAudit.filter(action=StaffAction.ACCOUNT_VIEWED, account_id=account_id).count()


@pytest.mark.parametrize("page", ["", "/email/edit", "/delete"])
async def test_each_whole_page_showing_a_contractor_is_a_view(console_url: str, page: str) -> None:
    async with browser(console_url) as http:
        # given
        created = await signed_in(http)
        contractor = await make_contractor(email=EMAIL)
        # when the page is opened as a link, a bookmark or a new tab would open it
        shown = await http.get(f"/console/accounts/{contractor.id}{page}")
    # then it shows who the account is, and the trail says who looked
    assert shown.status_code == 200 and EMAIL in shown.text
    [view] = await StaffAudit.filter(action=StaffAction.ACCOUNT_VIEWED)
    assert view.account_id == contractor.id
    assert view.staff_id == created.staff.id  # type: ignore[attr-defined]
    assert view.client_address == "127.0.0.1"


async def test_a_refused_deletion_and_a_refused_email_shown_as_pages_are_views(
    console_url: str,
) -> None:
    async with browser(console_url) as http:
        # given
        await signed_in(http)
        contractor = await make_contractor(email=EMAIL)
        csrf = await test_console_http.token(http)
        base = f"/console/accounts/{contractor.id}"
        # when two forms come back as whole pages, a minute apart (a repeat within one is
        # the same look)
        unconfirmed = await http.post(f"{base}/delete", data={"csrf_token": csrf})
        clock.travel(REPEAT_WINDOW.total_seconds() + 1)
        bad_email = await http.post(f"{base}/email", data={"csrf_token": csrf, "email": "nope"})
    # then
    assert unconfirmed.status_code == bad_email.status_code == 422
    assert EMAIL in unconfirmed.text and contractor.last_name in bad_email.text
    assert await views_of(contractor.id) == 2


async def test_the_email_editor_swapped_into_a_shown_page_is_no_new_view(
    console_url: str,
) -> None:
    async with browser(console_url) as http:
        # given a page already shown (one view), a minute ago
        await signed_in(http)
        contractor = await make_contractor(email=EMAIL)
        assert (await http.get(f"/console/accounts/{contractor.id}")).status_code == 200
        clock.travel(REPEAT_WINDOW.total_seconds() + 1)
        # when the email row is opened for editing in it
        editor = await http.get(f"/console/accounts/{contractor.id}/email/edit", headers=HX)
    # then
    assert editor.status_code == 200 and "<html" not in editor.text
    assert await views_of(contractor.id) == 1


async def test_sections_refreshed_in_place_and_redirects_are_no_views(console_url: str) -> None:
    async with browser(console_url) as http:
        # given
        await signed_in(http)
        contractor = await make_contractor(email=EMAIL)
        base = f"/console/accounts/{contractor.id}"
        # when
        responses: list[httpx.Response] = [
            await http.get(f"{base}/events", headers=HX),
            await http.get(f"{base}/email", headers=HX),
            await http.get(f"{base}/events"),  # to the account page: a view once followed
        ]
    # then
    assert [response.status_code for response in responses] == [200, 200, 303]
    assert await views_of(contractor.id) == 0
