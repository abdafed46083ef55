"""schemathesis against a real server: unauthenticated, as an agent, as a contractor.

No 5xx, and nothing unexpected: the server log must hold no traceback (errors
are masked outside development, so the log is where an unexpected one shows).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tortoise import Tortoise

import db
from settings import Settings
from tests.factories import SIGN_IN, make_agent, make_contractor, make_listing, make_lockbox
from tests.server import keybin_server

ROOT = Path(__file__).resolve().parent.parent
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
FUZZ_SECONDS = "25"


async def _seed(settings: Settings) -> tuple[str, str]:
    await Tortoise.init(config=db.tortoise_config(settings), _enable_global_fallback=True)
    try:
        agent = await make_agent()
        await make_lockbox(agent, await make_listing(agent))
        contractor = await make_contractor()
        return agent.email or "", contractor.email or ""
    finally:
        await Tortoise.close_connections()


def _token(base: str, login: str) -> str:
    variables = {
        "input": {
            "login": login,
            "password": "Secret123",
            "deviceId": "fuzz",
            "deviceName": "fuzzer",
        }
    }
    body = httpx.post(f"{base}/graphql", json={"query": SIGN_IN, "variables": variables}).json()
    token: str = body["data"]["signIn"]["token"]
    return token


def _fuzz(base: str, token: str | None) -> subprocess.CompletedProcess[str]:
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    return subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{base}/graphql",
            "--max-time",
            FUZZ_SECONDS,
            "--workers",
            "1",
            "--checks",
            "keybin_no_unexpected_error",
            "--suppress-health-check",
            "all",
            *headers,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz_checks", "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize("who", ["anonymous", "agent", "contractor"])
def test_fuzzing_finds_no_server_error(settings: Settings, tmp_path: Path, who: str) -> None:
    agent_login, contractor_login = asyncio.run(_seed(settings))
    log = tmp_path / "server.log"
    env = {
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        # masking on, introspection on (schemathesis reads the schema)
        "KEYBIN_ENV": "staging",
        "RATE_LIMIT_PER_MINUTE": "100000",
        "RATE_LIMIT_PER_ACCOUNT_PER_MINUTE": "100000",
    }
    with keybin_server(env, log=log) as (base, _):
        login = {"agent": agent_login, "contractor": contractor_login}.get(who)
        result = _fuzz(base, _token(base, login) if login else None)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    server_log = log.read_text()
    assert "Traceback" not in server_log, server_log[-4000:]
