"""The console's OpenID Connect client against a provider answered in process (httpx
MockTransport): what it sends, and every ID token or answer it must refuse."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from console.identity_provider import Flow, IdentityProvider, ProviderError
from settings import Settings

ISSUER = "https://login.corp.example"
CLIENT_ID = "keybin-console"
SETTINGS = Settings(
    public_url="https://keybin.example",
    oidc_issuer=ISSUER,
    oidc_client_id=CLIENT_ID,
    oidc_client_secret="secret",
)
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, not the provider's


class FakeProvider:
    """Discovery, keys, token and UserInfo endpoints; each test sets what the token holds."""

    def __init__(self) -> None:
        self.discovery: dict[str, Any] = {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/auth",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/jwks",
            "userinfo_endpoint": f"{ISSUER}/me",
            "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
        }
        self.id_token = ""
        self.userinfo: dict[str, Any] = {"sub": "ada", "email": "ada@corp.example"}
        self.token_requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self.discovery)
        if path == "/jwks":
            return httpx.Response(200, json={"keys": [KEY.as_dict(private=False)]})
        if path == "/token":
            self.token_requests.append(request)
            return httpx.Response(
                200, json={"access_token": "at", "token_type": "Bearer", "id_token": self.id_token}
            )
        if path == "/me":
            return httpx.Response(200, json=self.userinfo)
        return httpx.Response(404)


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def provider(fake: FakeProvider) -> IdentityProvider:
    return IdentityProvider(SETTINGS, transport=httpx.MockTransport(fake.handle))


FLOW = Flow(state="state-1", nonce="nonce-1", code_verifier="v" * 50)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    good = {
        "iss": ISSUER,
        "sub": "ada",
        "aud": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "nonce": FLOW.nonce,
    }
    return {key: value for key, value in {**good, **changes}.items() if value is not None}


def signed(payload: dict[str, Any], key: Any = KEY, alg: str = "RS256") -> str:
    return jwt.encode({"alg": alg, "kid": "k1"}, payload, key)


def unsigned(payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(payload)}."


async def test_the_authorization_request_carries_pkce_state_and_nonce(
    provider: IdentityProvider,
) -> None:
    # when the browser is sent to the provider
    url = await provider.authorization_url(FLOW)
    # then the code flow, back to PUBLIC_URL's callback, with the flow's secrets
    query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{ISSUER}/auth?")
    assert query == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": "https://keybin.example/console/oidc/callback",
        "scope": "openid email profile",
        "state": FLOW.state,
        "nonce": FLOW.nonce,
        "code_challenge": create_s256_code_challenge(FLOW.code_verifier),
        "code_challenge_method": "S256",
    }


async def test_a_good_id_token_gives_its_claims_and_userinfo(
    provider: IdentityProvider, fake: FakeProvider
) -> None:
    # given a token signed by the provider's key, for this client, with the flow's nonce
    fake.id_token = signed(claims())
    # when the code is exchanged
    result = await provider.claims("code-1", FLOW)
    # then its claims, filled in from UserInfo; the verifier went with the code
    assert result["sub"] == "ada" and result["email"] == "ada@corp.example"
    [request] = fake.token_requests
    form = parse_qs(request.content.decode())
    assert form["code_verifier"] == [FLOW.code_verifier] and form["code"] == ["code-1"]
    assert request.headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    "id_token",
    [
        pytest.param(signed(claims(), key=OTHER_KEY), id="signed by another key"),
        pytest.param(unsigned(claims()), id="alg none"),
        pytest.param(
            signed(claims(), key=OctKey.import_key(b"secret" * 6), alg="HS256"), id="HS256"
        ),
        pytest.param(signed(claims(iss="https://evil.example")), id="another issuer"),
        pytest.param(signed(claims(aud="another-client")), id="another audience"),
        pytest.param(signed(claims(aud=None)), id="no audience"),
        pytest.param(signed(claims(nonce="replayed-nonce")), id="another nonce"),
        pytest.param(signed(claims(nonce=None)), id="no nonce"),
        pytest.param(signed(claims(exp=int(time.time()) - 3600)), id="expired"),
        pytest.param(signed(claims(sub=None)), id="no subject"),
    ],
)
async def test_an_id_token_that_fails_a_check_is_refused(
    provider: IdentityProvider, fake: FakeProvider, id_token: str
) -> None:
    fake.id_token = id_token
    with pytest.raises(ProviderError):
        await provider.claims("code-1", FLOW)


async def test_userinfo_about_someone_else_is_refused(
    provider: IdentityProvider, fake: FakeProvider
) -> None:
    # given a good ID token for Ada, and UserInfo about Mallory
    fake.id_token = signed(claims())
    fake.userinfo = {"sub": "mallory", "email": "ada@corp.example"}
    # then nothing of it is taken
    with pytest.raises(ProviderError, match="another subject"):
        await provider.claims("code-1", FLOW)


async def test_a_discovery_document_for_another_issuer_is_refused(
    provider: IdentityProvider, fake: FakeProvider
) -> None:
    fake.discovery["issuer"] = "https://evil.example"
    with pytest.raises(ProviderError, match="issuer"):
        await provider.authorization_url(FLOW)
