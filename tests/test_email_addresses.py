"""An email address keybin takes is one mailbox, stored as mail is sent to it: never a list,
a group or a display name that would carry keybin's mail (codes, invitations) elsewhere."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from core import clock
from core.ids import to_global_id
from importers.members import import_members
from importers.report import ImportReport
from models.accounts import Account
from tests.factories import (
    PASSWORD,
    GraphQLClient,
    make_agent,
    make_contractor,
    make_listing,
    make_lockbox,
)
from tests.rows import table_counts
from tests.smtp import SmtpServer

UPDATE_EMAIL = """
mutation($email: String!, $password: String!) {
  updateEmail(input: {newEmail: $email, password: $password}) {
    account { email }
    userErrors { code field message }
  }
}
"""
BEGIN_SIGNUP = """
mutation($input: BeginContractorSignupInput!) {
  beginContractorSignup(input: $input) { verificationId userErrors { code field message } }
}
"""
GRANT_ACCESS = """
mutation($input: GrantAccessInput!) {
  grantAccess(input: $input) { grant { id } invitationSent userErrors { code field message } }
}
"""
# Each reaches a mailbox other than the one it seems to name: a list, a display name around
# another address, a group, a bracket the mail library reads as nothing, a comment.
MANY_MAILBOXES = [
    "postmaster,attacker@evil.example",
    "a<b@example.com",
    "g:victim@corp.example;",
    "[casey@example.net",
    "casey(comment)@example.net",
    '"a b"@example.com',
    "a;b@example.com",
    "casey@example.net>",
    "casey@[127.0.0.1]",
]


@pytest.mark.parametrize("address", MANY_MAILBOXES)
async def test_update_email_refuses_what_is_not_one_mailbox(
    gql: GraphQLClient, address: str
) -> None:
    # given
    casey = await make_contractor(email="casey@example.com")
    token = await gql.sign_in("casey@example.com")
    before = await table_counts()
    # when
    data = await gql(UPDATE_EMAIL, {"email": address, "password": PASSWORD}, token=token)
    # then
    [error] = data["updateEmail"]["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID_INPUT", ["input", "newEmail"])
    assert (await Account.get(id=casey.id)).email == "casey@example.com"
    assert await table_counts() == before


@pytest.mark.parametrize("address", MANY_MAILBOXES)
async def test_signup_refuses_what_is_not_one_mailbox(gql: GraphQLClient, address: str) -> None:
    # given
    before = await table_counts()
    # when
    data = await gql(BEGIN_SIGNUP, {"input": {"email": address, "phone": "5135550111"}})
    # then
    [error] = data["beginContractorSignup"]["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID_INPUT", ["input", "email"])
    assert await table_counts() == before


async def test_a_grant_to_an_agents_mailbox_dressed_as_a_group_is_refused(
    gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given an agent whose mailbox is alex.morgan@example.com, and another with a listing
    await make_agent(email="alex.morgan@example.com")
    agent = await make_agent()
    listing = await make_listing(agent)
    await make_lockbox(agent, listing=listing)
    token = await gql.sign_in(agent.email or "")
    before = await table_counts()
    starts = clock.now() + timedelta(hours=1)
    for address, code in [
        ("g:alex.morgan@example.com;", "INVALID_INPUT"),
        ("Alex Morgan <alex.morgan@example.com>", "INVALID_INPUT"),
        (" Alex.Morgan@Example.COM ", "EMAIL_BELONGS_TO_AGENT"),
    ]:
        # when
        data = await gql(
            GRANT_ACCESS,
            {
                "input": {
                    "listingId": to_global_id("Listing", listing.id),
                    "granteeEmail": address,
                    "startsAt": starts.isoformat(),
                    "endsAt": (starts + timedelta(hours=2)).isoformat(),
                    "pin": "1234",
                }
            },
            token=token,
        )
        # then no invitation goes out, to the agent or anyone
        payload = data["grantAccess"]
        assert payload["grant"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            (code, ["input", "granteeEmail"])
        ]
    assert await table_counts() == before
    assert smtp.recipients == []


async def test_an_address_is_stored_as_mail_goes_to_it(
    gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given
    casey = await make_contractor(email="casey@example.com")
    token = await gql.sign_in("casey@example.com")
    # when the new address has capitals and an internationalized domain
    data = await gql(
        UPDATE_EMAIL, {"email": " Casey@Exämple.COM ", "password": PASSWORD}, token=token
    )
    # then it is kept lower-cased with the domain in ASCII, and the confirmation goes there
    assert data["updateEmail"]["userErrors"] == []
    assert (await Account.get(id=casey.id)).email == "casey@xn--exmple-cua.com"
    await smtp.wait_for(2)  # the confirmation, and the notice to the old address
    assert sorted(smtp.recipients) == ["casey@example.com", "casey@xn--exmple-cua.com"]


async def test_an_address_mail_relays_may_not_carry_is_refused_with_a_reason(
    gql: GraphQLClient,
) -> None:
    # given
    await make_contractor(email="casey@example.com")
    token = await gql.sign_in("casey@example.com")
    # when the part before the @ is not ASCII (it needs SMTPUTF8, which few relays take)
    data = await gql(UPDATE_EMAIL, {"email": "jöhn@example.com", "password": PASSWORD}, token=token)
    # then
    [error] = data["updateEmail"]["userErrors"]
    assert error["code"] == "INVALID_INPUT"
    assert "ASCII" in error["message"]


async def test_a_roster_email_that_is_not_one_mailbox_is_left_empty(
    orm: None, tmp_path: Path
) -> None:
    # given a roster with a list for an email, and one in capitals
    member = {
        "MemberFirstName": "Pat",
        "MemberLastName": "Lee",
        "MemberStatus": "Active",
        "OriginatingSystemName": "Cincinnati MLS",
    }
    rows = [
        {**member, "MemberMlsId": "A1", "MemberEmail": "postmaster,attacker@evil.example"},
        {**member, "MemberMlsId": "A2", "MemberEmail": "Pat.Lee@Example.com"},
    ]
    path = tmp_path / "members.json"
    path.write_text(json.dumps({"value": rows}))
    # when
    report = await import_members(path, ImportReport())
    # then the agent lands without it, and the report says so
    assert report.created == 2
    assert report.warnings == [
        (0, "MemberEmail 'postmaster,attacker@evil.example' is not an email address: left empty")
    ]
    assert (await Account.get(mls_id="A1")).email is None
    assert (await Account.get(mls_id="A2")).email == "pat.lee@example.com"
