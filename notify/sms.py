"""SMS delivery: logged in development (`console`) or POSTed as JSON to a gateway (`http`)."""

from __future__ import annotations

import logging

import httpx

from settings import Settings

log = logging.getLogger("keybin.sms")


class SmsGatewayError(Exception):
    """The gateway did not accept the message now; the outbox retries it."""


class SmsRefused(Exception):
    """The gateway refused this message for good (a 4xx: a number it cannot reach, a body it
    rejects): sending it again would be refused the same way, for days."""


# 4xx answers that say "later", not "never": a timeout, too early, too many requests.
_LATER = frozenset((408, 425, 429))


async def send(settings: Settings, to: str, body: str) -> None:
    if settings.sms_backend == "console":
        log.info("SMS to %s: %s", to, body)
        return
    timeout = httpx.Timeout(settings.sms_read_timeout, connect=settings.sms_connect_timeout)
    async with httpx.AsyncClient(timeout=timeout) as client:
        response = await client.post(settings.sms_http_url, json={"to": to, "body": body})
    status = response.status_code
    if 400 <= status < 500 and status not in _LATER:
        raise SmsRefused(f"SMS gateway refused it: {status}")
    if status >= 300:
        raise SmsGatewayError(f"SMS gateway answered {status}")
