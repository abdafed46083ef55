"""Email: rendering from Jinja2 templates (text and HTML) and sending over SMTP."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from settings import Settings

log = logging.getLogger("keybin.mail")

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def render_email(template: str, context: dict[str, Any]) -> dict[str, str]:
    """Subject, text and HTML for `templates/<template>.{subject,txt,html}`."""
    subject = _env.get_template(f"{template}.subject").render(context).strip()
    return {
        # Kept with the rendered mail: a retry after a relay's late answer is the same
        # message, one a relay or mailbox can recognise as already received.
        "message_id": make_msgid(domain="keybin"),
        "subject": subject,
        "text": _env.get_template(f"{template}.txt").render(context),
        "html": _env.get_template(f"{template}.html").render(context),
    }


def build_message(settings: Settings, to: str, payload: dict[str, Any]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = payload["subject"]
    message["Message-ID"] = payload.get("message_id") or make_msgid(domain="keybin")
    message.set_content(payload["text"])
    message.add_alternative(payload["html"], subtype="html")
    return message


async def send(settings: Settings, to: str, payload: dict[str, Any]) -> None:
    """Send one mail; raises aiosmtplib.SMTPException or OSError for the outbox to retry."""
    message = build_message(settings, to, payload)
    if not settings.smtp_host:
        # Development without a relay: the mail is shown in the log instead.
        log.info("mail (no SMTP_HOST) to %s: %s\n%s", to, payload["subject"], payload["text"])
        return
    relay = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=settings.smtp_password or None,
        start_tls=settings.smtp_starttls,
        timeout=settings.smtp_timeout,  # each command; aiosmtplib's own default is 60 s
    )
    # The connection and the greeting have their own limit: a relay that accepts and
    # never greets is the usual way for one to hang.
    await relay.connect(timeout=settings.smtp_connect_timeout)
    try:
        await relay.send_message(message)
    finally:
        # No QUIT: once the relay has taken the message, waiting on its answer to QUIT
        # could only turn a sent mail into a retry.
        relay.close()
