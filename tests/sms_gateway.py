"""A real HTTP SMS gateway on loopback that keeps the {"to", "body"} JSON it is POSTed."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass(frozen=True)
class Sms:
    to: str
    body: str

    @property
    def code(self) -> str:
        match = re.search(r"\b(\d{4})\b", self.body)
        assert match, self.body
        return match.group(1)


class SmsGateway:
    """Start with `with SmsGateway() as gateway:`; point settings.sms_http_url at gateway.url."""

    def __init__(self) -> None:
        self.received: list[Sms] = []
        self.attempts = 0
        self.fail_next = 0  # answer this many POSTs with 500, as a failing gateway would
        self.fail_status = 500  # or with this status
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (the http.server naming)
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    data = json.loads(self.rfile.read(length))
                    sms = Sms(to=str(data["to"]), body=str(data["body"]))
                except (ValueError, KeyError, TypeError):
                    self.send_response(400)
                    self.end_headers()
                    return
                with gateway._lock:
                    gateway.attempts += 1
                    failing = gateway.fail_next > 0
                    if failing:
                        gateway.fail_next -= 1
                    else:
                        gateway.received.append(sms)
                if failing:
                    self.send_response(gateway.fail_status)
                    self.end_headers()
                    return
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": "queued"}')

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/sms"

    def __enter__(self) -> SmsGateway:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def to(self, phone: str) -> list[Sms]:
        with self._lock:
            return [sms for sms in self.received if sms.to == phone]

    async def wait_for(self, phone: str, count: int = 1, within: float = 10.0) -> list[Sms]:
        """The SMS sent to phone, once there are at least count of them."""
        deadline = time.monotonic() + within
        while len(self.to(phone)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} SMS to {phone}, got {self.to(phone)}")
            await asyncio.sleep(0.02)
        return self.to(phone)
