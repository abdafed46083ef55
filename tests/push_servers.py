"""FCM- and APNs-like servers on loopback: they check credentials the way the real ones do."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core import clock

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class Answer:
    """A scripted reply for one request to one device token."""

    status: int
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Attempt:
    """A push request the server accepted as authentic, whatever it answered."""

    at: float
    token: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    http_version: str


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _split_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    header, claims, signature = token.split(".")
    return (
        json.loads(_b64decode(header)),
        json.loads(_b64decode(claims)),
        f"{header}.{claims}".encode(),
        _b64decode(signature),
    )


class LoopbackServer:
    """An ASGI app served by hypercorn (HTTP/2 with TLS) in this event loop, on 127.0.0.1."""

    def __init__(self, app: Starlette, certfile: Path | None = None, keyfile: Path | None = None):
        self.app = app
        self.config = Config()
        self.config.graceful_timeout = 1.0
        self.config.errorlog = None
        if certfile and keyfile:
            self.config.certfile = str(certfile)
            self.config.keyfile = str(keyfile)
        self.port = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # connections wait in the backlog until hypercorn accepts them
        self.port = sock.getsockname()[1]
        self.config.bind = [f"fd://{sock.detach()}"]
        self._task = asyncio.create_task(serve(self.app, self.config, shutdown_trigger=self._wait))

    async def _wait(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


class FcmServer:
    """Google's OAuth token endpoint and FCM HTTP v1 messages:send, for one project."""

    def __init__(self, directory: Path, project_id: str = "keybin-test") -> None:
        self.project_id = project_id
        self.client_email = f"push@{project_id}.iam.gserviceaccount.com"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.directory = directory
        self.access_tokens: set[str] = set()
        self.token_grants = 0
        self.attempts: list[Attempt] = []
        self.answers: dict[str, list[Answer]] = {}
        self.server = LoopbackServer(
            Starlette(
                routes=[
                    Route("/token", self._grant, methods=["POST"]),
                    Route("/v1/projects/{project}/messages:send", self._send, methods=["POST"]),
                ]
            )
        )

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [a.body["message"] for a in self.attempts if a.status == 200]

    def service_account_file(self) -> Path:
        """A service-account JSON key as the Firebase console hands it out."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = self.directory / "service-account.json"
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": self.project_id,
                    "private_key_id": "test-key-1",
                    "private_key": pem.decode(),
                    "client_email": self.client_email,
                    "token_uri": self.token_uri,
                }
            )
        )
        return path

    def answer(self, token: str, *answers: Answer) -> None:
        self.answers.setdefault(token, []).extend(answers)

    async def _grant(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        if form.get("grant_type") != [JWT_BEARER] or len(form.get("assertion", [])) != 1:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        try:
            header, claims, signed, signature = _split_jwt(form["assertion"][0])
            self.key.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        valid = (
            header == {"alg": "RS256", "typ": "JWT"}
            and claims.get("iss") == self.client_email
            and claims.get("scope") == FCM_SCOPE
            and claims.get("aud") == self.token_uri
            and claims.get("exp", 0) - claims.get("iat", 0) == 3600
            and abs(claims["iat"] - clock.now().timestamp()) < 300
        )
        if not valid:
            return JSONResponse({"error": "invalid_grant", "claims": claims}, status_code=400)
        access_token = secrets.token_urlsafe(24)
        self.access_tokens.add(access_token)
        self.token_grants += 1
        return JSONResponse(
            {"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"}
        )

    async def _send(self, request: Request) -> Response:
        scheme, _, access_token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or access_token not in self.access_tokens:
            return _fcm_error(401, "UNAUTHENTICATED")
        if request.path_params["project"] != self.project_id:
            return _fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH")
        body = await request.json()
        message = body.get("message", {})
        data = message.get("data", {})
        if not message.get("token") or not all(isinstance(v, str) for v in data.values()):
            return _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
        scripted = self.answers.get(message["token"])
        answer = scripted.pop(0) if scripted else Answer(200)
        self.attempts.append(
            Attempt(
                at=asyncio.get_running_loop().time(),
                token=message["token"],
                status=answer.status,
                body=body,
                headers=dict(request.headers),
                http_version=request.scope["http_version"],
            )
        )
        if answer.status != 200:
            return _fcm_error(answer.status, _RPC_STATUS[answer.status], answer.reason, answer)
        return JSONResponse({"name": f"projects/{self.project_id}/messages/{len(self.attempts)}"})


_RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _fcm_error(
    status: int, rpc_status: str, fcm_code: str = "", answer: Answer | None = None
) -> Response:
    error: dict[str, Any] = {"code": status, "message": rpc_status.lower(), "status": rpc_status}
    if fcm_code:
        error["details"] = [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}
        ]
    headers = answer.headers if answer else {}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


class ApnsServer:
    """APNs' HTTP/2 provider API over TLS, trusting one team's ES256 signing key."""

    def __init__(self, directory: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.key_id = "KEY1234567"
        self.team_id = "TEAM123456"
        self.topic = "org.keybin.app"
        self.directory = directory
        self.attempts: list[Attempt] = []
        self.answers: dict[str, list[Answer]] = {}
        self.cert_file, key_file = _self_signed_certificate(directory)
        self.server = LoopbackServer(
            Starlette(routes=[Route("/3/device/{token}", self._push, methods=["POST"])]),
            certfile=self.cert_file,
            keyfile=key_file,
        )

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.server.port}"

    @property
    def delivered(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status == 200]

    def key_file(self) -> Path:
        """The .p8 file Apple's developer portal hands out: a PKCS#8 P-256 key."""
        path = self.directory / f"AuthKey_{self.key_id}.p8"
        path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path

    def answer(self, token: str, *answers: Answer) -> None:
        self.answers.setdefault(token, []).extend(answers)

    def _provider_token_problem(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme != "bearer" or not token:
            return "MissingProviderToken"
        try:
            header, claims, signed, signature = _split_jwt(token)
        except ValueError:
            return "InvalidProviderToken"
        if len(signature) != 64:  # JOSE's raw r || s, not DER
            return "InvalidProviderToken"
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            self.key.public_key().verify(der, signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return "InvalidProviderToken"
        if header != {"alg": "ES256", "kid": self.key_id} or claims.get("iss") != self.team_id:
            return "InvalidProviderToken"
        age = clock.now().timestamp() - claims.get("iat", 0)
        if not -60 < age < 3600:
            return "ExpiredProviderToken"
        return None

    async def _push(self, request: Request) -> Response:
        problem = self._provider_token_problem(request.headers.get("authorization", ""))
        if problem:
            return JSONResponse({"reason": problem}, status_code=403)
        if request.headers.get("apns-topic") != self.topic:
            return JSONResponse({"reason": "TopicDisallowed"}, status_code=400)
        if request.headers.get("apns-push-type") != "alert":
            return JSONResponse({"reason": "InvalidPushType"}, status_code=400)
        token = request.path_params["token"]
        scripted = self.answers.get(token)
        answer = scripted.pop(0) if scripted else Answer(200)
        self.attempts.append(
            Attempt(
                at=asyncio.get_running_loop().time(),
                token=token,
                status=answer.status,
                body=await request.json(),
                headers=dict(request.headers),
                http_version=request.scope["http_version"],
            )
        )
        apns_id = {"apns-id": secrets.token_hex(16)}
        if answer.status != 200:
            return JSONResponse(
                {"reason": answer.reason},
                status_code=answer.status,
                headers={**apns_id, **answer.headers},
            )
        return Response(status_code=200, headers=apns_id)


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA, so a client can be told to trust it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "apns.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "apns-cert.pem"
    key_file = directory / "apns-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def push_settings(fcm: FcmServer, apns: ApnsServer) -> dict[str, Any]:
    """Settings that send pushes to these two servers."""
    return {
        "fcm_project_id": fcm.project_id,
        "fcm_service_account_file": str(fcm.service_account_file()),
        "fcm_base_url": fcm.base_url,
        "apns_key_file": str(apns.key_file()),
        "apns_key_id": apns.key_id,
        "apns_team_id": apns.team_id,
        "apns_topic": apns.topic,
        "apns_base_url": apns.base_url,
        "apns_ca_file": str(apns.cert_file),
    }
