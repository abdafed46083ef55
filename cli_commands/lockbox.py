"""`keybin lockbox`: a simulated lockbox for development, and opening one as a phone would."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ble.b64 import b64url_decode, b64url_encode
from ble.client import NoCredentialError, Visit, find_and_open
from ble.jwks import InvalidJwk, parse_jwks, raw_public_key
from ble.messages import ProtocolError
from ble.outcomes import AccessOutcome
from ble.records import peek_record
from ble.simulator import LockboxSimulator
from ble.socket_transport import Address, SocketTransport, parse_address, serve_lockbox
from ble.transport import LockboxNotFoundError, NoAdapterError, Transport, TransportError
from cli import register
from settings import Settings

NO_ADAPTER_EXIT = 2
DEFAULT_LISTEN = "127.0.0.1:8765"
DEFAULT_DEVICE_KEY = "~/.keybin/device-key.json"

SIGN_IN = """
mutation SignIn($input: SignInInput!) {
  signIn(input: $input) { token account { firstName lastName } userErrors { code message } }
}
"""
SYNC_CREDENTIALS = """
mutation Sync($input: SyncCredentialsInput!) {
  syncCredentials(input: $input) {
    bundle {
      expiresAt
      credentials { token lockboxSerial notBefore expiresAt }
      revocations { lockboxSerial token }
    }
    userErrors { code message }
  }
}
"""
REPORT_EVENTS = """
mutation Report($input: ReportLockboxEventsInput!) {
  reportLockboxEvents(input: $input) { accepted duplicates userErrors { code message } }
}
"""


class CommandError(Exception):
    """A failure to report in one line, with the exit code to leave with."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@register
def add_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    lockbox = sub.add_parser(
        "lockbox",
        help="simulate a lockbox, or open one as the app does",
        description="Development tools for the Bluetooth lockbox protocol (see DESIGN.md).",
    )
    actions = lockbox.add_subparsers(dest="lockbox_command", required=True, metavar="ACTION")
    _add_simulate(actions)
    _add_open(actions)


def _add_simulate(actions: argparse._SubParsersAction[Any]) -> None:
    simulate = actions.add_parser(
        "simulate",
        help="run a simulated lockbox on a local socket",
        description="Runs the lockbox logic (credential checks, access log) on a local TCP or "
        "Unix socket that carries the same GATT frames as Bluetooth, for `keybin lockbox open "
        "--via-socket`. It trusts the server's signing keys: from the key file beside the "
        "database (or KEYBIN_SIGNING_KEYS), or fetched from --jwks-url. Stop it with Ctrl-C.",
    )
    simulate.add_argument("--serial", required=True, help="the lockbox serial number")
    simulate.add_argument(
        "--secret",
        help="the lockbox secret (base32); default: the lockbox's secret in the database",
    )
    simulate.add_argument(
        "--time-zone",
        help="IANA zone for One Day Codes; default: the lockbox's region, else UTC",
    )
    simulate.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        help=f"HOST:PORT or unix:PATH to listen on (default {DEFAULT_LISTEN}; port 0 picks one)",
    )
    simulate.add_argument(
        "--jwks-url", help="trust the keys published here, e.g. http://HOST/.well-known/jwks.json"
    )
    simulate.add_argument("--mtu", type=int, default=185, help="ATT MTU to emulate (23-517)")
    simulate.set_defaults(func=_simulate)


def _add_open(actions: argparse._SubParsersAction[Any]) -> None:
    opener = actions.add_parser(
        "open",
        help="sign in, fetch credentials and open a lockbox over Bluetooth",
        description="Does what the app does: signs in with this device's key, syncs "
        "credentials, opens the lockbox over Bluetooth (or a simulated one with --via-socket) "
        "and uploads the lockbox's access records. Exit codes: 0 opened, 1 refused or failed, "
        "2 no Bluetooth adapter.",
    )
    opener.add_argument("--serial", required=True, help="the lockbox serial number")
    opener.add_argument("--login", required=True, help="email address or 9-digit Key ID")
    opener.add_argument("--password", help="the account password (asked for when left out)")
    opener.add_argument("--api", help="the server's base URL (default: PUBLIC_URL)")
    opener.add_argument(
        "--device-key",
        default=DEFAULT_DEVICE_KEY,
        help=f"this device's id and Ed25519 key, made on first use (default {DEFAULT_DEVICE_KEY})",
    )
    opener.add_argument(
        "--via-socket",
        metavar="HOST:PORT",
        help="reach a `keybin lockbox simulate` at HOST:PORT (or unix:PATH) instead of Bluetooth",
    )
    opener.set_defaults(func=_open)


# ---- simulate -------------------------------------------------------------------------


class NarratedLockbox(LockboxSimulator):
    """A simulator that says what it does, for whoever watches the terminal."""

    def present(self, credential: str, sig: str, nonce: bytes | None) -> AccessOutcome:
        return self._said(super().present(credential, sig, nonce))

    def enter_code(self, code: str) -> AccessOutcome:
        return self._said(super().enter_code(code))

    def _said(self, outcome: AccessOutcome) -> AccessOutcome:
        record = peek_record(self.pending_records()[-1])
        who = f" sub={record.sub} jti={record.jti}" if record.sub else ""
        _say(f"seq {record.seq}: {record.method} -> {outcome}{who}")
        return outcome


async def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    try:
        address = parse_address(args.listen)
        secret, zone = await _lockbox_secret(args, settings)
        trusted = await _trusted_keys(args, settings)
        lockbox = NarratedLockbox(
            args.serial, secret, trusted, lambda: datetime.now(UTC), time_zone=zone
        )
    except (CommandError, ValueError, ZoneInfoNotFoundError) as error:  # secret, zone, address
        print(f"keybin: {error}", file=sys.stderr)
        return error.code if isinstance(error, CommandError) else 1
    server = await serve_lockbox(lockbox, address, mtu=args.mtu, log=_say)
    async with server:
        bound = _bound_address(server, address)
        _say(f"lockbox {args.serial} listening on {bound} (time zone {zone})")
        _say(f"trusting server keys: {', '.join(sorted(trusted)) or 'none'}")
        with contextlib.suppress(asyncio.CancelledError):
            await server.serve_forever()
    return 0


async def _lockbox_secret(args: argparse.Namespace, settings: Settings) -> tuple[str, str]:
    if args.secret:
        return args.secret, args.time_zone or "UTC"
    import db
    from models.listings import Lockbox

    async with db.connected(settings):
        lockbox = await Lockbox.get_or_none(serial_number=args.serial).select_related("region")
    if lockbox is None:
        raise CommandError(f"lockbox {args.serial} is not in the database: pass --secret")
    zone = args.time_zone or (lockbox.region.time_zone if lockbox.region else "UTC")
    return lockbox.secret, zone


async def _trusted_keys(
    args: argparse.Namespace, settings: Settings
) -> Mapping[str, Ed25519PublicKey]:
    if not args.jwks_url:
        from resolvers.signing_keys import keyring

        return keyring(settings).published()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(args.jwks_url)
            response.raise_for_status()
        return parse_jwks(response.json())
    except (httpx.HTTPError, ValueError, InvalidJwk) as error:
        raise CommandError(
            f"cannot load the server's keys from {args.jwks_url}: {error}"
        ) from error


def _bound_address(server: asyncio.Server, address: Address) -> str:
    if address.path:
        return str(address)
    host, port = server.sockets[0].getsockname()[:2]
    return f"{host}:{port}"


def _say(text: str) -> None:
    print(text, flush=True)


# ---- open -----------------------------------------------------------------------------


async def _open(args: argparse.Namespace, settings: Settings) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one request per line is noise here
    try:
        return await _open_lockbox(args, settings)
    except CommandError as error:
        print(f"keybin: {error}", file=sys.stderr)
        return error.code


async def _open_lockbox(args: argparse.Namespace, settings: Settings) -> int:
    device_id, device_key = load_device_key(args.device_key)
    password = args.password if args.password is not None else getpass.getpass("Password: ")
    api = (args.api or settings.public_url).rstrip("/")
    async with httpx.AsyncClient(base_url=api, timeout=15) as http:
        token = await _sign_in(http, args.login, password, device_id, device_key)
        credentials, revocations = await _sync(http, token, device_id)
        visit = await _visit(args, credentials, device_key, revocations)
        print(f"lockbox {args.serial}: {visit.outcome}")
        if visit.records:
            report = await _call(
                http,
                REPORT_EVENTS,
                {"input": {"lockboxSerial": args.serial, "records": visit.records}},
                token,
            )
            print(
                f"uploaded {len(visit.records)} access records: {report['accepted']} new, "
                f"{report['duplicates']} already known"
            )
    return 0 if visit.outcome is AccessOutcome.OPENED else 1


async def _sign_in(
    http: httpx.AsyncClient, login: str, password: str, device_id: str, key: Ed25519PrivateKey
) -> str:
    public_key = b64url_encode(raw_public_key(key.public_key()))
    variables = {
        "input": {
            "login": login,
            "password": password,
            "deviceId": device_id,
            "deviceName": "keybin command line",
            "devicePublicKey": public_key,
        }
    }
    payload = await _call(http, SIGN_IN, variables)
    account = payload["account"]
    print(f"signed in as {account['firstName']} {account['lastName']}")
    return str(payload["token"])


async def _sync(http: httpx.AsyncClient, token: str, device_id: str) -> tuple[list[str], list[str]]:
    """The credentials, and the revocation lists the phone carries to the lockboxes."""
    payload = await _call(http, SYNC_CREDENTIALS, {"input": {"deviceId": device_id}}, token)
    credentials = payload["bundle"]["credentials"]
    print(f"{len(credentials)} credential(s), good until {payload['bundle']['expiresAt']}")
    revocations = [item["token"] for item in payload["bundle"]["revocations"]]
    return [credential["token"] for credential in credentials], revocations


async def _visit(
    args: argparse.Namespace,
    credentials: list[str],
    device_key: Ed25519PrivateKey,
    revocations: list[str],
) -> Visit:
    factory: Callable[[str], Transport]
    if args.via_socket:
        try:
            address = parse_address(args.via_socket)
        except ValueError as error:
            raise CommandError(str(error)) from error

        def factory(serial: str) -> Transport:
            return SocketTransport(address, serial)
    else:
        from ble.bleak_transport import BleakTransport

        factory = BleakTransport
    try:
        return await find_and_open(
            args.serial, credentials, device_key, factory, revocations=revocations
        )
    except NoCredentialError as error:
        raise CommandError(f"this account has no credential for lockbox {args.serial}") from error
    except NoAdapterError as error:
        raise CommandError(
            "no Bluetooth adapter here (or BlueZ is not running); "
            "use --via-socket to reach a simulated lockbox",
            NO_ADAPTER_EXIT,
        ) from error
    except LockboxNotFoundError as error:
        raise CommandError(f"lockbox {args.serial} not found: {error}") from error
    except (TransportError, ProtocolError, TimeoutError) as error:
        raise CommandError(f"lost the lockbox {args.serial}: {error or 'timed out'}") from error


async def _call(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    """The one payload of a mutation; its userErrors become the command's error."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise CommandError(f"the server at {http.base_url} did not answer: {error}") from error
    if body.get("errors"):
        raise CommandError(f"the server refused: {body['errors'][0].get('message')}")
    payload: dict[str, Any] = next(iter(body["data"].values()))
    if payload["userErrors"]:
        first = payload["userErrors"][0]
        raise CommandError(f"{first['message']} ({first['code']})")
    return payload


def load_device_key(where: str) -> tuple[str, Ed25519PrivateKey]:
    """This installation's device id and key; made once, kept private to its owner."""
    path = Path(where).expanduser()
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        document = {"device_id": str(uuid.uuid4()), "private_key": b64url_encode(raw)}
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle)
    try:
        document = json.loads(path.read_text())
        key = Ed25519PrivateKey.from_private_bytes(b64url_decode(document["private_key"]))
        return str(document["device_id"]), key
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CommandError(f"{path} is not a keybin device key: {error}") from error
