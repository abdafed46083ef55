"""Shared fixtures: a fresh database per test, the app over ASGI, a real SMTP server."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from tortoise import Tortoise

import db
from core import clock
from resolvers import push
from settings import Settings
from tests import pg
from tests.browser import CHROMIUM, chromium
from tests.factories import GraphQLClient
from tests.live import Live, serve
from tests.push_servers import ApnsServer, FcmServer
from tests.sms_gateway import SmsGateway
from tests.smtp import SmtpServer
from tests.sql_count import StatementCounter
from tests.stripe_server import StripeServer, stripe_on_loopback

POSTGRES_URL = os.environ.get("KEYBIN_TEST_DATABASE_URL", "")


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrated once per run; each test gets a copy, so every test owns its data."""
    if POSTGRES_URL:
        asyncio.run(pg.build_template(POSTGRES_URL))
        yield pg.TEMPLATE
        asyncio.run(pg.drop(POSTGRES_URL, pg.TEMPLATE))
        return
    path = tmp_path_factory.mktemp("template") / "keybin.sqlite3"

    async def build() -> None:
        await db.migrate(Settings(database_url=f"sqlite://{path}"))
        await Tortoise.close_connections()

    asyncio.run(build())
    yield str(path)


@pytest.fixture
def database_url(tmp_path: Path, template_db: str) -> Iterator[str]:
    if POSTGRES_URL:
        name = asyncio.run(pg.copy_template(POSTGRES_URL))
        yield pg.url_for(POSTGRES_URL, name)
        asyncio.run(pg.drop(POSTGRES_URL, name))
        return
    target = tmp_path / "keybin.sqlite3"
    shutil.copy(template_db, target)
    yield f"sqlite://{target}"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        keybin_data_dir=str(tmp_path),  # signing keys and secrets: this test's own
        secret_key="test-secret-key-" + "x" * 32,
        public_url="http://keybin.test",
        outbox_poll_seconds=0.05,
        outbox_backoff_base=0.05,
        outbox_backoff_max=0.5,
    )


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sms() -> Iterator[SmsGateway]:
    """A real HTTP SMS gateway; a module sends SMS to it with
    `settings_overrides(sms) -> {"sms_backend": "http", "sms_http_url": sms.url}`."""
    with SmsGateway() as gateway:
        yield gateway


@pytest.fixture
async def stripe_server() -> AsyncIterator[StripeServer]:
    """Stripe on loopback; a module bills through it with `settings_overrides(stripe_server)
    -> tests.stripe_server.billing_settings(stripe_server)`."""
    async with stripe_on_loopback(StripeServer()) as server:
        yield server


@pytest.fixture
async def fcm_server(tmp_path: Path) -> AsyncIterator[FcmServer]:
    """FCM on loopback; point settings at it with tests.push_servers.push_settings."""
    server = FcmServer(tmp_path)
    await server.start()
    yield server
    await server.stop()
    push.configure(Settings())  # the next test's messages must not queue pushes


@pytest.fixture
async def apns_server(tmp_path: Path) -> AsyncIterator[ApnsServer]:
    """APNs on loopback (HTTP/2 over TLS); see fcm_server."""
    server = ApnsServer(tmp_path)
    await server.start()
    yield server
    await server.stop()
    push.configure(Settings())


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override with @pytest.mark.parametrize("settings_overrides", [{...}]) per test."""
    return {}


@pytest.fixture
def app_settings(
    settings: Settings, smtp: SmtpServer, settings_overrides: dict[str, Any]
) -> Settings:
    return settings.with_(
        **{"smtp_host": "127.0.0.1", "smtp_port": smtp.port, **settings_overrides}
    )


@pytest.fixture
async def app(app_settings: Settings) -> AsyncIterator[Starlette]:
    from app import create_app

    application = create_app(app_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def live(app: Starlette) -> AsyncIterator[Live]:
    """The app served by uvicorn on loopback: HTTP for mutations, ws:// for subscriptions."""
    async with serve(app) as served:
        yield served


@pytest.fixture
async def live_gql(live: Live) -> AsyncIterator[GraphQLClient]:
    """The GraphQL client against the real server on loopback: what an attacker talks to."""
    async with httpx.AsyncClient(base_url=live.http_url.removesuffix("/graphql")) as client:
        yield GraphQLClient(client)


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://keybin.test") as client:
        yield client


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest.fixture
async def orm(settings: Settings) -> AsyncIterator[None]:
    """The ORM alone, for tests of resolvers and importers without the app."""
    await Tortoise.init(config=db.tortoise_config(settings), _enable_global_fallback=True)
    yield
    await Tortoise.close_connections()


def pytest_configure(config: Any) -> None:
    os.environ.setdefault("KEYBIN_ENV", "development")
    config.addinivalue_line("markers", "needs(tool): the test needs a program of this machine")


# What some tests need from the machine, and the one line that says how to get it.
MACHINE_TOOLS: dict[str, tuple[Any, str]] = {
    "chromium": (
        lambda: Path(CHROMIUM).is_file(),
        f"Chromium at {CHROMIUM} (Debian: apt-get install chromium fonts-dejavu-core)",
    ),
    "node": (
        lambda: bool(shutil.which("node") and shutil.which("npm")),
        "Node.js and npm (Debian: apt-get install nodejs npm)",
    ),
}


def _needs(item: pytest.Item) -> set[str]:
    needs = {str(marker.args[0]) for marker in item.iter_markers("needs")}
    module = getattr(item, "module", None)
    if module is not None and chromium in vars(module).values():
        needs.add("chromium")
    if "js_client" in getattr(item, "fixturenames", ()):
        needs.add("node")
    return needs


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    """A machine without a program the chosen tests drive hears it in one line, up front,
    rather than in a wall of tracebacks from every test that needed it."""
    wanted = {tool for item in items for tool in _needs(item)}
    missing = [
        hint for tool, (present, hint) in MACHINE_TOOLS.items() if tool in wanted and not present()
    ]
    if missing:
        pytest.exit("these tests need " + " and ".join(missing), returncode=4)


@pytest.fixture
def sql(monkeypatch: pytest.MonkeyPatch) -> StatementCounter:
    """Counts the statements a request sends (see tests/sql_count.py)."""
    counter = StatementCounter()
    counter.install(monkeypatch)
    return counter
