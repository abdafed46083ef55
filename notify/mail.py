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
        "subject": subject,
        "text": _env.get_template(f"{template}.txt").render(context),
        "html": _env.get_template(f"{template}.html").render(context),
    }


def build_message(settings: Settings, to: str, payload: dict[str, Any]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = payload["subject"]
    message["Message-ID"] = make_msgid(domain="keybin")
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
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=settings.smtp_password or None,
        start_tls=settings.smtp_starttls,
        timeout=30,
    )
