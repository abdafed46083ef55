"""Factories for the ble tests: a settable clock, a lockbox with fresh keys, credentials."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyotp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble.client import LockboxClient
from ble.credential import cnf_claim, sign_credential
from ble.inmemory import InMemoryTransport
from ble.outcomes import AccessOutcome
from ble.receipt import Receipt, seq_ranges, sign_receipt
from ble.records import AccessRecord, verify_record
from ble.simulator import LockboxSimulator

SERIAL = "LB-100234"
KID = "server-2025"
GRANT_ID = "R3JhbnQ6MQ=="  # global id Grant:1
ACCOUNT_ID = "QWNjb3VudDo3"  # global id Account:7
NOON = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)  # a Tuesday


class Clock:
    """The lockbox's own clock, which a test sets and moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Lockbox:
    """A simulated lockbox, the server key it trusts and one phone's device key."""

    clock: Clock
    secret: str = field(default_factory=pyotp.random_base32)
    server_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    device_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        trusted = {KID: self.server_key.public_key()}
        self.simulator = LockboxSimulator(
            SERIAL, self.secret, trusted, self.clock, time_zone=self.time_zone
        )

    def credential(self, **overrides: object) -> str:
        """A credential for this lockbox and device, valid an hour either side of now."""
        return sign_credential(self.server_key, KID, self.claims(**overrides))

    def claims(self, **overrides: object) -> dict[str, object]:
        now = int(self.clock().timestamp())
        claims: dict[str, object] = {
            "iss": "https://keybin.test",
            "sub": ACCOUNT_ID,
            "aud": SERIAL,
            "jti": GRANT_ID,
            "nbf": now - 3600,
            "exp": now + 3600,
            "iat": now - 3600,
            "cnf": cnf_claim(self.device_key.public_key()),
        }
        return claims | overrides

    def receipt(
        self, seqs: list[int], *, aud: str = SERIAL, key: Ed25519PrivateKey | None = None
    ) -> str:
        """The server's receipt for records `seqs`, valid a day from now."""
        now = int(self.clock().timestamp())
        receipt = Receipt("https://keybin.test", aud, now, now + 86400, seq_ranges(seqs))
        return sign_receipt(key or self.server_key, KID, receipt)

    def client(self, device_key: Ed25519PrivateKey | None = None, mtu: int = 23) -> LockboxClient:
        transport = InMemoryTransport(self.simulator, mtu=mtu)
        return LockboxClient(transport, device_key or self.device_key, timeout=2)


async def try_open(
    lockbox: Lockbox, credential: str, device_key: Ed25519PrivateKey | None = None
) -> AccessOutcome:
    """One connection, one open attempt, as a phone makes it."""
    async with lockbox.client(device_key) as client:
        return await client.open(credential)


def last_record(lockbox: Lockbox) -> AccessRecord:
    """The newest record, checked against the lockbox secret as the server checks it."""
    return verify_record(lockbox.simulator.pending_records()[-1], lockbox.secret)


def pending_seqs(lockbox: Lockbox) -> list[int]:
    return [verify_record(r, lockbox.secret).seq for r in lockbox.simulator.pending_records()]


def make_lockbox(now: datetime = NOON, time_zone: str = "UTC") -> Lockbox:
    return Lockbox(clock=Clock(now), time_zone=time_zone)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
