"""`keybin lockbox`: a simulated lockbox, and finding and opening one as a phone would."""

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ble.b64 import b64url_decode, b64url_encode
from ble.client import (
    NoCredentialError,
    Upload,
    UploadFailed,
    Visit,
    choose_credential,
    find_and_open,
)
from ble.jwks import InvalidJwk, parse_jwks, raw_public_key
from ble.messages import ProtocolError
from ble.outcomes import AccessOutcome
from ble.receipt import ReceiptVerdict
from ble.records import peek_record
from ble.scan import DEFAULT_SCAN_SECONDS, Air, FoundLockbox, scan
from ble.serials import normalize_serial
from ble.simulator import ADVERTISING_WINDOW, LockboxSimulator
from ble.socket_transport import (
    Address,
    SocketAir,
    SocketTransport,
    parse_address,
    serve_lockbox,
)
from ble.transport import LockboxNotFoundError, NoAdapterError, Transport, TransportError
from cli_commands import register
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
  reportLockboxEvents(input: $input) {
    accepted duplicates receipt userErrors { code message }
  }
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
    _add_scan(actions)
    _add_open(actions)


def _add_simulate(actions: argparse._SubParsersAction[Any]) -> None:
    simulate = actions.add_parser(
        "simulate",
        help="run a simulated lockbox on a local socket",
        description="Runs the lockbox logic (credential checks, access log) on a local TCP or "
        "Unix socket that carries the same GATT frames as Bluetooth, for `keybin lockbox open "
        "--via-socket`. It trusts the server's signing keys: from the key file beside the "
        "database (or KEYBIN_SIGNING_KEYS), or fetched from --jwks-url. Press Enter to press "
        "ENT on its keypad: it then advertises its serial for `keybin lockbox scan`. Stop it "
        "with Ctrl-C.",
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
    window = int(ADVERTISING_WINDOW.total_seconds())
    simulate.add_argument(
        "--advertise-seconds",
        type=float,
        default=window,
        help=f"how long it advertises its serial after ENT (default {window})",
    )
    simulate.set_defaults(func=_simulate)


def _add_scan(actions: argparse._SubParsersAction[Any]) -> None:
    scanner = actions.add_parser(
        "scan",
        help="list the lockboxes advertising nearby (press ENT on one first)",
        description="Listens for lockboxes advertising their serial, as the app does after "
        "someone presses ENT on a lockbox, and lists them nearest first. Exit codes: 0 found, "
        "1 none advertising, 2 no Bluetooth adapter.",
    )
    scanner.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SCAN_SECONDS,
        help=f"how long to listen (default {DEFAULT_SCAN_SECONDS:g})",
    )
    _add_via_socket(scanner, "listen to simulated lockboxes at these addresses, not Bluetooth")
    scanner.set_defaults(func=_scan)


def _add_via_socket(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument(
        "--via-socket",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help=f"{text} (HOST:PORT or unix:PATH of `keybin lockbox simulate`; repeatable)",
    )


def _add_open(actions: argparse._SubParsersAction[Any]) -> None:
    opener = actions.add_parser(
        "open",
        help="sign in, fetch credentials and open a lockbox over Bluetooth",
        description="Does what the app does: signs in with this device's key, syncs "
        "credentials, opens the lockbox over Bluetooth (or a simulated one with --via-socket), "
        "uploads the lockbox's access records and, still connected, hands it the server's "
        "receipt, so it drops the records the server stored and keeps any other for the next "
        "open. Exit codes: 0 opened, 1 refused or failed (the upload too), 2 no Bluetooth "
        "adapter.",
    )
    opener.add_argument(
        "--serial",
        help="the lockbox serial number; without it, the nearest advertising lockbox "
        "(press ENT on it) that this account has a credential for",
    )
    opener.add_argument("--login", required=True, help="email address or 9-digit Key ID")
    opener.add_argument("--password", help="the account password (asked for when left out)")
    opener.add_argument("--api", help="the server's base URL (default: PUBLIC_URL)")
    opener.add_argument(
        "--device-key",
        default=DEFAULT_DEVICE_KEY,
        help=f"this device's id and Ed25519 key, made on first use (default {DEFAULT_DEVICE_KEY})",
    )
    _add_via_socket(opener, "reach simulated lockboxes instead of Bluetooth")
    opener.set_defaults(func=_open)


# ---- simulate -------------------------------------------------------------------------


class NarratedLockbox(LockboxSimulator):
    """A simulator that says what it does, for whoever watches the terminal."""

    def press_ent(self) -> None:
        super().press_ent()
        seconds = self._advertising_window.total_seconds()
        _say(f"ENT pressed: advertising serial {self.serial} for {seconds:g} s")

    def present(self, credential: str, sig: str, nonce: bytes | None) -> AccessOutcome:
        return self._said(super().present(credential, sig, nonce))

    def enter_code(self, code: str) -> AccessOutcome:
        return self._said(super().enter_code(code))

    def acknowledge(self, token: str) -> tuple[ReceiptVerdict, int]:
        verdict, dropped = super().acknowledge(token)
        held = len(self.pending_records())
        _say(f"receipt {verdict}: dropped {dropped} access records, {held} held")
        return verdict, dropped

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
            args.serial,
            secret,
            trusted,
            lambda: datetime.now(UTC),
            time_zone=zone,
            advertising_window=timedelta(seconds=args.advertise_seconds),
        )
    except (CommandError, ValueError, ZoneInfoNotFoundError) as error:  # secret, zone, address
        print(f"keybin: {error}", file=sys.stderr)
        return error.code if isinstance(error, CommandError) else 1
    server = await serve_lockbox(lockbox, address, mtu=args.mtu, log=_say)
    async with server:
        bound = _bound_address(server, address)
        _say(f"lockbox {args.serial} listening on {bound} (time zone {zone})")
        _say(f"trusting server keys: {', '.join(sorted(trusted)) or 'none'}")
        stop_watching = _keypad(lockbox)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await server.serve_forever()
        finally:
            stop_watching()
    return 0


def _keypad(lockbox: LockboxSimulator) -> Callable[[], None]:
    """Enter on this terminal is ENT on the lockbox's keypad; returns how to stop listening.

    os.read when the loop says a line is there: unlike a pipe transport, this leaves the
    terminal's file description blocking, as the shell expects it back.
    """
    loop = asyncio.get_running_loop()
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # no stdin at all, or a closed one
        return lambda: None

    def typed() -> None:
        try:
            data = os.read(fd, 1024)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)  # end of input: the keypad is gone, the lockbox stays
        elif b"\n" in data:
            lockbox.press_ent()

    try:
        loop.add_reader(fd, typed)
    except (OSError, ValueError):  # /dev/null or a regular file: no keypad to watch
        _say("no terminal input: ENT cannot be pressed here")
        return lambda: None
    _say("press Enter to press ENT (the lockbox then advertises its serial)")

    def stop() -> None:
        loop.remove_reader(fd)

    return stop


async def _lockbox_secret(args: argparse.Namespace, settings: Settings) -> tuple[str, str]:
    if args.secret:
        return args.secret, args.time_zone or "UTC"
    import db
    from models.listings import Lockbox

    async with db.connected(settings):
        lockbox = await Lockbox.get_or_none(
            serial_number=normalize_serial(args.serial)
        ).select_related("region")
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


# ---- scan -----------------------------------------------------------------------------


def _air(via_socket: list[str]) -> Air | None:
    """Simulated lockboxes at these addresses, or (None) the radio."""
    if not via_socket:
        return None
    try:
        return SocketAir([parse_address(text) for text in via_socket])
    except ValueError as error:
        raise CommandError(str(error)) from error


async def _advertising(via_socket: list[str], seconds: float) -> list[FoundLockbox]:
    try:
        return await scan(_air(via_socket), seconds)
    except NoAdapterError as error:
        raise CommandError(
            "no Bluetooth adapter here (or BlueZ is not running); "
            "use --via-socket to reach a simulated lockbox",
            NO_ADAPTER_EXIT,
        ) from error


async def _scan(args: argparse.Namespace, settings: Settings) -> int:
    try:
        found = await _advertising(args.via_socket, args.seconds)
    except CommandError as error:
        print(f"keybin: {error}", file=sys.stderr)
        return error.code
    if not found:
        print(NOTHING_ADVERTISING, file=sys.stderr)
        return 1
    for lockbox in found:
        signal = f"{lockbox.rssi} dBm" if lockbox.rssi is not None else "signal unknown"
        print(f"{lockbox.serial}  {signal}  {lockbox.address}")
    return 0


NOTHING_ADVERTISING = (
    "no lockbox is advertising: press ENT on the lockbox, then scan again within its window"
)


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
        if args.serial is None:
            serial, sockets = await _nearest_openable(args.via_socket, credentials)
        else:
            serial, sockets = args.serial, args.via_socket
        reports: list[dict[str, Any]] = []
        upload = _uploader(http, token, serial, reports)
        visit = await _visit(serial, sockets, credentials, device_key, revocations, upload)
    print(f"lockbox {serial}: {visit.outcome}")
    _tell_upload(visit, reports)
    return 0 if visit.outcome is AccessOutcome.OPENED and visit.upload_error is None else 1


def _uploader(
    http: httpx.AsyncClient, token: str, serial: str, reports: list[dict[str, Any]]
) -> Upload:
    """reportLockboxEvents for lockbox `serial`, made while it is still connected so its
    receipt goes straight back to it; each answer is added to `reports`."""

    async def upload(records: list[str]) -> str:
        variables = {"input": {"lockboxSerial": serial, "records": records}}
        try:
            report = await _call(http, REPORT_EVENTS, variables, token)
        except CommandError as error:
            raise UploadFailed(str(error)) from error
        if not report["receipt"]:
            raise UploadFailed(f"the server at {http.base_url} gave no receipt for the records")
        reports.append(report | {"uploaded": len(records)})
        return str(report["receipt"])

    return upload


def _tell_upload(visit: Visit, reports: list[dict[str, Any]]) -> None:
    if reports:
        uploaded = sum(report["uploaded"] for report in reports)
        accepted = sum(report["accepted"] for report in reports)
        duplicates = sum(report["duplicates"] for report in reports)
        print(f"uploaded {uploaded} access records: {accepted} new, {duplicates} already known")
    if visit.upload_error is not None:
        _warn(
            f"{len(visit.to_upload)} access records were not uploaded ({visit.upload_error}); "
            "the lockbox keeps them and the next open uploads them"
        )
    refused = [verdict for verdict in visit.acknowledged if verdict is not ReceiptVerdict.ACCEPTED]
    if visit.to_deliver or refused:
        why = ", ".join(refused) if refused else "the connection ended"
        _warn(
            f"the lockbox did not take the server's receipt ({why}): it keeps the records, "
            "which the next open uploads again"
        )
    elif reports:
        print("the lockbox dropped the records the server stored")


def _warn(text: str) -> None:
    print(f"keybin: {text}", file=sys.stderr)


async def _nearest_openable(via_socket: list[str], credentials: list[str]) -> tuple[str, list[str]]:
    """The nearest advertising lockbox this account holds a credential for, and where it is."""
    found = await _advertising(via_socket, DEFAULT_SCAN_SECONDS)
    if not found:
        raise CommandError(NOTHING_ADVERTISING)
    now = datetime.now(UTC)
    for lockbox in found:
        try:
            choose_credential(lockbox.serial, credentials, now)
        except NoCredentialError:
            continue
        print(f"found lockbox {lockbox.serial} advertising nearby")
        return lockbox.serial, [lockbox.address] if via_socket else []
    serials = ", ".join(lockbox.serial for lockbox in found)
    raise CommandError(f"this account has no credential for the lockboxes advertising: {serials}")


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
    serial: str,
    via_socket: list[str],
    credentials: list[str],
    device_key: Ed25519PrivateKey,
    revocations: list[str],
    upload: Upload,
) -> Visit:
    factory: Callable[[str], Transport]
    if via_socket:
        if len(via_socket) > 1:
            raise CommandError("to open lockbox by serial, give one --via-socket address")
        try:
            address = parse_address(via_socket[0])
        except ValueError as error:
            raise CommandError(str(error)) from error

        def factory(serial: str) -> Transport:
            return SocketTransport(address, serial)
    else:
        from ble.bleak_transport import BleakTransport

        factory = BleakTransport
    try:
        return await find_and_open(
            serial, credentials, device_key, factory, revocations=revocations, upload=upload
        )
    except NoCredentialError as error:
        raise CommandError(f"this account has no credential for lockbox {serial}") from error
    except NoAdapterError as error:
        raise CommandError(
            "no Bluetooth adapter here (or BlueZ is not running); "
            "use --via-socket to reach a simulated lockbox",
            NO_ADAPTER_EXIT,
        ) from error
    except LockboxNotFoundError as error:
        raise CommandError(f"lockbox {serial} not found: {error}") from error
    except (TransportError, ProtocolError, TimeoutError) as error:
        raise CommandError(f"lost the lockbox {serial}: {error or 'timed out'}") from error


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
