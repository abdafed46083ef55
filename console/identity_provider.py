"""The company's OpenID Connect provider as the console's sign-in speaks to it: discovery, the
authorization request (code flow, PKCE, state, nonce), the code exchange, the ID token check."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

# authlib's own HTTP clients want httpx2 and warn on httpx: keybin takes its protocol pieces
# (the request URI, the PKCE challenge, the ID token's claim rules) and sends with httpx.
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from settings import Settings

log = logging.getLogger("keybin.oidc")

DISCOVERY_LIFETIME = 3600.0  # seconds; the provider's keys are fetched again on an unknown kid
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
LEEWAY = 60  # seconds of clock difference tolerated on exp, iat and nbf
CALLBACK = "/console/oidc/callback"


class ProviderError(Exception):
    """The provider was out of reach, or its answer broke the protocol: nobody is signed in."""


@dataclass(frozen=True)
class Flow:
    """One sign-in's secrets: the browser that started it must bring `state` back, the ID token
    must carry `nonce`, and only the holder of `code_verifier` can spend the code."""

    state: str
    nonce: str
    code_verifier: str

    @classmethod
    def new(cls) -> Flow:
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48))


class IdentityProvider:
    """One per console app: it keeps the provider's discovery document and keys for an hour."""

    def __init__(
        self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.transport = transport  # tests answer for the provider in process
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        self.client_secret = settings.oidc_client_secret
        self.scopes = settings.oidc_scopes
        # Built from PUBLIC_URL, never from the request's Host header.
        self.redirect_uri = settings.public_url + CALLBACK
        self._metadata: dict[str, Any] | None = None
        self._fetched_at = 0.0
        self._keys: KeySet | None = None
        self._lock = asyncio.Lock()

    async def authorization_url(self, flow: Flow) -> str:
        metadata = await self.metadata()
        uri: str = prepare_grant_uri(
            metadata["authorization_endpoint"],
            client_id=self.client_id,
            response_type="code",
            redirect_uri=self.redirect_uri,
            scope=self.scopes,
            state=flow.state,
            nonce=flow.nonce,
            code_challenge=create_s256_code_challenge(flow.code_verifier),
            code_challenge_method="S256",
        )
        return uri

    async def claims(self, code: str, flow: Flow) -> dict[str, Any]:
        """The signed-in person's claims: the ID token's, checked, then the UserInfo ones
        it lacks (many providers put email and custom claims only there)."""
        metadata = await self.metadata()
        tokens = await self._exchange(metadata, code, flow)
        id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise ProviderError("the token response has no ID token or access token")
        claims = await self._checked_id_token(id_token, access_token, flow.nonce)
        if metadata.get("userinfo_endpoint"):
            info = await self._userinfo(metadata["userinfo_endpoint"], access_token)
            # Another person's UserInfo must never fill in this person's claims.
            if info.get("sub") != claims["sub"]:
                raise ProviderError("UserInfo names another subject than the ID token")
            claims = {**info, **claims}
        return claims

    async def metadata(self) -> dict[str, Any]:
        async with self._lock:
            stale = time.monotonic() - self._fetched_at > DISCOVERY_LIFETIME
            if self._metadata is None or stale:
                self._metadata = await self._discover()
                self._fetched_at = time.monotonic()
                self._keys = None
            return self._metadata

    async def _discover(self) -> dict[str, Any]:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        metadata = await self._get_json(url)
        # OpenID Connect Discovery 1.0, 4.3: the document must name the issuer asked for.
        if metadata.get("issuer") != self.issuer:
            raise ProviderError(f"discovery names issuer {metadata.get('issuer')!r}")
        for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(metadata.get(endpoint), str):
                raise ProviderError(f"discovery has no {endpoint}")
        return metadata

    async def _exchange(self, metadata: dict[str, Any], code: str, flow: Flow) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": flow.code_verifier,
        }
        # client_secret_basic, each part form-encoded first (RFC 6749, 2.3.1).
        auth = httpx.BasicAuth(quote(self.client_id, safe=""), quote(self.client_secret, safe=""))
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT, transport=self.transport) as client:
                response = await client.post(metadata["token_endpoint"], data=form, auth=auth)
        except httpx.HTTPError as error:
            raise ProviderError(f"token endpoint: {error!r}") from error
        body = _json_object(response)
        if response.status_code != 200:
            # A spent or forged code lands here (invalid_grant).
            raise ProviderError(
                f"token endpoint answered {response.status_code}: {body.get('error')}"
            )
        return body

    async def _checked_id_token(
        self, id_token: str, access_token: str, nonce: str
    ) -> dict[str, Any]:
        metadata = await self.metadata()
        # Asymmetric signatures only: never "none", nor HMAC under the client secret.
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [alg for alg in offered if alg != "none" and not alg.startswith("HS")]
        registry = JWSRegistry(algorithms=algorithms)
        try:
            try:
                token = jwt.decode(id_token, await self._key_set(), registry=registry)
            except InvalidKeyIdError:
                # The provider rotated its keys since they were fetched.
                token = jwt.decode(id_token, await self._key_set(refresh=True), registry=registry)
            claims = CodeIDToken(
                token.claims,
                token.header,
                {
                    "iss": {"essential": True, "value": self.issuer},
                    "aud": {"essential": True, "value": self.client_id},
                    "sub": {"essential": True},
                    "nonce": {"essential": True, "value": nonce},
                },
                {"nonce": nonce, "client_id": self.client_id, "access_token": access_token},
            )
            claims.validate(leeway=LEEWAY)
        except JoseError as error:
            raise ProviderError(f"ID token refused: {error!r}") from error
        return dict(claims)

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            metadata = await self.metadata()
            jwks = await self._get_json(metadata["jwks_uri"])
            try:
                self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
            except (JoseError, KeyError, TypeError, ValueError) as error:
                raise ProviderError(f"the provider's keys: {error!r}") from error
        return self._keys

    async def _userinfo(self, url: str, access_token: str) -> dict[str, Any]:
        return await self._get_json(url, headers={"Authorization": f"Bearer {access_token}"})

    async def _get_json(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT, transport=self.transport) as client:
                response = await client.get(url, headers=headers)
        except httpx.HTTPError as error:
            raise ProviderError(f"{url}: {error!r}") from error
        if response.status_code != 200:
            raise ProviderError(f"{url} answered {response.status_code}")
        return _json_object(response)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as error:
        raise ProviderError(f"{response.url} answered no JSON") from error
    if not isinstance(body, dict):
        raise ProviderError(f"{response.url} answered JSON that is no object")
    return body
