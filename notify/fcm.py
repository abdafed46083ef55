"""Firebase Cloud Messaging HTTP v1: an OAuth2 token from the service account, then send."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core import clock
from notify.push import (
    Notification,
    PushRejected,
    PushUnavailable,
    TokenUnregistered,
    retry_after,
)
from settings import Settings

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
# Renew the access token a little before Google's expiry, never mid-request.
REFRESH_MARGIN = 300


@dataclass(frozen=True)
class ServiceAccount:
    """The parts of a Google service-account JSON key that the JWT bearer grant needs."""

    client_email: str
    private_key: rsa.RSAPrivateKey
    token_uri: str

    @classmethod
    def load(cls, path: str) -> ServiceAccount:
        info = json.loads(Path(path).read_text())
        key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the service account's private_key is not an RSA key")
        return cls(client_email=info["client_email"], private_key=key, token_uri=info["token_uri"])


class FcmClient:
    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.http = http
        self.send_url = (
            f"{settings.fcm_base_url}/v1/projects/{settings.fcm_project_id}/messages:send"
        )
        self._key_file = settings.fcm_service_account_file
        self._account: ServiceAccount | None = None
        self._access_token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def send(self, notification: Notification) -> None:
        access_token = await self._token()
        message = {
            "token": notification.token,
            "notification": {"title": notification.title, "body": notification.body},
            # FCM's data map takes strings only; an absent value is simply left out.
            "data": {k: v for k, v in notification.data.items() if v is not None},
        }
        response = await self.http.post(
            self.send_url,
            json={"message": message},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        self._judge(response)

    def _judge(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 300:
            return
        code = _error_code(response)
        what = f"FCM answered {status} {code}"
        if status == 404 or code == "UNREGISTERED":
            raise TokenUnregistered(what)
        if status == 401:
            self._access_token = None  # revoked early: fetch a fresh one before the retry
            raise PushUnavailable(what)
        if status == 429 or status >= 500:
            raise PushUnavailable(what, retry_after(response.headers.get("retry-after")))
        raise PushRejected(what)

    async def _token(self) -> str:
        async with self._lock:
            now = clock.now().timestamp()
            if self._access_token is None or now >= self._expires_at - REFRESH_MARGIN:
                self._access_token, lifetime = await self._fetch_token(int(now))
                self._expires_at = now + lifetime
            return self._access_token

    async def _fetch_token(self, now: int) -> tuple[str, float]:
        """The OAuth2 JWT bearer grant (RFC 7523) with the service account's own key."""
        account = self._service_account()
        # PyJWT writes the header Google expects, {"alg":"RS256","typ":"JWT"}.
        assertion = jwt.encode(
            {
                "iss": account.client_email,
                "scope": SCOPE,
                "aud": account.token_uri,
                "iat": now,
                "exp": now + ASSERTION_LIFETIME,
            },
            account.private_key,
            algorithm="RS256",
        )
        response = await self.http.post(
            account.token_uri, data={"grant_type": JWT_BEARER, "assertion": assertion}
        )
        if response.status_code != 200:
            raise PushUnavailable(
                f"FCM token endpoint answered {response.status_code}",
                retry_after(response.headers.get("retry-after")),
            )
        try:
            body = response.json()
            return str(body["access_token"]), float(body.get("expires_in", ASSERTION_LIFETIME))
        except (ValueError, KeyError, TypeError) as error:
            raise PushUnavailable(f"FCM token endpoint answered nonsense: {error}") from error

    def _service_account(self) -> ServiceAccount:
        if self._account is None:
            try:
                self._account = ServiceAccount.load(self._key_file)
            except (OSError, ValueError, KeyError, TypeError) as error:
                # Kept retryable: once the operator fixes the file, the queue drains.
                raise PushUnavailable(f"FCM service account file unusable: {error}") from error
        return self._account


def _error_code(response: httpx.Response) -> str:
    """FCM's own error code (UNREGISTERED, ...) from the details, else the RPC status."""
    try:
        error: dict[str, Any] = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return ""
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status", ""))
