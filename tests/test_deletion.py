"""Deleting an account: personal data gone at once, down to the bytes of the database file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tortoise import Tortoise
from tortoise.transactions import in_transaction

from ble.revocation import RevocationsVerdict, peek_revocations
from core import clock
from core.errors import DomainError
from core.ids import to_global_id
from core.security import new_token, token_digest
from models.access import AccessEvent
from models.accounts import (
    Account,
    AccountEvent,
    Device,
    EmailConfirmation,
    Invitation,
    PushToken,
)
from models.enums import (
    AccessMethod,
    AccessOutcome,
    AccountEventKind,
    AccountStatus,
    MessageKind,
    PushPlatform,
)
from models.grants import Grant
from models.messages import Message
from models.outbox import OutboxMessage
from notify import outbox
from resolvers import events
from resolvers.deletion import delete_account
from resolvers.events import Actor
from resolvers.notifications import post_message
from settings import Settings
from tests.factories import (
    SIGN_IN,
    GraphQLClient,
    make_agent,
    make_contractor,
    make_listing,
    make_lockbox,
    make_staff,
)
from tests.rows import rows_mentioning, table_counts
from tests.sms_gateway import SmsGateway
from tests.smtp import SmtpServer
from tests.test_email_proof import UPDATE_EMAIL
from tests.test_revocations import (
    HOURS,
    REPORT,
    Scene,
    grant_on,
    list_for,
    sign_in_phone,
    sync,
    trusted_simulator,
    visit,
)
from tests.test_signup import begin, complete, verify

DELETE = """
mutation($password: String!) { deleteMyAccount(input: {password: $password}) { ok userErrors { code field } } }
"""
ME = "{ me { id } }"
BEGIN_PHONE = """
mutation($phone: String!) { beginPhoneChange(input: {newPhone: $phone}) { verificationId userErrors { code } } }
"""
CONFIRM_PHONE = """
mutation($id: ID!, $code: String!) {
  confirmPhoneChange(input: {verificationId: $id, code: $code}) { account { phone } userErrors { code } }
}
"""
REQUEST_RESET = "mutation($login: String!) { requestPasswordReset(input: {login: $login}) { ok } }"
EMAIL = "zebulon.q@example.com"
NEW_EMAIL = "zeb.quill@example.net"
FIRST, LAST = "Zebulon", "Quillfeather"
PHONE, NEW_PHONE = "+15135550142", "+19375550177"
# What must not survive anywhere, as the text and bytes a search would look for; the name
# stays only in the listing agents' own record of who had access (their messages).
CONTACT = [EMAIL, PHONE[2:], NEW_PHONE[2:]]


@pytest.fixture
def settings_overrides(sms: SmsGateway) -> dict[str, Any]:
    return {"sms_backend": "http", "sms_http_url": sms.url}


async def sign_up(gql: GraphQLClient, sms: SmsGateway, token: str | None = None) -> Account:
    started = await begin(gql, EMAIL, PHONE, token)
    [text] = await sms.wait_for(PHONE)
    assert (await verify(gql, started["verificationId"], text.code))["ok"]
    done = await complete(gql, started["verificationId"], firstName=FIRST, lastName=LAST)
    assert done["userErrors"] == [], done["userErrors"]
    return await Account.get(email=EMAIL)


async def grant_to(agent: Account, email: str | None, starts_in: timedelta) -> Grant:
    listing = await make_listing(agent)
    lockbox = await make_lockbox(agent, listing)
    starts = clock.now() + starts_in
    return await Grant.create(
        listing=listing,
        lockbox=lockbox,
        granted_by=agent,
        grantee_email=email,
        starts_at=starts,
        ends_at=starts + timedelta(days=2),
    )


async def checkpoint() -> None:
    await Tortoise.get_connection("default").execute_query("PRAGMA wal_checkpoint(TRUNCATE)")


def file_bytes(database: Path) -> bytes:
    wal = database.with_name(database.name + "-wal")
    return database.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_deleted_account_leaves_no_trace_in_rows_or_file(
    gql: GraphQLClient, sms: SmsGateway, smtp: SmtpServer, app_settings: Settings, tmp_path: Path
) -> None:
    # given a contractor who came from an invitation, changed phone, got mail, SMS and messages
    agent = await make_agent()
    future = await grant_to(agent, EMAIL, timedelta(days=3))
    started = await grant_to(agent, EMAIL, timedelta(hours=-1))
    invitation_token = new_token()
    async with in_transaction():
        await Invitation.create(token_hash=token_digest(invitation_token), email=EMAIL)
        await outbox.email(
            EMAIL,
            "invitation",
            {"agent_name": "A", "address": "B", "starts_at": "C", "ends_at": "D", "link": "E"},
        )
        # another account's log quoting the address (as an invitation entry might)
        await events.record(agent, AccountEventKind.INVITED, f"invited {EMAIL}")
    outbox.wake()
    contractor = await sign_up(gql, sms, invitation_token)
    token = await gql.sign_in(EMAIL)
    begun = (await gql(BEGIN_PHONE, {"phone": NEW_PHONE}, token=token))["beginPhoneChange"]
    [text] = await sms.wait_for(NEW_PHONE)
    await gql(CONFIRM_PHONE, {"id": begun["verificationId"], "code": text.code}, token=token)
    await gql(REQUEST_RESET, {"login": EMAIL})
    device = await Device.get(account=contractor)
    await PushToken.create(device=device, platform=PushPlatform.FCM, token="push-token-1")
    async with in_transaction():
        await post_message(contractor.id, MessageKind.ACCOUNT, "Welcome", "Hello there")
    outbox.wake()
    await smtp.wait_for(2)
    assert await rows_mentioning(EMAIL), "the scenario should have stored the email"
    database = tmp_path / "keybin.sqlite3"
    sqlite = app_settings.is_sqlite  # the file check is SQLite's (secure_delete); rows: both
    if sqlite:
        await checkpoint()
        assert EMAIL.encode() in file_bytes(database), "the file check should see stored text"

    # when
    data = await gql(DELETE, {"password": "Secret123"}, token=token)

    # then
    assert data["deleteMyAccount"] == {"ok": True, "userErrors": []}
    assert (await gql(ME, token=token))["me"] is None
    signed_in = await gql(
        SIGN_IN,
        {"input": {"login": EMAIL, "password": "Secret123", "deviceId": "x", "deviceName": "P"}},
    )
    assert signed_in["signIn"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    assert await rows_mentioning(*CONTACT) == []
    named = await rows_mentioning(FIRST, LAST)
    assert {(table, row["account_id"], row["kind"]) for table, row in named} == {
        ("message", agent.id, "ACCESS_REVOKED")
    }
    account = await Account.get(id=contractor.id)
    assert (account.status, account.first_name, account.email, account.phone) == (
        AccountStatus.INACTIVE,
        "",
        None,
        None,
    )
    assert account.deleted_at is not None
    assert (account.password_hash, account.pin_hash) == (None, None)
    await future.refresh_from_db()
    await started.refresh_from_db()
    # both end (the started one as well: its credentials go into the revocation lists)
    assert future.revoked_at is not None and started.revoked_at is not None
    assert (future.grantee_email, started.grantee_email) == (None, None)
    kinds = await AccountEvent.filter(account=contractor).values_list("kind", flat=True)
    assert {"SIGNED_UP", "PHONE_CHANGED", "DELETED"} <= set(kinds)
    invited = await AccountEvent.get(account=agent, kind=AccountEventKind.INVITED.value)
    assert invited.detail == "invited [deleted]"

    # and the database file itself holds no trace once the WAL is checkpointed
    if sqlite:
        await checkpoint()
        content = file_bytes(database).lower()
        for trace in CONTACT:
            assert trace.lower().encode() not in content, trace


async def test_access_history_keeps_the_name_and_started_grants(gql: GraphQLClient) -> None:
    # given
    agent = await make_agent()
    contractor = await make_contractor()
    visiting = await grant_to(agent, contractor.email, timedelta(hours=-1))
    later = await grant_to(agent, contractor.email, timedelta(days=1))
    await Grant.filter(id__in=[visiting.id, later.id]).update(grantee=contractor)
    entry = await AccessEvent.create(
        lockbox_id=visiting.lockbox_id,  # type: ignore[attr-defined]
        grant=visiting,
        actor=contractor,
        actor_name=contractor.full_name,
        method=AccessMethod.BLE_CREDENTIAL,
        outcome=AccessOutcome.OPENED,
        occurred_at=clock.now(),
    )
    member = (await make_staff(name="Sam Support")).staff
    staff = Actor(staff_id=member.id, staff_name="Sam Support")
    # when support deletes the account
    await delete_account(contractor.id, staff)
    # then
    await entry.refresh_from_db()
    assert entry.actor_name == contractor.full_name
    await visiting.refresh_from_db()
    await later.refresh_from_db()
    # both stay in the history, ended by the deletion
    assert visiting.revoked_at is not None and later.revoked_at is not None
    assert visiting.grantee_id == contractor.id  # type: ignore[attr-defined]
    deleted = await AccountEvent.get(account=contractor, kind=AccountEventKind.DELETED.value)
    assert (deleted.staff_id, deleted.staff_name) == (member.id, "Sam Support")
    with pytest.raises(DomainError) as again:
        await delete_account(contractor.id, staff)
    assert again.value.code == "NOT_FOUND"


async def test_wrong_password_deletes_nothing(gql: GraphQLClient) -> None:
    # given
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "")
    before = await table_counts()
    # when
    data = await gql(DELETE, {"password": "Wrong123"}, token=token)
    # then
    assert data["deleteMyAccount"]["ok"] is False
    assert data["deleteMyAccount"]["userErrors"][0] == {
        "code": "INVALID_CREDENTIALS",
        "field": ["input", "password"],
    }
    after = await table_counts()
    assert after == {**before, "account_event": before["account_event"] + 1}
    assert (await Account.get(id=contractor.id)).deleted_at is None
    assert (await gql(ME, token=token))["me"] is not None


async def test_deleting_needs_a_signed_in_account(gql: GraphQLClient) -> None:
    body = await gql.raw(DELETE, {"password": "Secret123"})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


AGENTS_VIEW = """
query($listing: ID!) {
  me {
    messages(kind: [ACCESS_REVOKED]) { edges { node { title body grant { id } } } }
  }
  node(id: $listing) {
    ... on Listing {
      grants { edges { node { id status granteeEmail grantee { firstName } } } }
      accessEvents { edges { node { actorName outcome actor { firstName } } } }
    }
  }
}
"""


async def test_deleting_a_contractor_ends_every_grant_not_over_and_tells_the_listing_agent(
    gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    # given a contractor who opened the lockbox during a visit under way, with another visit
    # to come and one over
    agent = await make_agent(first_name="Alice", last_name="Agent")
    listing = await make_listing(agent, line1="12 Elm Street")
    lockbox = await make_lockbox(agent, listing)
    carl = await make_contractor(first_name="Carl", last_name="Cleaner")
    contact = [carl.email or "", (carl.phone or "")[2:]]
    under_way = await grant_on(lockbox, agent, carl, -HOURS, 3 * HOURS)
    to_come = await grant_on(lockbox, agent, carl, 24 * HOURS, 26 * HOURS)
    over = await grant_on(lockbox, agent, carl, -5 * HOURS, -4 * HOURS)
    agent_token = await gql.sign_in(agent.email or "", device_id="agent-office")
    scene = Scene(gql, agent, agent_token, lockbox, await trusted_simulator(http, lockbox))
    carls_phone = await sign_in_phone(gql, carl, "carl-phone")
    carls_bundle = await sync(gql, carls_phone)
    assert (await visit(scene, carls_phone, carls_bundle)).outcome is AccessOutcome.OPENED
    records = scene.simulator.pending_records()
    await gql(REPORT, {"serial": lockbox.serial_number, "records": records}, carls_phone.token)
    # when Carl deletes the account
    deleted = await gql(DELETE, {"password": "Secret123"}, token=carls_phone.token)
    assert deleted["deleteMyAccount"] == {"ok": True, "userErrors": []}
    # then the agent is told of each grant the deletion ended, by name, without contact details
    view = await gql(AGENTS_VIEW, {"listing": to_global_id("Listing", listing.id)}, agent_token)
    told = [edge["node"] for edge in view["me"]["messages"]["edges"]]
    address = "12 Elm Street, Cincinnati, OH 45202"
    assert [(m["title"], m["grant"]["id"]) for m in told] == [
        (f"Access cancelled: {address}", to_global_id("Grant", to_come.id)),
        (f"Access ended: {address}", to_global_id("Grant", under_way.id)),
    ]
    assert all(m["body"].startswith("Carl Cleaner deleted their account: ") for m in told)
    assert told[1]["body"].endswith("has ended.") and told[0]["body"].endswith("is cancelled.")
    assert await rows_mentioning(*contact) == []
    # and the listing's history keeps the grants, with no grantee, and the name as recorded
    statuses = {
        e["node"]["id"]: (e["node"]["status"], e["node"]["granteeEmail"], e["node"]["grantee"])
        for e in view["node"]["grants"]["edges"]
    }
    assert statuses == {
        to_global_id("Grant", under_way.id): ("REVOKED", "", None),
        to_global_id("Grant", to_come.id): ("REVOKED", "", None),
        to_global_id("Grant", over.id): ("EXPIRED", "", None),
    }
    assert [e["node"] for e in view["node"]["accessEvents"]["edges"]] == [
        {"actorName": "Carl Cleaner", "outcome": "OPENED", "actor": None}
    ]
    # and the agent's next sync carries both to the lockbox, which then refuses the
    # credential still in Carl's phone
    agents_phone = await sign_in_phone(gql, agent, "agent-phone")
    agents_bundle = await sync(gql, agents_phone)
    listed = peek_revocations(list_for(agents_bundle, lockbox.serial_number))
    assert listed.jti == {to_global_id("Grant", g.id) for g in (under_way, to_come)}
    delivered = await visit(scene, agents_phone, agents_bundle)
    assert delivered.revocations is RevocationsVerdict.ACCEPTED
    again = await visit(scene, carls_phone, carls_bundle)
    assert again.outcome is AccessOutcome.DENIED_REVOKED


async def test_an_account_that_signed_up_without_an_invitation_and_changed_email_leaves_no_trace(
    gql: GraphQLClient, sms: SmsGateway, smtp: SmtpServer
) -> None:
    # given a contractor who signed up without an invitation (a confirmation link mailed to
    # the address), then changed its email (another link, and a notice to the old address)
    contractor = await sign_up(gql, sms)
    token = await gql.sign_in(EMAIL)
    changed = await gql(UPDATE_EMAIL, {"email": NEW_EMAIL}, token=token)
    assert changed["updateEmail"]["userErrors"] == []
    await smtp.wait_for(3)
    assert await EmailConfirmation.filter(account_id=contractor.id).count() == 2
    assert await rows_mentioning(EMAIL, NEW_EMAIL, PHONE[2:]), "the scenario should store them"
    # when
    data = await gql(DELETE, {"password": "Secret123"}, token=token)
    # then no column of any table holds either address or the phone
    assert data["deleteMyAccount"] == {"ok": True, "userErrors": []}
    assert await rows_mentioning(EMAIL, NEW_EMAIL, PHONE[2:]) == []


async def test_deleting_an_account_that_typed_someone_elses_email_leaves_their_access_waiting(
    gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given a grant and its invitation waiting for an address, and an account that put the
    # address on itself without proving it
    agent = await make_agent()
    waiting = await grant_to(agent, EMAIL, timedelta(days=1))
    invitation_token = new_token()
    async with in_transaction():
        await Invitation.create(token_hash=token_digest(invitation_token), email=EMAIL)
        await outbox.email(
            EMAIL,
            "invitation",
            {"agent_name": "A", "address": "B", "starts_at": "C", "ends_at": "D", "link": "E"},
        )
    claimer = await make_contractor(email="claimer@example.com")
    token = await gql.sign_in(claimer.email or "")
    await gql(UPDATE_EMAIL, {"email": EMAIL}, token=token)
    # when it deletes its account
    data = await gql(DELETE, {"password": "Secret123"}, token=token)
    # then the grant still waits for the mailbox's owner, who can still sign up with the
    # invitation, and the listing agent is told of no cancellation
    assert data["deleteMyAccount"] == {"ok": True, "userErrors": []}
    await waiting.refresh_from_db()
    assert (waiting.revoked_at, waiting.grantee_email) == (None, EMAIL)
    assert await Invitation.filter(email=EMAIL, accepted_at__isnull=True).count() == 1
    assert await OutboxMessage.filter(recipient=EMAIL, account_id__isnull=True).count() == 1
    assert not await Message.filter(account_id=agent.id).exists()
    # and nothing of the deleted account's own remains
    assert await rows_mentioning("claimer@example.com", claimer.phone or "") == []
