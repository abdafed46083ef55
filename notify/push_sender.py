"""Sends a queued push to FCM or APNs, and forgets tokens the service calls unregistered."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
from tortoise.queryset import QuerySet

from models.accounts import PushToken
from models.enums import PushPlatform
from notify.apns import ApnsClient
from notify.fcm import FcmClient
from notify.push import Notification, PushRejected
from settings import Settings


def _registered(notification: Notification) -> QuerySet[PushToken]:
    """The token row this push was queued for, as long as it still holds the same token."""
    return PushToken.filter(id=notification.token_id, token=notification.token)


class PushSender:
    """One per dispatcher; its HTTP clients keep their connections (APNs wants them kept)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._fcm: FcmClient | None = None
        self._apns: ApnsClient | None = None
        self._clients: list[httpx.AsyncClient] = []

    async def registered(self, payload: dict[str, Any]) -> Notification:
        """The queued push, as long as its device still holds the token it was queued for."""
        notification = Notification.from_payload(payload)
        if not await _registered(notification).exists():
            # Signed out, removed, or replaced since it was queued: that device must not see it.
            raise PushRejected("the device no longer has this push token")
        return notification

    async def send(self, notification: Notification) -> None:
        """To FCM or APNs; raises TokenUnregistered, PushRejected or PushUnavailable."""
        if notification.platform == PushPlatform.FCM:
            await self._fcm_client().send(notification)
        else:
            await self._apns_client().send(notification)

    async def forget(self, notification: Notification) -> None:
        """The service called the token unregistered: no later push goes to it."""
        await _registered(notification).delete()

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()
        self._fcm = self._apns = None

    def _fcm_client(self) -> FcmClient:
        if not self.settings.fcm_configured:
            raise PushRejected("FCM is not configured")
        if self._fcm is None:
            self._fcm = FcmClient(self.settings, self._client(http2=False))
        return self._fcm

    def _apns_client(self) -> ApnsClient:
        if not self.settings.apns_configured:
            raise PushRejected("APNs is not configured")
        if self._apns is None:
            verify: ssl.SSLContext | bool = True
            if self.settings.apns_ca_file:
                verify = ssl.create_default_context(cafile=self.settings.apns_ca_file)
            # APNs speaks HTTP/2 only.
            self._apns = ApnsClient(self.settings, self._client(http2=True, verify=verify))
        return self._apns

    def _client(self, http2: bool, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
        timeout = httpx.Timeout(
            self.settings.push_read_timeout, connect=self.settings.push_connect_timeout
        )
        client = httpx.AsyncClient(http2=http2, verify=verify, timeout=timeout)
        self._clients.append(client)
        return client
