"""The phone's side: prove the device key over the lockbox's nonce, open, and fetch the log."""

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble import jws
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
from ble.receipt import InvalidReceipt, ReceiptVerdict, parse_receipt
from ble.records import MAX_UPLOAD, peek_record
from ble.revocation import RevocationsVerdict, newest_for
from ble.serials import same_serial
from ble.transport import Transport, TransportError

DEFAULT_TIMEOUT = 10.0
# A log that grew longer while no receipt came back goes up in several uploads.
UPLOAD_BATCH = MAX_UPLOAD


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


class UploadFailed(Exception):
    """The records did not reach the server now (no network, the server down, a record
    refused): the lockbox keeps them, as it keeps every record until a receipt names it."""


# Sends records of one lockbox to the server (reportLockboxEvents) and returns the server's
# receipt for them; raises UploadFailed when they did not get there.
Upload = Callable[[list[str]], Awaitable[str]]


@dataclass(frozen=True)
class Visit:
    """What one trip to a lockbox brought back: the outcome, the log, and what is left to do."""

    outcome: AccessOutcome
    records: list[str] = field(default_factory=list)  # the log, as the lockbox showed it
    revocations: RevocationsVerdict | None = None  # None: the phone had no list for it
    # The records the server did not confirm during the visit (all of them when there was no
    # upload): upload them later; the lockbox keeps them until their receipt comes.
    to_upload: list[str] = field(default_factory=list)
    # Receipts for this visit's uploads that the lockbox never got (the link ended first):
    # carry them to the next visit to this lockbox.
    to_deliver: list[str] = field(default_factory=list)
    # The lockbox's verdict on each receipt it got: those carried in first, then this visit's.
    acknowledged: list[ReceiptVerdict] = field(default_factory=list)
    upload_error: str | None = None  # why the upload stopped short, when it did


async def find_and_open(
    serial: str,
    credentials: Iterable[str],
    device_key: Ed25519PrivateKey,
    transport_factory: Callable[[str], Transport],
    *,
    now: datetime | None = None,
    revocations: Iterable[str] = (),
    receipts: Iterable[str] = (),
    upload: Upload | None = None,
) -> Visit:
    """Open lockbox `serial` with the right credential and bring its log back.

    `revocations` are the lists from the phone's last sync: the one for this lockbox goes
    first, so the lockbox knows of every revocation before it judges any credential.
    `receipts` are those the phone got for uploads made away from the lockbox: the ones for
    this lockbox go next, so the log read afterwards holds only what the server lacks. With
    `upload`, the log goes to the server while the lockbox is still connected and the receipt
    straight back to it, as an app with network does.
    """
    credential = choose_credential(serial, credentials, now or datetime.now(UTC))
    revocation_list = newest_for(serial, revocations)
    carried = receipts_for(serial, receipts)
    verdict = None
    async with LockboxClient(transport_factory(serial), device_key) as lockbox:
        if revocation_list is not None:
            # A refusal (the lockbox holds a newer list, say) never stands in the way of opening.
            verdict = await lockbox.deliver_revocations(revocation_list)
        # Whatever the verdicts: a refused receipt drops nothing, and its records are read
        # again below and go up again, for a new receipt.
        acknowledged = [await lockbox.ack(receipt) for receipt in carried]
        outcome = await lockbox.open(credential)
        # The lockbox shows its log only to a verified holder of a credential for it.
        records = await lockbox.collect_records() if outcome in HOLDER_VERIFIED else []
        visit = Visit(outcome, records, verdict, to_upload=records, acknowledged=acknowledged)
        if upload is not None and records:
            visit = await _upload_and_hand_over(lockbox, visit, upload)
    return visit


def receipts_for(serial: str, receipts: Iterable[str]) -> list[str]:
    """The receipts a phone carries that name lockbox `serial`: once a visit to it returns,
    the lockbox has had each of them and the phone may forget them."""
    mine = []
    for token in receipts:
        try:
            receipt = parse_receipt(jws.split(token, InvalidReceipt)[1])
        except InvalidReceipt:
            continue  # not ours to judge; the lockbox would refuse it anyway
        if same_serial(receipt.aud, serial):
            mine.append(token)
    return mine


async def _upload_and_hand_over(lockbox: LockboxClient, visit: Visit, upload: Upload) -> Visit:
    receipts, to_upload, error = await _upload(visit.records, upload)
    verdicts, to_deliver = await _hand_over(lockbox, receipts)
    acknowledged = visit.acknowledged + verdicts
    return replace(
        visit,
        to_upload=to_upload,
        to_deliver=to_deliver,
        acknowledged=acknowledged,
        upload_error=error,
    )


async def _upload(records: list[str], upload: Upload) -> tuple[list[str], list[str], str | None]:
    """The receipt of each batch the server stored, the records it did not, and why not."""
    receipts: list[str] = []
    for start in range(0, len(records), UPLOAD_BATCH):
        try:
            receipts.append(await upload(records[start : start + UPLOAD_BATCH]))
        except UploadFailed as error:
            return receipts, records[start:], str(error) or "the upload failed"
    return receipts, [], None


async def _hand_over(
    lockbox: LockboxClient, receipts: list[str]
) -> tuple[list[ReceiptVerdict], list[str]]:
    """The lockbox's verdict on each receipt, and those it never got."""
    verdicts: list[ReceiptVerdict] = []
    for index, receipt in enumerate(receipts):
        try:
            verdicts.append(await lockbox.ack(receipt))
        except (TransportError, ProtocolError, TimeoutError):
            # The server holds these records already: only the lockbox's copy waits for the
            # next visit, so a link lost now costs no access record.
            return verdicts, receipts[index:]
    return verdicts, []


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
