"""The phone's side: prove the device key over the lockbox's nonce, open, and fetch the log."""

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble.b64 import b64url_encode
from ble.credential import CredentialClaims, InvalidCredential, peek_claims
from ble.framing import Reassembler, frame
from ble.gatt import CHALLENGE_UUID, COMMAND_UUID, NONCE_SIZE, RESPONSE_UUID
from ble.messages import (
    AckRequest,
    CodeRequest,
    OpenRequest,
    ProtocolError,
    RecordsRequest,
    Request,
    RevocationsRequest,
    encode_request,
    read_ack,
    read_outcome,
    read_records,
    read_revocations,
)
from ble.outcomes import HOLDER_VERIFIED, AccessOutcome
from ble.receipt import ReceiptVerdict
from ble.records import peek_record
from ble.revocation import RevocationsVerdict, newest_for
from ble.serials import same_serial
from ble.transport import Transport

DEFAULT_TIMEOUT = 10.0


class NoCredentialError(LookupError):
    """None of the phone's credentials is for this lockbox."""


class LockboxClient:
    """One connection to one lockbox: `async with LockboxClient(...) as lockbox`.

    The lockbox's nonce is good for one open attempt: open again on a new connection.
    Every wait is bounded by `timeout` seconds and raises TimeoutError when it runs out.
    """

    def __init__(
        self,
        transport: Transport,
        device_key: Ed25519PrivateKey,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._transport = transport
        self._device_key = device_key
        self._timeout = timeout
        self._answers: asyncio.Queue[bytes] = asyncio.Queue()
        self._nonce = b""

    async def __aenter__(self) -> Self:
        await self._transport.connect()
        try:
            await self._handshake()
        except BaseException:
            await self._transport.disconnect()  # then re-raise: never leave a radio link open
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._transport.disconnect()

    async def open(self, credential: str) -> AccessOutcome:
        sig = b64url_encode(self._device_key.sign(self._nonce))
        return read_outcome(await self._exchange(OpenRequest(credential=credential, sig=sig)))

    async def deliver_revocations(self, token: str) -> RevocationsVerdict:
        """Hand the lockbox a server-signed revocation list; it keeps it only if newer."""
        return read_revocations(await self._exchange(RevocationsRequest(token=token)))

    async def enter_code(self, code: str) -> AccessOutcome:
        return read_outcome(await self._exchange(CodeRequest(code=code)))

    async def collect_records(self) -> list[str]:
        """Every record the lockbox holds, oldest first; it sends them a batch at a time."""
        records: list[str] = []
        after = 0
        while batch := read_records(await self._exchange(RecordsRequest(after=after))):
            records += batch
            after = _last_seq(batch, after)
        return records

    async def ack(self, receipt: str) -> ReceiptVerdict:
        """Hand the lockbox the server's receipt for an upload: it drops the records named."""
        return read_ack(await self._exchange(AckRequest(receipt=receipt)))

    async def _handshake(self) -> None:
        self._answers = asyncio.Queue()  # nothing from an earlier connection may be read
        async with asyncio.timeout(self._timeout):
            self._nonce = await self._transport.read(CHALLENGE_UUID)
            await self._transport.start_notify(RESPONSE_UUID, self._answers.put_nowait)
        if len(self._nonce) != NONCE_SIZE:
            raise ProtocolError(
                f"the lockbox's nonce is {len(self._nonce)} bytes, not {NONCE_SIZE}"
            )

    async def _exchange(self, request: Request) -> bytes:
        inbox = Reassembler()
        async with asyncio.timeout(self._timeout):
            for part in frame(encode_request(request), self._transport.mtu):
                await self._transport.write(COMMAND_UUID, part)
            while (answer := inbox.feed(await self._answers.get())) is None:
                continue
        return answer


@dataclass(frozen=True)
class Visit:
    """What one trip to a lockbox brought back: the outcome and the records to upload."""

    outcome: AccessOutcome
    records: list[str] = field(default_factory=list)
    revocations: RevocationsVerdict | None = None  # None: the phone had no list for it


async def find_and_open(
    serial: str,
    credentials: Iterable[str],
    device_key: Ed25519PrivateKey,
    transport_factory: Callable[[str], Transport],
    *,
    now: datetime | None = None,
    revocations: Iterable[str] = (),
) -> Visit:
    """Open lockbox `serial` with the right credential and bring its log back for upload.

    `revocations` are the lists from the phone's last sync: the one for this lockbox goes
    first, so the lockbox knows of every revocation before it judges any credential.
    """
    credential = choose_credential(serial, credentials, now or datetime.now(UTC))
    revocation_list = newest_for(serial, revocations)
    verdict = None
    async with LockboxClient(transport_factory(serial), device_key) as lockbox:
        if revocation_list is not None:
            # A refusal (the lockbox holds a newer list, say) never stands in the way of opening.
            verdict = await lockbox.deliver_revocations(revocation_list)
        outcome = await lockbox.open(credential)
        # The lockbox shows its log only to a verified holder of a credential for it.
        records = await lockbox.collect_records() if outcome in HOLDER_VERIFIED else []
    return Visit(outcome, records, verdict)


def choose_credential(serial: str, credentials: Iterable[str], now: datetime) -> str:
    """The credential for `serial` valid at `now`, else the next to start, else any."""
    peeked = _peeked(credentials)
    mine = [(claims, token) for claims, token in peeked if same_serial(claims.aud, serial)]
    if not mine:
        raise NoCredentialError(f"no credential for lockbox {serial}")
    instant = now.timestamp()
    return min(mine, key=lambda pair: (_rank(pair[0], instant), pair[0].nbf))[1]


def _peeked(credentials: Iterable[str]) -> Iterable[tuple[CredentialClaims, str]]:
    for token in credentials:
        try:
            yield peek_claims(token), token
        except InvalidCredential:
            continue  # not ours to judge; the lockbox would refuse it anyway


def _rank(claims: CredentialClaims, instant: float) -> int:
    """0 valid now, 1 not yet, 2 over: the lockbox's clock may differ a little from ours."""
    if instant >= claims.exp:
        return 2
    return 0 if claims.nbf <= instant else 1


def _last_seq(batch: list[str], after: int) -> int:
    seq = peek_record(batch[-1]).seq
    if seq <= after:  # a lockbox that repeats itself would keep us here forever
        raise ProtocolError(f"records after {after} ended at seq {seq}")
    return seq
