"""`keybin lockbox simulate` and `keybin lockbox open` as real processes against a real server."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
from ble_helpers import SERIAL as BLE_SERIAL
from ble_helpers import make_lockbox as ble_lockbox
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ble.client import LockboxClient
from ble.jwks import parse_jwks
from ble.outcomes import AccessOutcome as BleOutcome
from ble.receipt import ReceiptVerdict
from ble.records import peek_record
from ble.simulator import LockboxSimulator
from ble.socket_transport import SocketTransport, parse_address, serve_lockbox
from ble.transport import LockboxNotFoundError
from core import clock
from models.access import AccessEvent
from models.accounts import Account
from models.enums import AccessOutcome
from models.grants import Grant
from models.listings import Lockbox
from resolvers.signing_keys import KEYS_ENV
from settings import Settings
from tests.factories import PASSWORD, make_agent, make_contractor, make_listing, make_lockbox
from tests.live import serve

KEYBIN = str(Path(sys.executable).with_name("keybin"))
STEP_TIMEOUT = 60.0  # generous: a loaded machine starts processes slowly


@dataclass
class Server:
    url: str
    env: dict[str, str]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def environment(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != KEYS_ENV}
    return env | {
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "KEYBIN_ENV": "development",
    }


@pytest.fixture
async def server(orm: None, environment: dict[str, str]) -> AsyncIterator[Server]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = environment | {"PUBLIC_URL": url}
    process = await asyncio.create_subprocess_exec(
        KEYBIN, "serve", "--port", str(port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await _until_healthy(url)
        yield Server(url, env)
    finally:
        await _stop(process)


async def _until_healthy(url: str) -> None:
    async with asyncio.timeout(STEP_TIMEOUT), httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
    try:
        async with asyncio.timeout(10):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()


async def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        KEYBIN, *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(STEP_TIMEOUT):
            out, err = await process.communicate()
    finally:
        await _stop(process)
    return process.returncode or 0, out.decode(), err.decode()


async def simulate(env: dict[str, str], *args: str) -> tuple[asyncio.subprocess.Process, str]:
    """Start a simulated lockbox; returns it and the address it says it listens on."""
    process = await asyncio.create_subprocess_exec(
        KEYBIN, "lockbox", "simulate", *args, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    address = await said(process, r"listening on (\S+)")
    await said(process, "press Enter to press ENT")
    return process, address


async def said(process: asyncio.subprocess.Process, pattern: str) -> str:
    """The first group (or all) of the next line of the simulator's output matching `pattern`."""
    assert process.stdout is not None
    async with asyncio.timeout(STEP_TIMEOUT):
        while line := (await process.stdout.readline()).decode():
            if match := re.search(pattern, line):
                return match.group(1) if match.re.groups else match.group(0)
    await _stop(process)
    raise AssertionError(f"the simulator never said {pattern!r}")


async def press_ent(simulator: asyncio.subprocess.Process) -> None:
    """Enter on the simulator's terminal is ENT on its keypad."""
    assert simulator.stdin is not None
    simulator.stdin.write(b"\n")
    await simulator.stdin.drain()
    await said(simulator, "ENT pressed")


async def contractor_with_grant() -> tuple[Account, Lockbox]:
    agent = await make_agent()
    lockbox = await make_lockbox(agent, await make_listing(agent))
    contractor = await make_contractor(first_name="Carl", last_name="Cleaner")
    now = clock.now()
    await Grant.create(
        listing_id=lockbox.listing_id,  # type: ignore[attr-defined]
        lockbox=lockbox,
        granted_by=agent,
        grantee_email=contractor.email,
        grantee=contractor,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=2),
    )
    return contractor, lockbox


def open_args(contractor: Account, lockbox: Lockbox, server: Server, key: Path) -> list[str]:
    return [
        "lockbox", "open", "--serial", lockbox.serial_number, "--login", contractor.email or "",
        "--password", PASSWORD, "--api", server.url, "--device-key", str(key),
    ]  # fmt: skip


async def test_open_a_simulated_lockbox_over_a_socket(server: Server, tmp_path: Path) -> None:
    # given a grant, and a simulated lockbox reading its secret from the database and the
    # server's keys from the key file beside it
    contractor, lockbox = await contractor_with_grant()
    simulator, address = await simulate(
        server.env, "--serial", lockbox.serial_number, "--listen", "127.0.0.1:0"
    )
    try:
        # when the contractor opens it from the command line
        code, out, err = await run(
            server.env,
            *open_args(contractor, lockbox, server, tmp_path / "device.json"),
            "--via-socket", address,
        )  # fmt: skip
    finally:
        await _stop(simulator)
    # then
    assert code == 0, err
    assert f"lockbox {lockbox.serial_number}: OPENED" in out
    assert "1 new" in out
    event = await AccessEvent.get(lockbox_id=lockbox.id)
    assert (event.outcome, event.actor_name) == (AccessOutcome.OPENED, "Carl Cleaner")
    assert (tmp_path / "device.json").stat().st_mode & 0o777 == 0o600


async def test_a_simulator_trusting_the_published_jwks_over_a_unix_socket(
    server: Server, tmp_path: Path
) -> None:
    # given a simulator told its secret and fetching the server's JWKS
    contractor, lockbox = await contractor_with_grant()
    path = tmp_path / "lockbox.sock"
    simulator, address = await simulate(
        server.env,
        "--serial", lockbox.serial_number, "--secret", lockbox.secret,
        "--listen", f"unix:{path}", "--jwks-url", f"{server.url}/.well-known/jwks.json",
    )  # fmt: skip
    try:
        # when the phone opens twice
        args = [*open_args(contractor, lockbox, server, tmp_path / "d.json"), "--via-socket"]
        first = await run(server.env, *args, address)
        dropped = await said(simulator, r"receipt ACCEPTED: .*")
        second = await run(server.env, *args, address)
    finally:
        await _stop(simulator)
    # then the receipt of the first upload made the lockbox drop its record, so the second
    # upload carries only the second visit's
    assert address == f"unix:{path}"
    assert first[0] == second[0] == 0, (first[2], second[2])
    assert "the lockbox dropped the records the server stored" in first[1]
    assert dropped == "receipt ACCEPTED: dropped 1 access records, 0 held"
    assert "1 new, 0 already known" in second[1]
    assert await AccessEvent.filter(lockbox_id=lockbox.id).count() == 2


async def test_without_bluetooth_open_says_so_and_exits_2(server: Server, tmp_path: Path) -> None:
    # given
    contractor, lockbox = await contractor_with_grant()
    # when
    code, _, err = await run(
        server.env, *open_args(contractor, lockbox, server, tmp_path / "device.json")
    )
    # then
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no Bluetooth adapter" in lines[0], err
    assert await AccessEvent.all().count() == 0


async def test_no_lockbox_listening_is_a_clear_message(server: Server, tmp_path: Path) -> None:
    contractor, lockbox = await contractor_with_grant()
    args = open_args(contractor, lockbox, server, tmp_path / "device.json")
    code, _, err = await run(server.env, *args, "--via-socket", f"127.0.0.1:{free_port()}")
    assert code == 1
    assert f"lockbox {lockbox.serial_number} not found" in err


async def test_the_socket_transport_carries_the_same_frames_in_process(tmp_path: Path) -> None:
    # given a simulated lockbox served on a Unix socket at the smallest BLE MTU
    box = ble_lockbox()
    address = parse_address(f"unix:{tmp_path / 'box.sock'}")
    server = await serve_lockbox(box.simulator, address, mtu=23, log=lambda _: None)
    async with server:
        # when a phone opens it, collects the log and hands back the server's receipt for
        # it, and another phone asks for a wrong serial
        transport = SocketTransport(address, BLE_SERIAL)
        async with LockboxClient(transport, box.device_key, timeout=5) as client:
            outcome = await client.open(box.credential())
            records = await client.collect_records()
            held = box.simulator.pending_records()
            acknowledged = await client.ack(box.receipt([1]))
        with pytest.raises(LockboxNotFoundError):
            await SocketTransport(address, "SOMEONE-ELSE").connect()
    # then
    assert transport.mtu == 23
    assert outcome is BleOutcome.OPENED
    assert records == held
    assert acknowledged is ReceiptVerdict.ACCEPTED
    assert box.simulator.pending_records() == []


# ---- receipts: the lockbox keeps exactly what the server lacks -------------------------


@asynccontextmanager
async def lockbox_on_a_socket(
    server: Server, lockbox: Lockbox, tmp_path: Path, secret: str | None = None
) -> AsyncIterator[tuple[LockboxSimulator, str]]:
    """The lockbox simulated in this process, trusting the server's published keys, so a
    test can read its log; `keybin lockbox open --via-socket` reaches it at the address."""
    async with httpx.AsyncClient() as client:
        keys = parse_jwks((await client.get(f"{server.url}/.well-known/jwks.json")).json())
    simulator = LockboxSimulator(lockbox.serial_number, secret or lockbox.secret, keys, clock.now)
    address = parse_address(f"unix:{tmp_path / 'lockbox.sock'}")
    async with await serve_lockbox(simulator, address, log=lambda _: None):
        yield simulator, str(address)


def held_seqs(simulator: LockboxSimulator) -> list[int]:
    return [peek_record(record).seq for record in simulator.pending_records()]


async def stored_seqs(lockbox: Lockbox) -> list[int]:
    rows = await AccessEvent.filter(lockbox_id=lockbox.id).order_by("seq")
    return [row.seq for row in rows if row.seq is not None]


@asynccontextmanager
async def uploads_down(server: Server) -> AsyncIterator[str]:
    """The server's address behind a gateway whose upload backend is down: sign-in and sync
    pass, reportLockboxEvents is answered 503, as in an outage after the credentials came."""

    async def graphql(request: Request) -> Response:
        body = await request.body()
        if b"reportLockboxEvents" in body:
            return Response("upstream unavailable", status_code=503)
        passed = ("content-type", "authorization")
        headers = {name: value for name in passed if (value := request.headers.get(name))}
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{server.url}/graphql", content=body, headers=headers)
        return Response(answer.content, answer.status_code, media_type="application/json")

    async with serve(Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])) as gateway:
        yield gateway.http_url.removesuffix("/graphql")


async def test_open_leaves_on_the_lockbox_only_what_the_server_did_not_store(
    server: Server, tmp_path: Path
) -> None:
    # given a lockbox that logged a wrong One Day Code before the contractor came
    contractor, lockbox = await contractor_with_grant()
    args = open_args(contractor, lockbox, server, tmp_path / "device.json")
    async with lockbox_on_a_socket(server, lockbox, tmp_path) as (simulator, address):
        simulator.enter_code("00000000")
        # when the contractor opens it while the server cannot take uploads
        async with uploads_down(server) as gateway:
            at_gateway = open_args(
                contractor, lockbox, Server(gateway, server.env), tmp_path / "device.json"
            )
            outage = await run(server.env, *at_gateway, "--via-socket", address)
        held_after_outage = held_seqs(simulator)
        # and opens it again once the server is back, then once more
        first = await run(server.env, *args, "--via-socket", address)
        held_after_first = held_seqs(simulator)
        second = await run(server.env, *args, "--via-socket", address)
        held_after_second = held_seqs(simulator)
    # then the outage left every record on the lockbox, and said so
    assert outage[0] == 1
    assert "lockbox " + lockbox.serial_number + ": OPENED" in outage[1]
    assert "2 access records were not uploaded" in outage[2]
    assert "the lockbox keeps them" in outage[2]
    assert held_after_outage == [1, 2]
    # and the next open uploaded them with its own, and the lockbox dropped all three
    assert first[0] == 0, first[2]
    assert "uploaded 3 access records: 3 new, 0 already known" in first[1]
    assert held_after_first == []
    # and the open after that uploaded its own record alone, nothing twice
    assert second[0] == 0, second[2]
    assert "uploaded 1 access records: 1 new, 0 already known" in second[1]
    assert held_after_second == []
    assert await stored_seqs(lockbox) == [1, 2, 3, 4]


async def test_records_the_server_refuses_stay_on_the_lockbox(
    server: Server, tmp_path: Path
) -> None:
    # given a lockbox signing its log with a secret the server does not know for it
    contractor, lockbox = await contractor_with_grant()
    args = open_args(contractor, lockbox, server, tmp_path / "device.json")
    other_secret = pyotp.random_base32()
    async with lockbox_on_a_socket(server, lockbox, tmp_path, other_secret) as (
        simulator,
        address,
    ):
        # when the contractor opens it twice
        first = await run(server.env, *args, "--via-socket", address)
        second = await run(server.env, *args, "--via-socket", address)
        held = held_seqs(simulator)
    # then it opened, the server refused the records, and the lockbox kept every one
    assert (first[0], second[0]) == (1, 1)
    assert "OPENED" in first[1] and "OPENED" in second[1]
    assert "INVALID_RECORD" in second[2] and "the lockbox keeps them" in second[2]
    assert held == [1, 2]
    assert await stored_seqs(lockbox) == []


# ---- finding a lockbox by pressing ENT ------------------------------------------------


async def test_scan_lists_a_simulated_lockbox_once_ent_is_pressed(server: Server) -> None:
    # given a simulated lockbox nobody has touched
    _, lockbox = await contractor_with_grant()
    simulator, address = await simulate(
        server.env, "--serial", lockbox.serial_number, "--listen", "127.0.0.1:0"
    )
    try:
        scan = ["lockbox", "scan", "--via-socket", address]
        asleep = await run(server.env, *scan, "--seconds", "0.5")
        # when ENT is pressed on it
        await press_ent(simulator)
        awake = await run(server.env, *scan)
    finally:
        await _stop(simulator)
    # then
    assert asleep[0] == 1
    assert "no lockbox is advertising: press ENT on the lockbox" in asleep[2]
    assert awake[0] == 0, awake[2]
    assert awake[1].split() == [lockbox.serial_number, "signal", "unknown", address]


async def test_open_finds_the_lockbox_by_ent_whatever_the_serials_spelling(
    server: Server, tmp_path: Path
) -> None:
    # given a simulated lockbox whose serial was typed in lower case with a space (its secret
    # found in the database all the same), and ENT pressed on it
    contractor, lockbox = await contractor_with_grant()
    typed = f"{lockbox.serial_number[:2].lower()} {lockbox.serial_number[2:]}"
    simulator, address = await simulate(server.env, "--serial", typed, "--listen", "127.0.0.1:0")
    try:
        await press_ent(simulator)
        # when the contractor opens "the lockbox in front of them", naming no serial
        args = open_args(contractor, lockbox, server, tmp_path / "device.json")
        args = [arg for arg in args if arg not in ("--serial", lockbox.serial_number)]
        code, out, err = await run(server.env, *args, "--via-socket", address)
    finally:
        await _stop(simulator)
    # then the scan found it, the credential for the canonical serial opened it, and the
    # records it signed with its own spelling were accepted
    assert code == 0, err
    assert f"found lockbox {typed} advertising nearby" in out
    assert f"lockbox {typed}: OPENED" in out
    assert "1 new" in out
    event = await AccessEvent.get(lockbox_id=lockbox.id)
    assert (event.outcome, event.actor_name) == (AccessOutcome.OPENED, "Carl Cleaner")


async def test_open_with_nothing_advertising_says_press_ent(server: Server, tmp_path: Path) -> None:
    # given a lockbox on which nobody pressed ENT
    contractor, lockbox = await contractor_with_grant()
    simulator, address = await simulate(
        server.env, "--serial", lockbox.serial_number, "--listen", "127.0.0.1:0"
    )
    try:
        args = open_args(contractor, lockbox, server, tmp_path / "device.json")
        args = [arg for arg in args if arg not in ("--serial", lockbox.serial_number)]
        code, _, err = await run(server.env, *args, "--via-socket", address)
    finally:
        await _stop(simulator)
    # then
    assert code == 1
    assert "press ENT on the lockbox" in err
    assert await AccessEvent.all().count() == 0


async def test_scan_without_bluetooth_says_so_and_exits_2(environment: dict[str, str]) -> None:
    code, _, err = await run(environment, "lockbox", "scan", "--seconds", "1")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no Bluetooth adapter" in lines[0], err
