"""The invited contractor's way in: the mail an agent's grant sends, the page its link opens
(in a browser, at desktop and phone width), the QR code on it, the pages of used, expired and
unknown links, and the files phones read to let the app open the same link."""

from __future__ import annotations

import re
from datetime import datetime
from email.message import Message
from html import unescape
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Page

from core import clock
from core.security import new_token
from models.accounts import Invitation
from settings import ConfigurationError, from_env
from tests.browser import chromium, screenshots_dir
from tests.factories import GraphQLClient
from tests.live import Live
from tests.sms_gateway import SmsGateway
from tests.smtp import SmtpServer, text_body
from tests.test_email_proof import signup
from tests.test_grants import REVOKE, Scene, grant, scene

APP_STORE = "https://apps.apple.com/app/keybin/id6400000001"
PLAY_STORE = "https://play.google.com/store/apps/details?id=org.keybin.app"
APPLE_ID = "ABCDE12345.org.keybin.app"
CERT = ":".join(["AB"] * 32)
INVITEE = "new.contractor@example.com"
ZONE = ZoneInfo("America/New_York")  # the region tests.factories gives a listing's lockbox


@pytest.fixture
def settings_overrides(sms: SmsGateway) -> dict[str, Any]:
    return {
        "sms_backend": "http",
        "sms_http_url": sms.url,
        "app_store_url": APP_STORE,
        "play_store_url": PLAY_STORE,
    }


async def invited(
    gql: GraphQLClient, smtp: SmtpServer
) -> tuple[Scene, dict[str, Any], Message, str]:
    """An agent grants access to an address nobody uses: the scene, the grant, the mail, its link."""
    s = await scene(gql)
    payload = await grant(gql, s, INVITEE)
    assert payload["userErrors"] == [] and payload["invitationSent"] is True, payload
    [mail] = await smtp.wait_for(1)
    match = re.search(r"https?://\S+/signup\?invitation=[\w-]+", text_body(mail))
    assert match, text_body(mail)
    return s, payload["grant"], mail, match.group(0)


def local(value: str) -> str:
    """A grant's instant as the region reads it: the hour and the zone's abbreviation."""
    moment = datetime.fromisoformat(value).astimezone(ZONE)
    return f"{moment:%H:%M %Z}"


def page_text(html: str) -> str:
    """What a reader sees: the markup without tags, whitespace folded."""
    body = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


def html_body(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text/html part")


def qr_modules(svg: str) -> list[list[bool]]:
    """The dark modules of segno's SVG: rows of horizontal strokes one module high."""
    size_match = re.search(r'viewBox="0 0 (\d+) (\d+)"', svg)
    path_match = re.search(r'<path[^>]*stroke="#000"[^>]*\sd="([^"]+)"', svg)
    assert size_match and path_match, svg[:200]
    size = int(size_match.group(1))
    grid = [[False] * size for _ in range(size)]
    x = y = 0.0
    for command, a, b in re.findall(r"([MmHh])(-?[\d.]+)(?:[ ,](-?[\d.]+))?", path_match.group(1)):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            for column in range(int(x), int(x + float(a))):
                grid[int(y)][column] = True
            x += float(a)
    return grid


def decode_svg(svg: str, scale: int = 6) -> str:
    """Paint the SVG's modules as a grayscale image and read it as a phone's scanner would."""
    grid = qr_modules(svg)
    rows = bytearray()
    for row in grid:
        line = bytes(0 if dark else 255 for dark in row for _ in range(scale))
        rows += line * scale
    side = len(grid) * scale
    found = zxingcpp.read_barcode(memoryview(bytes(rows)).cast("B", (side, side)))
    assert found is not None, "no QR code found in the SVG"
    return str(found.text)


async def test_invitation_link_opens_a_page_with_who_where_when_and_how(
    gql: GraphQLClient, http: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    # given an agent who granted access to an address with no account
    s, granted, mail, link = await invited(gql, smtp)
    when = r"\w{3} \w{3} \d+, \d{4} \d\d:\d\d \w+"
    window = re.search(rf"from ({when}) to ({when})", " ".join(text_body(mail).split()))
    assert window

    # when the invitee opens the mail's link
    response = await http.get(link)

    # then a page says who invited them, where, when (as the mail said it), and how to go on
    assert response.status_code == 200
    text = page_text(response.text)
    assert "Alice Agent invited you to open a lockbox" in text
    assert "12 Elm Street" in text
    assert local(granted["startsAt"]) in text and local(granted["endsAt"]) in text
    assert f"from {window.group(1)} to {window.group(2)}" in text
    assert f'href="{APP_STORE}"' in response.text and f'href="{PLAY_STORE}"' in response.text
    assert f'<a class="button" href="{link}">Open the invitation in the app</a>' in response.text
    for step in ("Install the keybin app", "Sign in", "press ENT", "Bluetooth"):
        assert step in text
    # the QR code is the link itself, read back from the SVG's modules
    svg = re.search(r"<svg.*?</svg>", response.text, flags=re.S)
    assert svg and decode_svg(svg.group(0)) == link
    # and the page is as locked down as the reset page: no script, nothing from elsewhere
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert "<script" not in response.text and "style=" not in response.text
    # nor does it say more than the mail: no address of the invitee, no Key ID of the agent
    assert INVITEE not in response.text and (s.agent.key_id or "") not in response.text


async def test_mail_explains_registering_downloading_signing_in_and_opening(
    gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given an agent who granted access to an address with no account
    _, granted, mail, link = await invited(gql, smtp)

    # when the invitation mail is read, as text and as HTML
    text = " ".join(text_body(mail).split())
    html = html_body(mail)

    # then both say who, where, when, and the steps from download to opening the key bin
    for body in (text, page_text(html)):
        assert "Alice Agent granted you access to the lockbox at 12 Elm Street" in body
        assert local(granted["startsAt"]) in body and local(granted["endsAt"]) in body
        for step in (
            "Download the keybin app",
            "Register with this link",
            "Sign in to the app",
            "press ENT on the lockbox",
            "Bluetooth on",
        ):
            assert step in body, step
    assert APP_STORE in text and PLAY_STORE in text and link in text
    for href in (APP_STORE, PLAY_STORE, link):
        assert f'href="{href}"' in html
    assert (
        mail["Subject"] == "Alice Agent granted you access to 12 Elm Street, Cincinnati, OH 45202"
    )


async def test_used_invitation_gets_a_clear_page_without_the_grant(
    gql: GraphQLClient, http: httpx.AsyncClient, smtp: SmtpServer, sms: SmsGateway
) -> None:
    # given an invitation the invitee signed up with
    _, _, _, link = await invited(gql, smtp)
    token = link.rsplit("=", 1)[1]
    completed = await signup(gql, sms, INVITEE, "+15135550177", token)
    assert completed["userErrors"] == [], completed

    # when the link is opened again
    response = await http.get(link)

    # then the page says it was used and where the access is now, and shows nothing of it
    assert response.status_code == 410
    text = page_text(response.text)
    assert "This invitation has already been used" in text and "Sign in to the keybin app" in text
    assert "Alice" not in text and "Elm Street" not in text and "<svg" not in response.text
    assert f'href="{APP_STORE}"' in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_revoked_or_ended_invitation_gets_an_expired_page(
    gql: GraphQLClient, http: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    # given an invitation whose grant the agent revoked before it started
    s, granted, _, link = await invited(gql, smtp)
    revoked = (await gql(REVOKE, {"id": granted["id"]}, token=s.token))["revokeAccess"]
    assert revoked["userErrors"] == []

    # when the link is opened
    response = await http.get(link)

    # then the page says it expired and shows nothing of the withdrawn access
    assert response.status_code == 410
    text = page_text(response.text)
    assert "This invitation has expired" in text
    assert "Alice" not in text and "Elm Street" not in text and "<svg" not in response.text

    # given a second invitation, when its access has ended
    payload = await grant(gql, s, "second@example.com")
    await smtp.wait_for(2)
    second = re.search(r"http\S+invitation=[\w-]+", text_body(smtp.inbox[1]))
    assert payload["invitationSent"] and second
    assert (await http.get(second.group(0))).status_code == 200
    clock.travel(4 * 3600)  # the grant started in an hour and lasted two

    # then its page says it expired too
    ended = await http.get(second.group(0))
    assert ended.status_code == 410 and "This invitation has expired" in page_text(ended.text)


async def test_unknown_token_gets_a_page_that_reveals_nothing(
    gql: GraphQLClient, http: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    # given a real invitation somewhere
    _, _, _, link = await invited(gql, smtp)
    real = link.rsplit("=", 1)[1]

    # when tokens that are not it are tried: a random one, one letter off, an over-long one
    answers = [
        await http.get("/signup", params={"invitation": token})
        for token in (new_token(), real[:-1] + ("A" if real[-1] != "A" else "B"), "x" * 5000)
    ]

    # then each gets the same human page, naming no one and no place, never a bare 404
    assert {a.status_code for a in answers} == {404}
    assert len({page_text(a.text) for a in answers}) == 1
    text = page_text(answers[0].text)
    assert "This invitation link does not work" in text and "<h1>" in answers[0].text
    assert "Alice" not in text and "Elm" not in text
    assert answers[0].headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in answers[0].headers["content-security-policy"]


async def test_signup_without_a_token_says_where_to_get_the_app(http: httpx.AsyncClient) -> None:
    # when /signup is opened with no invitation
    response = await http.get("/signup")

    # then it tells where to get the app, and that an invitation's link opens on the phone
    assert response.status_code == 200
    assert "Get the keybin app" in page_text(response.text)
    assert f'href="{APP_STORE}"' in response.text and f'href="{PLAY_STORE}"' in response.text


async def test_invitation_from_before_grants_were_named_still_shows_its_grant(
    gql: GraphQLClient, http: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    # given an invitation row from before invitations named their grant
    _, granted, _, link = await invited(gql, smtp)
    assert await Invitation.filter(email=INVITEE).update(grant_id=None) == 1

    # when its link is opened
    response = await http.get(link)

    # then the agent's waiting grant to the address is the one shown
    assert response.status_code == 200
    text = page_text(response.text)
    assert "Alice Agent" in text and "12 Elm Street" in text
    assert local(granted["startsAt"]) in text


async def test_page_stylesheet_is_served(http: httpx.AsyncClient) -> None:
    # when the stylesheet the page links is fetched
    response = await http.get("/static/invitation.css")

    # then it is there, as CSS (the CSP allows only it)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert ".qr-code" in response.text


# The files phones read before letting the app open keybin's links.


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "apple_app_ids": (APPLE_ID,),
            "android_package": "org.keybin.app",
            "android_cert_sha256": (CERT,),
        }
    ],
)
async def test_app_link_files_name_the_app_from_settings(http: httpx.AsyncClient) -> None:
    # when a phone fetches the two association files
    apple = await http.get("/.well-known/apple-app-site-association")
    android = await http.get("/.well-known/assetlinks.json")

    # then both are JSON at that very address, naming the app and the links it opens
    for response in (apple, android):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
    assert apple.json() == {
        "applinks": {
            "details": [
                {
                    "appIDs": [APPLE_ID],
                    "components": [{"/": "/signup*"}, {"/": "/confirm-email*"}],
                }
            ]
        }
    }
    assert android.json() == [
        {
            "relation": ["delegate_permission/common.handle_all_urls"],
            "target": {
                "namespace": "android_app",
                "package_name": "org.keybin.app",
                "sha256_cert_fingerprints": [CERT],
            },
        }
    ]


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_app_link_files_are_absent_without_settings(http: httpx.AsyncClient) -> None:
    # when a phone fetches them from a server that names no app
    for path in ("/.well-known/apple-app-site-association", "/.well-known/assetlinks.json"):
        response = await http.get(path)

        # then there is nothing to advertise
        assert response.status_code == 404


def test_app_link_settings_are_read_and_checked() -> None:
    # given the settings from the environment, as an operator writes them
    env = {
        "APP_STORE_URL": APP_STORE,
        "APPLE_APP_IDS": f"{APPLE_ID}, ABCDE12345.org.keybin.beta",
        "ANDROID_PACKAGE": "org.keybin.app",
        "ANDROID_CERT_SHA256": CERT.lower(),
        "SECRET_KEY": "k" * 40,
    }
    settings = from_env(env)
    assert settings.apple_app_ids == (APPLE_ID, "ABCDE12345.org.keybin.beta")
    assert settings.android_cert_sha256 == (CERT,)
    assert settings.app_store_url == APP_STORE and settings.play_store_url == ""

    # then a mistake stops start-up instead of advertising the wrong app or a bad link
    for wrong in (
        {"APP_STORE_URL": "javascript:alert(1)"},
        {"PLAY_STORE_URL": "http://play.google.com/x"},
        {"APPLE_APP_IDS": "org.keybin.app"},
        {"ANDROID_CERT_SHA256": "AB:CD"},
        {"ANDROID_PACKAGE": ""},
        {"ANDROID_PACKAGE": "keybin"},
    ):
        with pytest.raises(ConfigurationError):
            from_env({**env, **wrong})


# The page in a real browser, as the invitee sees it.


async def open_invitation(page: Page, url: str) -> list[str]:
    """Load the page; what the browser blocked or failed on (CSP, missing files)."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    response = await page.goto(url)
    assert response is not None and response.status == 200
    return problems


async def assert_within_width(page: Page, selectors: list[str]) -> None:
    """Each part is on screen, none cut at the right edge, and nothing scrolls sideways."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    for selector in selectors:
        box = await page.locator(selector).first.bounding_box()
        assert box is not None and await page.locator(selector).first.is_visible(), selector
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box, width)
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width


CONTENT = ["h1", ".access .address", ".access .window", ".store >> nth=0", ".store >> nth=1"]
CONTENT += [".button", ".steps li >> nth=3"]


@pytest.mark.browser
async def test_invitation_page_in_chromium_at_desktop_and_phone_width(
    gql: GraphQLClient, live: Live, smtp: SmtpServer
) -> None:
    # given an invitation mailed by a grant, its link served by a real server
    _, granted, _, link = await invited(gql, smtp)
    origin = live.http_url.removesuffix("/graphql")
    url = link.replace("http://keybin.test", origin)

    async with chromium() as browser:
        # when it is opened on a computer
        desktop = await browser.new_page(viewport={"width": 1280, "height": 900})
        problems = await open_invitation(desktop, url)

        # then everything shows, styled, with nothing blocked, and the QR code scans as the link
        assert problems == []
        await assert_within_width(desktop, [*CONTENT, ".qr-code"])
        assert "Alice Agent" in await desktop.locator("h1").inner_text()
        window = await desktop.locator(".access .window").inner_text()
        assert local(granted["startsAt"]) in window and local(granted["endsAt"]) in window
        background = await desktop.locator(".button").evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
        assert background == "rgb(31, 95, 191)"  # the stylesheet applied, not the UA's link
        qr = desktop.locator(".qr-code")
        box = await qr.bounding_box()
        assert box is not None and box["width"] >= 150 and box["width"] == box["height"]
        scanned = zxingcpp.read_barcode(Image.open(BytesIO(await qr.screenshot())))
        assert scanned is not None and scanned.text == link
        await desktop.screenshot(
            path=str(screenshots_dir() / "invitation-desktop.png"), full_page=True
        )

        # when it is opened on a phone 390 px wide
        phone = await browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
        problems = await open_invitation(phone, url)

        # then the same content fits the width, and there is no code to scan from itself
        assert problems == []
        await assert_within_width(phone, CONTENT)
        assert not await phone.locator(".qr").is_visible()
        await phone.screenshot(path=str(screenshots_dir() / "invitation-phone.png"), full_page=True)
