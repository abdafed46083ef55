"""The server's log keeps what a request asked for, never the secret a mailed link carries nor
what a console search typed: a whole `keybin serve` process, in development (uvicorn's text
lines) and in production (JSON lines), over HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from settings import Settings
from tests.server import keybin_server
from web.logs import HideQueryValues

SECRET = "Sekr3tT0kenFromAMailedLink"


@pytest.mark.parametrize("env", ["development", "production"])
def test_request_lines_keep_the_query_names_and_never_their_values(
    settings: Settings, tmp_path: Path, env: str
) -> None:
    log = tmp_path / "server.log"
    environment = {
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "KEYBIN_ENV": env,
        "SMTP_HOST": "127.0.0.1",  # production needs a relay; nothing is mailed here
        "SMS_BACKEND": "http",
        "SMS_HTTP_URL": "http://127.0.0.1:9/sms",
    }
    with keybin_server(environment, log=log) as (base, _):
        for path in ("/reset-password", "/confirm-email", "/signup"):
            name = "invitation" if path == "/signup" else "token"
            httpx.get(f"{base}{path}?{name}={SECRET}&lang=en")
        httpx.get(f"{base}/console/search?q=casey.cleaner%40example.com")

        async def websocket() -> None:
            ws_url = base.replace("http", "ws") + f"/graphql?token={SECRET}"
            async with connect(ws_url, subprotocols=["graphql-transport-ws"]):  # type: ignore[list-item]
                pass

        asyncio.run(websocket())
        text = _written(log, "/signup?invitation=")
    # then the lines are there, named, without their values
    assert "/reset-password?token=***&lang=***" in text
    assert "/confirm-email?token=***&lang=***" in text
    assert "/signup?invitation=***&lang=***" in text
    assert "/console/search?q=***" in text
    assert SECRET not in text
    assert "casey.cleaner" not in text


def _written(log: Path, line: str, within: float = 10.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if line in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"no line with {line!r}:\n{log.read_text()[-3000:]}")


def test_only_arguments_that_are_paths_with_a_query_change() -> None:
    import logging

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/reset-password?token=abc&x", "1.1", 200),
        None,
    )
    assert HideQueryValues().filter(record)
    assert record.getMessage() == '1.2.3.4:5 - "GET /reset-password?token=***&x=*** HTTP/1.1" 200'
    plain = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, "%s %s", ("/healthz", "a?b"), None
    )
    assert HideQueryValues().filter(plain)
    assert plain.getMessage() == "/healthz a?b"
