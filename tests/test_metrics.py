"""/metrics as an operator's scraper sees it, against a real server: the token, the outbox,
deliveries, requests, refusals and live subscribers; and production's JSON log lines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from core import clock
from models.enums import OutboxChannel
from notify import outbox
from settings import ConfigurationError, Settings, from_env
from tests.factories import SIGN_IN, make_agent, make_contractor
from tests.live import Live, subscribed
from tests.server import keybin_server
from tests.smtp import SmtpServer, free_port
from web import metrics

TOKEN = "scrape-token-0123456789abcdef"
WITH_TOKEN = pytest.mark.parametrize("settings_overrides", [{"metrics_token": TOKEN}])
KEPT = pytest.mark.parametrize(
    "settings_overrides", [{"metrics_token": TOKEN, "answer_cache": True}]
)
ME = "{ me { id } }"
RESET_MAIL = {"name": "Ann", "key_id": None, "link": "http://keybin.test/reset"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _base(live: Live) -> str:
    return live.http_url.removesuffix("/graphql")


async def scrape(base: str, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(f"{base}/metrics", headers=headers)


async def samples(base: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    response = await scrape(base)
    assert response.status_code == 200, response.text
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


async def post(base: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{base}/graphql", json={"query": query, "variables": variables or {}}
        )
    body: dict[str, Any] = response.json()
    return body


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    """Polls a condition only a scrape can tell (the dispatcher works in its own tasks)."""
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def _sign_in(login: str, password: str = "Secret123") -> dict[str, Any]:
    return {"input": {"login": login, "password": password, "deviceId": "d", "deviceName": "P"}}


async def test_without_a_token_setting_there_is_no_metrics_page(live: Live) -> None:
    # given a server started without METRICS_TOKEN
    # when a scraper asks, with or without a bearer token
    anonymous = await scrape(_base(live), token=None)
    guessing = await scrape(_base(live), token=TOKEN)
    # then the page does not exist
    assert (anonymous.status_code, guessing.status_code) == (404, 404)
    assert "keybin_" not in anonymous.text + guessing.text


@WITH_TOKEN
async def test_the_metrics_page_wants_the_token(live: Live) -> None:
    # given a server started with METRICS_TOKEN
    base = _base(live)
    # when a scraper comes without a token, with another one, with the right one
    missing = await scrape(base, token=None)
    wrong = await scrape(base, token=TOKEN[:-1] + "x")
    right = await scrape(base)
    # then only the right one is answered, in the Prometheus text format
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 403
    assert "keybin_" not in missing.text + wrong.text
    assert right.status_code == 200
    assert right.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(right.text)}
    assert {
        "keybin_outbox_pending",
        "keybin_outbox_oldest_pending_seconds",
        "keybin_outbox_deliveries",
        "keybin_outbox_failures",
        "keybin_live_subscribers",
        "keybin_live_delivery_seconds",
        "keybin_graphql_request_seconds",
        "keybin_rate_limit_refusals",
        "keybin_kept_answer_hits",
        "keybin_kept_answer_misses",
    } <= names


def test_a_short_metrics_token_is_refused_at_start() -> None:
    # given / when / then
    with pytest.raises(ConfigurationError, match="METRICS_TOKEN"):
        from_env({"METRICS_TOKEN": "short", "SECRET_KEY": "s" * 40})


@WITH_TOKEN
async def test_requests_are_timed_by_operation_type(live: Live) -> None:
    # given an agent, and no request yet
    agent = await make_agent()
    base = _base(live)
    before = await samples(base)
    assert value(before, "keybin_graphql_request_seconds_count", operation="query") == 0
    # when the agent signs in and asks a query, then the same query twice more (admitted,
    # then answered from what was kept), and someone posts a body that is not JSON
    token = (await live.post(SIGN_IN, _sign_in(agent.email or "")))["signIn"]["token"]
    for _ in range(3):
        await live.post(ME, {}, token)
    async with httpx.AsyncClient() as client:
        garbled = await client.post(live.http_url, content=b"{not json")
    assert garbled.status_code == 400
    # then one mutation, three queries and one invalid request were timed
    after = await samples(base)
    count = "keybin_graphql_request_seconds_count"
    assert value(after, count, operation="mutation") == 1
    assert value(after, count, operation="query") == 3
    assert value(after, count, operation="invalid") == 1
    assert value(after, count, operation="subscription") == 0
    assert value(after, "keybin_graphql_request_seconds_sum", operation="mutation") > 0


@KEPT
async def test_a_kept_answer_is_timed_as_a_query(live: Live) -> None:
    # given an agent whose query has been answered and admitted
    agent = await make_agent()
    token = await live.sign_in(agent.email or "")
    await live.post(ME, {}, token)
    await live.post(ME, {}, token)
    hits = live.app.state.answers.hits
    # when the same query comes again with nothing changed
    await live.post(ME, {}, token)
    # then it was answered from memory, and timed as a query all the same
    assert live.app.state.answers.hits == hits + 1
    found = await samples(_base(live))
    assert value(found, "keybin_graphql_request_seconds_count", operation="query") == 3


@KEPT
async def test_kept_answers_hits_and_misses_are_counted(live: Live) -> None:
    # given an agent whose query has been asked once (admitted: neither a hit nor a miss)
    agent = await make_agent()
    token = await live.sign_in(agent.email or "")
    base = _base(live)
    await live.post(ME, {}, token)
    before = await samples(base)
    # when it comes again (worked out and kept), again (answered from memory), then once
    # more after a commit elsewhere (worked out again)
    await live.post(ME, {}, token)
    await live.post(ME, {}, token)
    await make_contractor()
    await live.post(ME, {}, token)
    # then one hit and two misses were counted, as the cache itself counted them
    after = await samples(base)
    hits = value(after, "keybin_kept_answer_hits_total") - value(
        before, "keybin_kept_answer_hits_total"
    )
    misses = value(after, "keybin_kept_answer_misses_total") - value(
        before, "keybin_kept_answer_misses_total"
    )
    assert (hits, misses) == (1, 2)
    assert value(after, "keybin_kept_answer_hits_total") == live.app.state.answers.hits


@WITH_TOKEN
async def test_outbox_depth_and_oldest_age_by_channel(live: Live, smtp: SmtpServer) -> None:
    # given the mail relay down and two mails queued, two minutes ago
    smtp.stop()
    await outbox.email("ann@example.com", "password_reset", RESET_MAIL)
    await outbox.email("bob@example.com", "password_reset", RESET_MAIL)
    clock.travel(120)
    # when the operator scrapes (once the dispatcher has tried and failed)
    base = _base(live)

    async def both_tried() -> bool:
        found = await samples(base)
        return value(found, "keybin_outbox_failures_total", channel="EMAIL", outcome="retry") >= 2

    await until(both_tried)
    found = await samples(base)
    # then the mails wait in the EMAIL channel, the oldest for two minutes; nothing elsewhere
    assert value(found, "keybin_outbox_pending", channel="EMAIL") == 2
    assert 120 <= value(found, "keybin_outbox_oldest_pending_seconds", channel="EMAIL") < 180
    for channel in ("SMS", "FCM", "APNS"):
        assert value(found, "keybin_outbox_pending", channel=channel) == 0
        assert value(found, "keybin_outbox_oldest_pending_seconds", channel=channel) == 0
    assert value(found, "keybin_outbox_failures_total", channel="EMAIL", outcome="retry") >= 2
    assert value(found, "keybin_outbox_deliveries_total", channel="EMAIL") == 0


@WITH_TOKEN
async def test_a_delivered_mail_is_counted(live: Live, smtp: SmtpServer) -> None:
    # given a mail queued with the relay up
    await outbox.email("ann@example.com", "password_reset", RESET_MAIL)
    outbox.wake()
    # when it is delivered
    await smtp.wait_for(1)
    base = _base(live)

    async def counted() -> bool:
        found = await samples(base)
        return value(found, "keybin_outbox_deliveries_total", channel="EMAIL") >= 1

    await until(counted)
    # then the EMAIL channel counts one delivery and nothing waits
    found = await samples(base)
    assert value(found, "keybin_outbox_deliveries_total", channel="EMAIL") == 1
    assert value(found, "keybin_outbox_deliveries_total", channel="SMS") == 0
    assert value(found, "keybin_outbox_pending", channel="EMAIL") == 0
    assert value(found, "keybin_outbox_failures_total", channel="EMAIL", outcome="dead") == 0


@pytest.mark.parametrize(
    "settings_overrides", [{"metrics_token": TOKEN, "rate_limit_per_account_per_minute": 2}]
)
async def test_a_rate_limit_refusal_is_counted(live: Live) -> None:
    # given a login allowed two sign-in attempts a minute
    agent = await make_agent()
    base = _base(live)
    # when a third attempt comes within the minute
    outcomes = []
    for _ in range(3):
        body = await post(base, SIGN_IN_ERRORS, _sign_in(agent.email or "", "Wrong1234"))
        outcomes.append(body["data"]["signIn"]["userErrors"][0]["code"])
    # then it was refused, and the refusal counted under its action
    assert outcomes == ["INVALID_CREDENTIALS", "INVALID_CREDENTIALS", "TOO_MANY_ATTEMPTS"]
    found = await samples(base)
    assert value(found, "keybin_rate_limit_refusals_total", action="signIn") == 1


SIGN_IN_ERRORS = """
mutation($input: SignInInput!) { signIn(input: $input) { token userErrors { code } } }
"""


@WITH_TOKEN
async def test_live_delivery_latency_shows_in_its_histogram(live: Live) -> None:
    # given a running server
    base = _base(live)
    # when the live-delivery code reports a message handed over 20 ms after its commit
    metrics.observe_live_delivery(0.02)
    # then the histogram holds it, in the right bucket
    found = await samples(base)
    assert value(found, "keybin_live_delivery_seconds_count") == 1
    assert value(found, "keybin_live_delivery_seconds_sum") == pytest.approx(0.02)
    assert value(found, "keybin_live_delivery_seconds_bucket", le="0.01") == 0
    assert value(found, "keybin_live_delivery_seconds_bucket", le="0.025") == 1


@WITH_TOKEN
async def test_live_subscribers_are_counted_while_subscribed(live: Live) -> None:
    # given a contractor and nobody subscribed
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    base = _base(live)
    assert value(await samples(base), "keybin_live_subscribers") == 0
    # when the contractor subscribes to messageAdded
    async with subscribed(live, token):
        await live.wait_for_subscribers(1)
        # then the subscriber and its connection are counted
        found = await samples(base)
        assert value(found, "keybin_live_subscribers") == 1
        if ("keybin_live_connections", frozenset()) in found:
            assert value(found, "keybin_live_connections") == 1
    # and no longer once it has gone
    await live.wait_for_no_subscribers()
    assert value(await samples(base), "keybin_live_subscribers") == 0


async def test_each_app_counts_only_its_own(live: Live, app_settings: Settings) -> None:
    # given a second app in the same process, never started
    from app import create_app

    other = create_app(app_settings)
    # when the first app's dispatcher counts a delivery
    live.app.state.metrics.delivered(OutboxChannel.EMAIL)

    # then the second app's registry has not seen it
    def delivered(app: Any) -> float | None:
        registry = app.state.metrics.registry
        return registry.get_sample_value("keybin_outbox_deliveries_total", {"channel": "EMAIL"})

    assert delivered(live.app) == 1
    assert delivered(other) == 0


def _production_env(settings: Settings) -> dict[str, str]:
    return {
        "KEYBIN_ENV": "production",
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "KEYBIN_DATA_DIR": settings.keybin_data_dir,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(free_port()),  # nobody listens: mail waits in the outbox
        "SMS_BACKEND": "http",
        "SMS_HTTP_URL": f"http://127.0.0.1:{free_port()}/sms",  # nor here: SMS waits too
        "METRICS_TOKEN": TOKEN,
    }


def _json_lines(log: Path) -> list[dict[str, Any]]:
    lines = log.read_text().splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # every line must be one JSON object


async def test_production_logs_json_lines_with_the_request_id(
    settings: Settings, tmp_path: Path
) -> None:
    # given `keybin serve` in production, its output kept
    log = tmp_path / "serve.log"
    with keybin_server(_production_env(settings), log=log) as (base, _):
        async with httpx.AsyncClient(timeout=10) as client:
            # when a request comes without an id, one with a plain id, one with a forged one
            made = await client.post(f"{base}/graphql", json={"query": ME})
            kept = await client.post(
                f"{base}/graphql", json={"query": ME}, headers={"X-Request-ID": "lb-42.a_b"}
            )
            forged = await client.post(
                f"{base}/graphql",
                json={"query": ME},
                headers={"X-Request-ID": 'x" level=ERROR {"forged": true}'},
            )
        # and a WebSocket connection opens
        async with connect(
            base.replace("http", "ws") + "/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        ) as ws:
            socket_id = ws.response.headers["X-Request-ID"]
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
        scraped = await scrape(base)
    # then every answer names its request: a made id, the plain id kept, the forged one replaced
    made_id, forged_id = made.headers["X-Request-ID"], forged.headers["X-Request-ID"]
    assert kept.headers["X-Request-ID"] == "lb-42.a_b"
    assert forged_id != made_id and "forged" not in forged_id
    assert len({made_id, forged_id, socket_id}) == 3
    # and the log is JSON lines, the request's own lines carrying its id
    lines = _json_lines(log)
    assert all(
        {"time", "level", "logger", "message", "request_id"} <= line.keys() for line in lines
    )
    by_request = {
        request_id: [line for line in lines if line["request_id"] == request_id]
        for request_id in (made_id, "lb-42.a_b", forged_id, socket_id)
    }
    for request_id in (made_id, "lb-42.a_b", forged_id):
        [access] = by_request[request_id]
        assert access["logger"] == "uvicorn.access"
        assert "POST /graphql" in access["message"]
    assert any("WebSocket /graphql" in line["message"] for line in by_request[socket_id])
    # and the real process serves its metrics to the token holder
    assert scraped.status_code == 200
    assert "keybin_graphql_request_seconds_count" in scraped.text
