"""A lockbox in software: the checks and the access log of a real one, for tests and demos."""

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ble.advertising import Advertisement, lockbox_advertisement
from ble.b64 import b64url_decode
from ble.credential import CredentialClaims, InvalidCredential, decode_credential
from ble.framing import MAX_MESSAGE
from ble.gatt import NONCE_SIZE
from ble.messages import (
    AckRequest,
    CodeRequest,
    OpenRequest,
    ProtocolError,
    RecordsRequest,
    RevocationsRequest,
    ack_answer,
    decode_request,
    error_answer,
    outcome_answer,
    records_answer,
    revocations_answer,
)
from ble.onedaycode import check_one_day_code
from ble.outcomes import HOLDER_VERIFIED, AccessMethod, AccessOutcome
from ble.receipt import InvalidReceipt, ReceiptVerdict, decode_receipt
from ble.records import AccessRecord, encode_record
from ble.recurrence import within_recurrence
from ble.revocation import InvalidRevocations, RevocationsVerdict, decode_revocations
from ble.secret import normalize_secret
from ble.serials import same_serial

Clock = Callable[[], datetime]
# Room for the JSON around the records in one answer.
_RECORDS_BUDGET = MAX_MESSAGE - 64
# How long a lockbox advertises its serial after ENT is pressed on its keypad.
ADVERTISING_WINDOW = timedelta(seconds=30)


class LockboxSimulator:
    """One lockbox: its serial, secret, the server keys it trusts and its own clock."""

    def __init__(
        self,
        serial: str,
        secret: str,
        trusted_keys: Mapping[str, Ed25519PublicKey],
        clock: Clock,
        time_zone: str = "UTC",
        advertising_window: timedelta = ADVERTISING_WINDOW,
    ) -> None:
        ZoneInfo(time_zone)  # fail at set-up, not at the first One Day Code
        self.serial = serial
        self.time_zone = time_zone
        self.open_count = 0
        self._secret = normalize_secret(secret)
        self._trusted = dict(trusted_keys)
        self._clock = clock
        self._revoked: set[str] = set()
        # The newest server revocation list a phone delivered: its seq and grant ids.
        self._list_seq: int | None = None
        self._listed: frozenset[str] = frozenset()
        self._log: list[tuple[int, str]] = []  # (seq, signed record), oldest first
        self._next_seq = 1
        self._advertising_window = advertising_window
        self._advertising_until: datetime | None = None

    def press_ent(self) -> None:
        """ENT on the keypad: the lockbox advertises its serial so a phone can find it."""
        self._advertising_until = self._clock() + self._advertising_window

    @property
    def advertising(self) -> bool:
        until = self._advertising_until
        return until is not None and self._clock() < until

    def advertisement(self) -> Advertisement | None:
        """What a scanner hears from this lockbox now: nothing unless ENT was just pressed."""
        return lockbox_advertisement(self.serial) if self.advertising else None

    def connect(self) -> "LockboxSession":
        return LockboxSession(self, secrets.token_bytes(NONCE_SIZE))

    def revoke(self, jti: str) -> None:
        """Lockboxes learn revocations when a phone or the server syncs them."""
        self._revoked.add(jti)

    @property
    def revocations_seq(self) -> int | None:
        return self._list_seq

    def revoked(self) -> frozenset[str]:
        """Every grant id refused as revoked: set by hand, or by the newest list."""
        return self._listed | self._revoked

    def load_revocations(self, token: str) -> RevocationsVerdict:
        """Take a server-signed revocation list, unless it is forged, not ours, over or older."""
        try:
            revocations = decode_revocations(token, self._trusted)
        except InvalidRevocations:
            return RevocationsVerdict.REFUSED_INVALID
        if not same_serial(revocations.aud, self.serial):
            return RevocationsVerdict.REFUSED_WRONG_LOCKBOX
        if self._clock().timestamp() >= revocations.exp:
            return RevocationsVerdict.REFUSED_EXPIRED
        if self._list_seq is not None and revocations.seq < self._list_seq:
            return RevocationsVerdict.REFUSED_STALE
        if revocations.seq == self._list_seq:
            # Same seq, same revocations known to the server; one issued a moment later may
            # name a revocation committed while it was read, and revocations are never undone.
            self._listed |= revocations.jti
            return RevocationsVerdict.UP_TO_DATE
        self._list_seq, self._listed = revocations.seq, revocations.jti
        return RevocationsVerdict.ACCEPTED

    def pending_records(self) -> list[str]:
        return [record for _, record in self._log]

    def records_after(self, seq: int) -> list[str]:
        """The oldest records after `seq` that fit in one answer."""
        batch: list[str] = []
        size = 0
        for record in (record for record_seq, record in self._log if record_seq > seq):
            size += len(record) + 3  # quotes and a comma
            if batch and size > _RECORDS_BUDGET:
                break
            batch.append(record)
        return batch

    def acknowledge(self, token: str) -> tuple[ReceiptVerdict, int]:
        """Drop the records a server-signed receipt names: only the server's word that it
        stored them makes a lockbox forget a visit. Returns the verdict and how many went."""
        try:
            receipt = decode_receipt(token, self._trusted)
        except InvalidReceipt:
            return ReceiptVerdict.REFUSED_INVALID, 0
        if not same_serial(receipt.aud, self.serial):
            return ReceiptVerdict.REFUSED_WRONG_LOCKBOX, 0
        if self._clock().timestamp() >= receipt.exp:
            return ReceiptVerdict.REFUSED_EXPIRED, 0
        kept = [(seq, record) for seq, record in self._log if not receipt.names(seq)]
        dropped = len(self._log) - len(kept)
        self._log = kept
        return ReceiptVerdict.ACCEPTED, dropped

    def present(self, credential: str, sig: str, nonce: bytes | None) -> AccessOutcome:
        """Judge a credential shown with a signature over `nonce` (None once it is spent)."""
        now = self._clock()
        try:
            claims = decode_credential(credential, self._trusted)
        except InvalidCredential:
            # Nothing in a forged token is worth logging: its ids are the forger's choice.
            outcome = AccessOutcome.DENIED_INVALID_CREDENTIAL
            return self._conclude(AccessMethod.BLE_CREDENTIAL, outcome, now)
        return self._conclude(claims.mth, self._judge(claims, sig, nonce, now), now, claims)

    def enter_code(self, code: str) -> AccessOutcome:
        now = self._clock()
        outcome = check_one_day_code(self._secret, code, now, self.time_zone)
        return self._conclude(AccessMethod.ONE_DAY_CODE, outcome, now)

    def _judge(
        self, claims: CredentialClaims, sig: str, nonce: bytes | None, now: datetime
    ) -> AccessOutcome:
        if nonce is None or not _holder_signed(claims, sig, nonce):
            return AccessOutcome.DENIED_INVALID_CREDENTIAL
        if not same_serial(claims.aud, self.serial):
            return AccessOutcome.DENIED_WRONG_LOCKBOX
        if claims.jti in self._revoked or claims.jti in self._listed:
            return AccessOutcome.DENIED_REVOKED
        if now.timestamp() < claims.nbf:
            return AccessOutcome.DENIED_NOT_YET_VALID
        if now.timestamp() >= claims.exp:
            return AccessOutcome.DENIED_EXPIRED
        # Outside its weekly hours a grant is not over: it opens again at the next window,
        # and the contract has no outcome closer to "not now, later" than NOT_YET_VALID.
        if claims.rec is not None and not within_recurrence(claims.rec, now):
            return AccessOutcome.DENIED_NOT_YET_VALID
        return AccessOutcome.OPENED

    def _conclude(
        self,
        method: AccessMethod,
        outcome: AccessOutcome,
        now: datetime,
        claims: CredentialClaims | None = None,
    ) -> AccessOutcome:
        """Open (or not), and log the attempt either way."""
        if outcome is AccessOutcome.OPENED:
            self.open_count += 1
        record = AccessRecord(
            serial=self.serial,
            seq=self._next_seq,
            at=int(now.timestamp()),
            method=method,
            outcome=outcome,
            jti=claims.jti if claims else None,
            sub=claims.sub if claims else None,
        )
        self._log.append((self._next_seq, encode_record(record, self._secret)))
        self._next_seq += 1
        return outcome


class LockboxSession:
    """One BLE connection: its own nonce, good for a single open attempt."""

    def __init__(self, lockbox: LockboxSimulator, nonce: bytes) -> None:
        self.nonce = nonce
        self._lockbox = lockbox
        self._nonce_spent = False
        self._holder_verified = False

    def handle(self, message: bytes) -> bytes:
        """The answer to one request message."""
        try:
            request = decode_request(message)
        except ProtocolError:
            return error_answer("bad_request")
        match request:
            case OpenRequest(credential=credential, sig=sig):
                return outcome_answer(self._open(credential, sig))
            case CodeRequest(code=code):
                return outcome_answer(self._lockbox.enter_code(code))
            case RecordsRequest(after=after) if self._holder_verified:
                return records_answer(self._lockbox.records_after(after))
            case RevocationsRequest(token=token):
                # Anyone may deliver one: the server's signature is what it is judged by.
                verdict = self._lockbox.load_revocations(token)
                return revocations_answer(verdict, self._lockbox.revocations_seq)
            case AckRequest(receipt=receipt):
                # Like a revocation list, judged by the server's signature alone: a receipt
                # drops only records the server already holds, whoever delivers it.
                return ack_answer(*self._lockbox.acknowledge(receipt))
        # The log names who came and when: only a verified credential holder may read it.
        return error_answer("holder_not_verified")

    def _open(self, credential: str, sig: str) -> AccessOutcome:
        # Spent on the first attempt, whatever its outcome, so a signature seen once on the
        # air can never be tried again on this connection.
        nonce = None if self._nonce_spent else self.nonce
        self._nonce_spent = True
        outcome = self._lockbox.present(credential, sig, nonce)
        self._holder_verified |= outcome in HOLDER_VERIFIED
        return outcome


def _holder_signed(claims: CredentialClaims, sig: str, nonce: bytes) -> bool:
    try:
        claims.device_public_key().verify(b64url_decode(sig), nonce)
    except (InvalidSignature, ValueError):
        return False
    return True
