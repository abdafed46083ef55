"""Push to closed apps: the outbox row's payload, and the answers FCM and APNs give."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from core import clock
from models.enums import OutboxChannel, PushPlatform
from models.outbox import OutboxMessage


class PushRejected(Exception):
    """The service refused this notification for good: drop it, never retry."""


class TokenUnregistered(PushRejected):
    """The service says the device token is gone (app removed, token rotated)."""


class PushUnavailable(Exception):
    """Throttled, or the service or its credentials are failing: try again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Notification:
    """What one device is sent; never an email address or phone number."""

    token_id: int
    platform: PushPlatform
    token: str
    title: str
    body: str
    data: dict[str, str | None]

    def payload(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "platform": self.platform.value,
            "token": self.token,
            "title": self.title,
            "body": self.body,
            "data": self.data,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Notification:
        return cls(
            token_id=int(payload["token_id"]),
            platform=PushPlatform(payload["platform"]),
            token=str(payload["token"]),
            title=str(payload["title"]),
            body=str(payload["body"]),
            data=dict(payload["data"]),
        )


# Each service has its own lane in the outbox.
CHANNELS = {PushPlatform.FCM: OutboxChannel.FCM, PushPlatform.APNS: OutboxChannel.APNS}


async def queue(notification: Notification, account_id: int) -> OutboxMessage:
    """Call inside the transaction of the change; the dispatcher sends it after commit."""
    return await OutboxMessage.create(
        channel=CHANNELS[notification.platform],
        recipient=str(notification.token_id),
        payload=notification.payload(),
        account_id=account_id,
        next_attempt_at=clock.now(),
    )


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - clock.now()).total_seconds())
