"""Email: rendering from Jinja2 templates (text and HTML) and sending over SMTP."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
from email_validator import EmailNotValidError, validate_email
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from core.text import one_line
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


class Undeliverable(ValueError):
    """This mail can never be sent as it stands (its address, its headers): no retry helps."""


def build_message(settings: Settings, to: str, payload: dict[str, Any]) -> EmailMessage:
    message = EmailMessage()
    # Headers come from stored text (names, listing addresses, old addresses): a line break
    # there would end the header, so each is made one line whatever was stored.
    message["From"] = one_line(settings.mail_from)
    message["To"] = one_line(to)
    message["Subject"] = one_line(payload["subject"])
    message["Message-ID"] = one_line(payload.get("message_id") or make_msgid(domain="keybin"))
    message.set_content(payload["text"])
    message.add_alternative(payload["html"], subtype="html")
    return message


def _refused_for_good(error: aiosmtplib.SMTPRecipientsRefused) -> bool:
    """The relay's 5xx to RCPT: that mailbox will not take the mail however often it comes."""
    return all(500 <= refusal.code < 600 for refusal in error.recipients)


def _one_mailbox(to: str) -> None:
    """Refuse what is not one plain address: one stored before addresses were checked this
    strictly may be a list, a group or a display name, which would reach other mailboxes."""
    try:
        validate_email(
            to, check_deliverability=False, globally_deliverable=False, allow_smtputf8=True
        )
    except EmailNotValidError as error:
        raise Undeliverable(f"not one mailbox: {error}") from error


async def send(settings: Settings, to: str, payload: dict[str, Any]) -> None:
    """Send one mail. Raises Undeliverable when it never can be, and aiosmtplib.SMTPException
    or OSError for the outbox to retry."""
    _one_mailbox(to)
    try:
        message = build_message(settings, to, payload)
    except ValueError as error:
        raise Undeliverable(f"the mail cannot be written: {error}") from error
    if not settings.smtp_host:
        # Development without a relay: the mail is shown in the log instead.
        log.info("mail (no SMTP_HOST) to %s: %s\n%s", to, message["Subject"], payload["text"])
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
        # The envelope names the stored address alone, never what the To header parses into.
        await relay.send_message(message, sender=settings.mail_from, recipients=[to])
    except aiosmtplib.SMTPRecipientsRefused as error:
        if _refused_for_good(error):
            raise Undeliverable(f"the relay refused the address: {error}") from error
        raise
    except ValueError as error:
        # aiosmtplib's own check: the address cannot be written in an SMTP command.
        raise Undeliverable(f"not an address mail can go to: {error}") from error
    finally:
        # No QUIT: once the relay has taken the message, waiting on its answer to QUIT
        # could only turn a sent mail into a retry.
        relay.close()
