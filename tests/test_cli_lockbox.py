"""`keybin lockbox simulate` and `keybin lockbox open` as real processes against a real server."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from ble_helpers import SERIAL as BLE_SERIAL
from ble_helpers import make_lockbox as ble_lockbox

from ble.client import LockboxClient
from ble.outcomes import AccessOutcome as BleOutcome
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
        # when the phone opens twice: the second upload repeats the first record
        args = [*open_args(contractor, lockbox, server, tmp_path / "d.json"), "--via-socket"]
        first = await run(server.env, *args, address)
        second = await run(server.env, *args, address)
    finally:
        await _stop(simulator)
    # then
    assert address == f"unix:{path}"
    assert first[0] == second[0] == 0, (first[2], second[2])
    assert "1 new, 1 already known" in second[1]
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
        # when a phone opens it, collects the log, and another phone asks for a wrong serial
        transport = SocketTransport(address, BLE_SERIAL)
        async with LockboxClient(transport, box.device_key, timeout=5) as client:
            outcome = await client.open(box.credential())
            records = await client.collect_records()
        with pytest.raises(LockboxNotFoundError):
            await SocketTransport(address, "SOMEONE-ELSE").connect()
    # then
    assert transport.mtu == 23
    assert outcome is BleOutcome.OPENED
    assert records == box.simulator.pending_records()


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
