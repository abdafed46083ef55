"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

from __future__ import annotations

import asyncio
import email
import socket
import time
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, inbox: list[Message], recipients: list[str], refuse: dict[str, str]) -> None:
        self.inbox = inbox
        self.recipients = recipients
        self.refuse = refuse

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.recipients.extend(envelope.rcpt_tos)
        self.inbox.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.inbox: list[Message] = []
        self.recipients: list[str] = []  # every RCPT TO of the mails taken, in order
        # An address and the relay's answer to RCPT TO for it ("550 5.1.1 no such user").
        self.refuse: dict[str, str] = {}
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(
            _Handler(self.inbox, self.recipients, self.refuse), hostname="127.0.0.1", port=self.port
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def wait_for(self, count: int = 1, within: float = 5.0) -> list[Message]:
        deadline = time.monotonic() + within
        while len(self.inbox) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} mail(s), got {len(self.inbox)}")
            await asyncio.sleep(0.02)
        return self.inbox


def text_body(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text/plain part")
