"""The loopback FCM and APNs servers refuse forged JWTs, so passing them means something.

keybin's push JWTs come from PyJWT; the servers in tests/push_servers.py check them with
`cryptography` alone. These tests keep that check honest: a token assembled here by hand the
way Google and Apple document it passes, and each forgery (another key, `none`, HS256 with the
public key as its secret, another header, an edited payload) is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from core import clock
from tests.push_servers import JWT_BEARER, ApnsServer, FcmServer

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
Signer = Callable[[bytes], bytes]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(header: dict[str, Any], claims: dict[str, Any], sign: Signer) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def _rs256(key: rsa.RSAPrivateKey) -> Signer:
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _es256(key: ec.EllipticCurvePrivateKey) -> Signer:
    def sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return sign


def _hs256(secret: bytes) -> Signer:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def _public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _edited(token: str, **claims: Any) -> str:
    header, payload, signature = token.split(".")
    original = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{_b64(json.dumps(original | claims).encode())}.{signature}"


def _trusting(apns: ApnsServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(apns.cert_file))


# -- FCM: Google's OAuth2 JWT bearer grant -------------------------------------------------


def _assertion_claims(fcm: FcmServer) -> dict[str, Any]:
    now = int(clock.now().timestamp())
    return {
        "iss": fcm.client_email,
        "scope": FCM_SCOPE,
        "aud": fcm.token_uri,
        "iat": now,
        "exp": now + 3600,
    }


def _fcm_assertions(fcm: FcmServer) -> dict[str, str]:
    claims = _assertion_claims(fcm)
    header = {"alg": "RS256", "typ": "JWT"}
    genuine = _compact(header, claims, _rs256(fcm.key))
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "genuine": genuine,
        "another key": _compact(header, claims, _rs256(other_key)),
        "alg none": _compact({"alg": "none", "typ": "JWT"}, claims, lambda _: b""),
        "HS256 with the public key": _compact(
            {"alg": "HS256", "typ": "JWT"}, claims, _hs256(_public_pem(fcm.key))
        ),
        "an extra header field": _compact(
            header | {"jku": "https://attacker.test/jwks"}, claims, _rs256(fcm.key)
        ),
        "edited payload": _edited(genuine, iss="intruder@attacker.test"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "another key",
        "alg none",
        "HS256 with the public key",
        "an extra header field",
        "edited payload",
    ],
)
async def test_the_fcm_token_endpoint_refuses_a_forged_assertion(
    fcm_server: FcmServer, case: str
) -> None:
    # Given the loopback token endpoint, which grants a genuine assertion
    assertions = _fcm_assertions(fcm_server)
    async with httpx.AsyncClient() as http:

        async def grant(assertion: str) -> httpx.Response:
            form = {"grant_type": JWT_BEARER, "assertion": assertion}
            return await http.post(fcm_server.token_uri, data=form)

        assert (await grant(assertions["genuine"])).status_code == 200
        # When an assertion forged this way is presented
        answer = await grant(assertions[case])
    # Then no access token comes back
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert fcm_server.token_grants == 1


# -- APNs: the ES256 provider token ---------------------------------------------------------


def _provider_tokens(apns: ApnsServer) -> dict[str, str]:
    claims = {"iss": apns.team_id, "iat": int(clock.now().timestamp())}
    header = {"alg": "ES256", "kid": apns.key_id}
    genuine = _compact(header, claims, _es256(apns.key))
    return {
        "genuine": genuine,
        "another key": _compact(header, claims, _es256(ec.generate_private_key(ec.SECP256R1()))),
        "another kid": _compact(header | {"kid": "KEY7654321"}, claims, _es256(apns.key)),
        "DER signature": _compact(
            header, claims, lambda data: apns.key.sign(data, ec.ECDSA(hashes.SHA256()))
        ),
        "alg none": _compact({"alg": "none", "kid": apns.key_id}, claims, lambda _: b""),
        "HS256 with the public key": _compact(
            {"alg": "HS256", "kid": apns.key_id}, claims, _hs256(_public_pem(apns.key))
        ),
        "a typ it does not send": _compact(header | {"typ": "JWT"}, claims, _es256(apns.key)),
        "edited payload": _edited(genuine, iss="TEAM000000"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "another key",
        "another kid",
        "DER signature",
        "alg none",
        "HS256 with the public key",
        "a typ it does not send",
        "edited payload",
    ],
)
async def test_apns_refuses_a_forged_provider_token(apns_server: ApnsServer, case: str) -> None:
    # Given the loopback APNs, which delivers with a genuine provider token
    tokens = _provider_tokens(apns_server)
    async with httpx.AsyncClient(http2=True, verify=_trusting(apns_server)) as http:

        async def push(provider_token: str) -> httpx.Response:
            return await http.post(
                f"{apns_server.base_url}/3/device/a1b2c3",
                json={"aps": {"alert": {"title": "t", "body": "b"}}},
                headers={
                    "authorization": f"bearer {provider_token}",
                    "apns-topic": apns_server.topic,
                    "apns-push-type": "alert",
                },
            )

        assert (await push(tokens["genuine"])).status_code == 200
        # When a provider token forged this way is presented
        answer = await push(tokens[case])
    # Then APNs refuses it and delivers nothing more
    assert answer.status_code == 403
    assert answer.json()["reason"] == "InvalidProviderToken"
    assert len(apns_server.delivered) == 1
