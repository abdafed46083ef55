"""The requests a phone sends and the answers a lockbox gives: compact JSON inside frames."""

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ble.outcomes import AccessOutcome
from ble.receipt import ReceiptVerdict
from ble.revocation import KEPT, RevocationsVerdict


class ProtocolError(Exception):
    """A message of the wrong shape, or the lockbox's refusal to serve a request."""


@dataclass(frozen=True)
class OpenRequest:
    credential: str
    sig: str  # base64url Ed25519 signature over this connection's nonce, by the device key


@dataclass(frozen=True)
class CodeRequest:
    code: str


@dataclass(frozen=True)
class RecordsRequest:
    after: int  # the records with a greater seq, as many as fit one message


@dataclass(frozen=True)
class AckRequest:
    receipt: str  # the server-signed receipt for stored records, see ble/receipt.py


@dataclass(frozen=True)
class RevocationsRequest:
    token: str  # the server-signed revocation list for this lockbox, see ble/revocation.py


Request = OpenRequest | CodeRequest | RecordsRequest | AckRequest | RevocationsRequest

_OPS: dict[str, type[Request]] = {
    "open": OpenRequest,
    "code": CodeRequest,
    "records": RecordsRequest,
    "ack": AckRequest,
    "revocations": RevocationsRequest,
}


def encode_request(request: Request) -> bytes:
    op = next(op for op, kind in _OPS.items() if isinstance(request, kind))
    return _dump({"op": op} | vars(request))


def decode_request(data: bytes) -> Request:
    message = _load(data)
    op = message.pop("op", None)
    kind = _OPS.get(op) if isinstance(op, str) else None
    if kind is None:
        raise ProtocolError("unknown op")
    fields = {field.name: field.type for field in dataclasses.fields(kind)}
    if set(message) != set(fields) or not all(_is(message[n], t) for n, t in fields.items()):
        raise ProtocolError(f"bad fields for {kind.__name__}")
    return kind(**message)


def outcome_answer(outcome: AccessOutcome) -> bytes:
    return _dump({"ok": outcome is AccessOutcome.OPENED, "outcome": outcome.value})


def records_answer(records: list[str]) -> bytes:
    return _dump({"records": records})


def revocations_answer(verdict: RevocationsVerdict, seq: int | None) -> bytes:
    """The verdict, and the seq of the list the lockbox holds now (null: none yet)."""
    return _dump({"ok": verdict in KEPT, "verdict": verdict.value, "seq": seq})


def ack_answer(verdict: ReceiptVerdict, dropped: int) -> bytes:
    """The verdict on the receipt, and how many records the lockbox dropped for it."""
    ok = verdict is ReceiptVerdict.ACCEPTED
    return _dump({"ok": ok, "verdict": verdict.value, "dropped": dropped})


def error_answer(error: str) -> bytes:
    return _dump({"ok": False, "error": error})


def read_outcome(data: bytes) -> AccessOutcome:
    outcome = _answer(data).get("outcome")
    if not isinstance(outcome, str) or outcome not in AccessOutcome.__members__:
        raise ProtocolError("answer without a known outcome")
    return AccessOutcome(outcome)


def read_records(data: bytes) -> list[str]:
    records = _answer(data).get("records")
    if not isinstance(records, list) or not all(isinstance(r, str) for r in records):
        raise ProtocolError("answer without a list of records")
    return records


def read_revocations(data: bytes) -> RevocationsVerdict:
    verdict = _answer(data).get("verdict")
    if not isinstance(verdict, str) or verdict not in RevocationsVerdict.__members__:
        raise ProtocolError("answer without a known revocations verdict")
    return RevocationsVerdict(verdict)


def read_ack(data: bytes) -> ReceiptVerdict:
    verdict = _answer(data).get("verdict")
    if not isinstance(verdict, str) or verdict not in ReceiptVerdict.__members__:
        raise ProtocolError("answer without a known receipt verdict")
    return ReceiptVerdict(verdict)


def _answer(data: bytes) -> dict[str, Any]:
    answer = _load(data)
    if "error" in answer:
        raise ProtocolError(f"lockbox refused: {answer['error']}")
    return answer


def _is(value: object, kind: Any) -> bool:
    # `kind` is a dataclass field's type: a real class, as annotations here are not postponed
    return isinstance(value, kind) and not isinstance(value, bool)


def _dump(message: dict[str, object]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def _load(data: bytes) -> dict[str, Any]:
    try:
        message = json.loads(data)
    except ValueError as error:
        raise ProtocolError("not JSON") from error
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    return message
