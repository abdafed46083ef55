"""SMS delivery: logged in development (`console`) or POSTed as JSON to a gateway (`http`)."""

from __future__ import annotations

import logging

import httpx

from settings import Settings

log = logging.getLogger("keybin.sms")


class SmsGatewayError(Exception):
    """The gateway did not accept the message; the outbox retries it."""


async def send(settings: Settings, to: str, body: str) -> None:
    if settings.sms_backend == "console":
        log.info("SMS to %s: %s", to, body)
        return
    timeout = httpx.Timeout(settings.sms_read_timeout, connect=settings.sms_connect_timeout)
    async with httpx.AsyncClient(timeout=timeout) as client:
        response = await client.post(settings.sms_http_url, json={"to": to, "body": body})
    if response.status_code >= 300:
        raise SmsGatewayError(f"SMS gateway answered {response.status_code}")
