"""Log lines: readable text in development, one JSON object per line in production, each
naming the HTTP request or WebSocket connection it was written for (X-Request-ID)."""

from __future__ import annotations

import json
import logging
import re
import secrets
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HEADER = b"x-request-id"
# An id a proxy or client sends is kept only if it cannot forge a log line or flood one.
PLAIN_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
# The ASGI messages that carry the response's headers.
STARTS = {"http.response.start", "websocket.accept", "websocket.http.response.start"}

_request_id: ContextVar[str | None] = ContextVar("keybin_request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


class RequestIds:
    """ASGI middleware: an id for each HTTP request and WebSocket connection, seen by every
    line logged while it runs and returned in the X-Request-ID response header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        request_id = _incoming(scope) or secrets.token_hex(8)
        header = (HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] in STARTS:
                # A copy: the message may be a kept answer's, sent again to other requests.
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = _request_id.set(request_id)
        await self.app(scope, receive, send_with_id)
        # Reset only when it went well: after an exception the server logs it in this same
        # task, and that line should name the request too.
        _request_id.reset(token)


def _incoming(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode("ascii") if PLAIN_ID.fullmatch(value) else None
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request_id, and the
    traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id.get(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # ASCII-escaped: a newline in a message never splits the line.
        return json.dumps(line, default=str)


class HideQueryValues(logging.Filter):
    """The server's request lines keep a query's names and drop its values: links keybin mails
    carry their secret in the query (`/reset-password?token=…`, `/confirm-email?token=…`,
    `/signup?invitation=…`), and the console's searches an email or a phone (`/console/search
    ?q=…`). Whoever reads the log must not be able to follow the link or learn the search."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(_has_query(arg) for arg in record.args):
            record.args = tuple(_without_values(arg) for arg in record.args)
        return True


def _has_query(value: object) -> bool:
    return isinstance(value, str) and value.startswith("/") and "?" in value


def _without_values(value: object) -> object:
    if not _has_query(value):
        return value
    path, _, query = str(value).partition("?")
    names = (part.partition("=")[0] for part in query.split("&") if part)
    return f"{path}?{'&'.join(f'{name}=***' for name in names)}"


# uvicorn's request lines (uvicorn.access) and its WebSocket and error lines (uvicorn.error).
SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")


def hide_query_values() -> None:
    """On the server's loggers themselves, so it holds whatever handlers uvicorn gives them."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideQueryValues) for f in logger.filters):
            logger.addFilter(HideQueryValues())


def configure(production: bool) -> None:
    """Every logger to stderr at INFO: JSON lines in production, text otherwise; request lines
    without their query's values."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if production else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    hide_query_values()


def uvicorn_options(production: bool) -> dict[str, Any]:
    """In production uvicorn configures no logging of its own: its lines (the access log
    among them) go through the JSON handler above. In development its usual text stays."""
    return {"log_config": None} if production else {}
