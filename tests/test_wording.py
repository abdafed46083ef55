"""What people read: messages in words they understand, never an API operation or field name."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

from tests.factories import GraphQLClient, make_agent, make_contractor, make_listing, make_lockbox
from tests.smtp import SmtpServer, text_body

ROOT = Path(__file__).resolve().parent.parent
# Who takes text for people, and where: argument positions and keyword names.
USER_TEXT = {
    "DomainError": ((1,), "message"),
    "invalid_input": ((0,), "message"),
    "post_message": ((2, 3), "body"),
    "sms": ((1,), "body"),
}
CAMEL_CASE = re.compile(r"\b[a-z]+[A-Z]\w*\b")

GRANT = """
mutation($input: GrantAccessInput!) {
  grantAccess(input: $input) { grant { id } userErrors { code field message } }
}
"""
SYNC = """
mutation($deviceId: String!) {
  syncCredentials(input: {deviceId: $deviceId}) { bundle { expiresAt } userErrors { code message } }
}
"""
REQUEST_RESET = """
mutation($login: String!) { requestPasswordReset(input: {login: $login}) { ok } }
"""


def operation_names() -> set[str]:
    """Every query, mutation and subscription of the published schema."""
    sdl = (ROOT / "schema.graphql").read_text()
    names = set()
    for block in re.findall(r"type (?:Mutation|Query|Subscription) \{(.*?)\n\}", sdl, re.S):
        names |= set(re.findall(r"^  (\w+)[(:]", block, re.M))
    return names


def user_texts() -> Iterator[tuple[str, str]]:
    """(where, text) for each literal that resolvers/ and schema/ hand to a person."""
    for path in sorted([*ROOT.glob("resolvers/*.py"), *ROOT.glob("schema/**/*.py")]):
        for call in ast.walk(ast.parse(path.read_text())):
            if not isinstance(call, ast.Call):
                continue
            name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
            if name not in USER_TEXT:
                continue
            positions, keyword = USER_TEXT[name]
            arguments = [call.args[n] for n in positions if n < len(call.args)]
            arguments += [item.value for item in call.keywords if item.arg in (keyword, "title")]
            for argument in arguments:
                for node in ast.walk(argument):
                    if isinstance(node, ast.Constant) and isinstance(node.value, str):
                        yield f"{path.relative_to(ROOT)}:{node.lineno}", node.value


def test_no_message_to_a_person_names_an_api_operation_or_field() -> None:
    # given the operations of the schema
    operations = operation_names()
    assert {"setPin", "grantAccess", "signIn"} <= operations
    # when every message text is read
    texts = list(user_texts())
    # then none speaks API
    assert len(texts) > 50, "the sweep found too little to be reading the right calls"
    naming = [
        (where, text)
        for where, text in texts
        if operations & set(re.findall(r"\w+", text)) or CAMEL_CASE.search(text)
    ]
    assert naming == []


async def test_granting_without_a_pin_says_what_to_do(gql: GraphQLClient) -> None:
    # given an imported agent who has not chosen a PIN yet
    agent = await make_agent(pin=None)
    listing = await make_listing(agent)
    await make_lockbox(agent, listing)
    token = await gql.sign_in(agent.email or "")
    variables = {
        "input": {
            "listingId": listing_id(listing.id),
            "granteeEmail": "pat@example.com",
            "startsAt": "2099-01-01T10:00:00Z",
            "endsAt": "2099-01-01T12:00:00Z",
            "pin": "1234",
        }
    }
    # when
    payload = (await gql(GRANT, variables, token=token))["grantAccess"]
    # then
    [error] = payload["userErrors"]
    assert error["code"] == "INVALID_PIN"
    assert error["message"] == "Choose a PIN first (your password confirms it), then try again."


async def test_a_phone_without_a_key_is_told_to_sign_in_again(gql: GraphQLClient) -> None:
    # given a contractor signed in from an app that sent no device key
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "", device_id="old-app")
    # when
    payload = (await gql(SYNC, {"deviceId": "old-app"}, token=token))["syncCredentials"]
    # then
    assert payload["userErrors"] == [
        {
            "code": "DEVICE_NOT_REGISTERED",
            "message": "This phone is not set up to open lockboxes yet: sign in on it again.",
        }
    ]


async def test_a_contractors_reset_mail_reads_naturally(
    gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given a contractor (no Key ID) and an agent
    contractor = await make_contractor(first_name="Casey")
    agent = await make_agent(first_name="Alex")
    # when both ask to reset their password
    await gql(REQUEST_RESET, {"login": contractor.email})
    await gql(REQUEST_RESET, {"login": agent.key_id})
    mails = {mail["To"]: mail for mail in await smtp.wait_for(2)}
    # then
    contractor_text, contractor_html = bodies(mails[contractor.email or ""])
    assert "Hello Casey,\n\nSomeone asked to reset the password of your keybin account.\n" in (
        contractor_text
    )
    assert "Key ID" not in contractor_text and "Key ID" not in contractor_html
    assert "contractor account" not in contractor_text + contractor_html
    assert "reset the password of your keybin account." in contractor_html
    agent_text, agent_html = bodies(mails[agent.email or ""])
    assert f"of your keybin account with Key ID {agent.key_id}." in agent_text
    assert f"with Key ID <strong>{agent.key_id}</strong>." in agent_html


def bodies(mail: Message) -> tuple[str, str]:
    html = next(part for part in mail.walk() if part.get_content_type() == "text/html")
    payload = html.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return text_body(mail).replace("\r\n", "\n"), payload.decode()


def listing_id(pk: int) -> str:
    from core.ids import to_global_id

    return to_global_id("Listing", pk)
