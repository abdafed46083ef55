"""`keybin serve --demo`: demo data loaded once, announced, and usable over HTTP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from demo import CONTRACTOR_EMAIL, PASSWORD, PIN, load_demo
from models.accounts import Account
from models.enums import AccountKind
from models.grants import Grant
from models.listings import Listing, Lockbox, Region
from resolvers import clock
from settings import Settings

KEYBIN = Path(sys.executable).parent / "keybin"
SIGN_IN = """
mutation($input: SignInInput!) { signIn(input: $input) { token userErrors { code message } } }
"""
ME = "{ me { ... on Agent { keyId listings { totalCount } } } }"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_healthy(base_url: str, server: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become healthy")


def test_serve_demo_prints_sign_ins_that_work(tmp_path: Path) -> None:
    # given
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SMTP_"))}
    env.update(DATABASE_URL=f"sqlite://{tmp_path / 'demo.sqlite3'}", KEYBIN_ENV="development")
    output, log = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    # when
    with output.open("wb") as stdout, log.open("wb") as stderr:
        server = subprocess.Popen(
            [str(KEYBIN), "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        wait_healthy(base_url, server)
        printed = output.read_text()
        # then: the announcement names the URL and the sign-ins
        assert f"{base_url}/graphql" in printed
        assert "GraphiQL" in printed
        assert f"password {PASSWORD}, PIN {PIN}" in printed
        assert CONTRACTOR_EMAIL in printed
        assert "alex.morgan@example.com" in printed
        assert "curl -s" in printed
        key_ids = re.findall(r"Key ID (\d{9})", printed)
        assert len(key_ids) == 3
        # ... and signing in as the first demo agent works over HTTP
        variables = {
            "input": {
                "login": key_ids[0],
                "password": PASSWORD,
                "deviceId": "demo-test",
                "deviceName": "Test",
            }
        }
        signed_in = httpx.post(
            f"{base_url}/graphql", json={"query": SIGN_IN, "variables": variables}, timeout=30
        ).json()["data"]["signIn"]
        assert signed_in["userErrors"] == []
        me = httpx.post(
            f"{base_url}/graphql",
            json={"query": ME},
            headers={"Authorization": f"Bearer {signed_in['token']}"},
            timeout=30,
        ).json()["data"]["me"]
        assert me == {"keyId": key_ids[0], "listings": {"totalCount": 3}}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            # uvicorn shuts down gracefully, then re-raises the signal it caught.
            assert server.wait(timeout=10) in (0, -signal.SIGTERM)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    assert "Application shutdown complete" in log.read_text()


async def test_loading_the_demo_twice_duplicates_nothing(orm: None, settings: Settings) -> None:
    # given
    await load_demo(settings, announce=False)
    secrets_before = dict(await Lockbox.all().values_list("serial_number", "secret"))
    # when
    await load_demo(settings, announce=False)
    # then
    assert await Region.all().count() == 2
    assert await Account.filter(kind=AccountKind.AGENT).count() == 3
    assert await Account.filter(kind=AccountKind.CONTRACTOR).count() == 1
    assert await Listing.all().count() == 6
    assert await Lockbox.all().count() == 6
    assert await Grant.all().count() == 2
    assert dict(await Lockbox.all().values_list("serial_number", "secret")) == secrets_before


async def test_the_demo_has_one_grant_open_now_and_one_tomorrow(
    orm: None, settings: Settings
) -> None:
    # when
    await load_demo(settings, announce=False)
    # then
    now = clock.now()
    grants = await Grant.all().prefetch_related("lockbox", "grantee").order_by("starts_at")
    active, scheduled = grants
    assert active.starts_at <= now < active.ends_at
    assert now < scheduled.starts_at
    assert scheduled.starts_at.date() > now.date()
    for grant in grants:
        assert grant.lockbox.ble
        assert grant.grantee is not None and grant.grantee.email == CONTRACTOR_EMAIL
    emails = await Account.filter(kind=AccountKind.AGENT).values_list("email", flat=True)
    assert len(emails) - len(set(emails)) == 1  # two agent accounts, one person
    assert {True, False} == set(await Lockbox.all().values_list("ble", flat=True))


async def test_the_demo_refuses_a_production_database(orm: None, settings: Settings) -> None:
    with pytest.raises(SystemExit):
        await load_demo(settings.with_(env="production"), announce=False)
    assert await Account.all().count() == 0
