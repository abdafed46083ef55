"""Apple Push Notification service: HTTP/2 with an ES256 provider token."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core import clock
from notify.push import (
    Notification,
    PushRejected,
    PushUnavailable,
    TokenUnregistered,
    retry_after,
)
from settings import Settings

# Apple refuses provider tokens older than an hour and throttles renewing more often
# than every 20 minutes: renew at 50.
PROVIDER_TOKEN_LIFETIME = 50 * 60
GONE = {"BadDeviceToken", "Unregistered"}
STALE_PROVIDER_TOKEN = {"ExpiredProviderToken", "InvalidProviderToken"}


class ApnsClient:
    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.http = http
        self.base_url = settings.apns_base_url
        self.topic = settings.apns_topic
        self.key_id = settings.apns_key_id
        self.team_id = settings.apns_team_id
        self._key_file = settings.apns_key_file
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._token: str | None = None
        self._issued_at = 0.0
        # Until a push has gone through, one at a time opens the connection. Several pushes
        # waiting on one HTTP/2 connection being opened would each, should it fail, open
        # another on that failed connection, which the pool has let go of and never closes
        # (httpcore 1.0). And when APNs cannot be reached, one push finds it out, not all.
        self._opening = asyncio.Lock()
        self._connected = False
        self._failures = 0

    async def send(self, notification: Notification) -> None:
        if not self._connected:
            failures = self._failures
            async with self._opening:
                if self._failures != failures:
                    raise PushUnavailable(
                        "APNs not reached: the connection another push was opening failed"
                    )
                if not self._connected:
                    await self._send(notification)
                    return
        await self._send(notification)

    async def _send(self, notification: Notification) -> None:
        try:
            response = await self._post(notification)
        except (httpx.TransportError, TimeoutError, asyncio.CancelledError):
            self._connected = False
            self._failures += 1
            raise
        self._connected = True
        self._judge(response)

    async def _post(self, notification: Notification) -> httpx.Response:
        body: dict[str, Any] = {
            "aps": {
                "alert": {"title": notification.title, "body": notification.body},
                "sound": "default",
            },
            **notification.data,
        }
        return await self.http.post(
            f"{self.base_url}/3/device/{quote(notification.token, safe='')}",
            json=body,
            headers={
                "authorization": f"bearer {self._provider_token()}",
                "apns-topic": self.topic,
                "apns-push-type": "alert",
                "apns-priority": "10",
            },
        )

    def _judge(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 300:
            return
        reason = _reason(response)
        what = f"APNs answered {status} {reason}"
        if status == 410 or reason in GONE:
            raise TokenUnregistered(what)
        if status == 403 and reason in STALE_PROVIDER_TOKEN:
            self._token = None
            raise PushUnavailable(what)
        if status == 429 or status >= 500:
            raise PushUnavailable(what, retry_after(response.headers.get("retry-after")))
        raise PushRejected(what)

    def _provider_token(self) -> str:
        now = clock.now().timestamp()
        if self._token is None or now - self._issued_at >= PROVIDER_TOKEN_LIFETIME:
            # Apple wants {"alg":"ES256","kid":...} and nothing else: typ=None drops PyJWT's
            # default "typ":"JWT". The signature is JOSE's raw r || s, as APNs checks it.
            self._token = jwt.encode(
                {"iss": self.team_id, "iat": int(now)},
                self._signing_key(),
                algorithm="ES256",
                headers={"kid": self.key_id, "typ": None},
            )
            self._issued_at = now
        return self._token

    def _signing_key(self) -> ec.EllipticCurvePrivateKey:
        if self._key is None:
            try:
                key = serialization.load_pem_private_key(
                    Path(self._key_file).read_bytes(), password=None
                )
            except (OSError, ValueError) as error:
                raise PushUnavailable(f"APNs key file unusable: {error}") from error
            if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
                raise PushUnavailable("the APNs key file is not an EC P-256 key")
            self._key = key
        return self._key


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason", ""))
    except (ValueError, AttributeError):
        return ""
