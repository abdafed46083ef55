"""A lockbox drops access records only on the server's signed receipt for them."""

import json

import pytest
from ble_helpers import KID, SERIAL, hours, make_lockbox, pending_seqs, try_open
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble.b64 import b64url_decode, b64url_encode
from ble.messages import OpenRequest, encode_request
from ble.outcomes import AccessOutcome
from ble.receipt import MAX_RANGES, ReceiptVerdict, seq_ranges
from ble.revocation import RevocationList, sign_revocations

GRANT = "R3JhbnQ6MQ=="


async def test_a_stale_credential_cannot_erase_the_log() -> None:
    # given someone's earlier visit and the contractor's own, never uploaded
    lockbox = make_lockbox()
    await try_open(lockbox, lockbox.credential(sub="QWNjb3VudDo4", jti="R3JhbnQ6Mg=="))
    mine = lockbox.credential(jti=GRANT)
    assert await try_open(lockbox, mine) is AccessOutcome.OPENED
    # and a month later, the grant over and revoked
    lockbox.clock.now += hours(24 * 30)
    lockbox.simulator.revoke(GRANT)
    session = lockbox.simulator.connect()
    sig = b64url_encode(lockbox.device_key.sign(session.nonce))
    opened = json.loads(session.handle(encode_request(OpenRequest(mine, sig))))
    # when the phone asks to drop everything, with no receipt or with one it made itself
    bare = json.loads(session.handle(b'{"op":"ack","upto":2147483647}'))
    forged = lockbox.receipt([1, 2, 3], key=lockbox.device_key)
    self_signed = json.loads(session.handle(json.dumps({"op": "ack", "receipt": forged}).encode()))
    # then every record is still there, the refused attempt included
    assert opened["outcome"] == "DENIED_REVOKED"
    assert bare == {"ok": False, "error": "bad_request"}
    assert self_signed == {"ok": False, "verdict": "REFUSED_INVALID", "dropped": 0}
    assert pending_seqs(lockbox) == [1, 2, 3]


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["seq"] = [[1, 2147483647]]
    forged = b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{forged}.{signature}"


def _revocations_for(lockbox_key: Ed25519PrivateKey, now: int) -> str:
    revocations = RevocationList("https://keybin.test", SERIAL, now, now + 3600, 1, frozenset())
    return sign_revocations(lockbox_key, KID, revocations)


@pytest.mark.parametrize(
    ("kind", "verdict"),
    [
        ("tampered", ReceiptVerdict.REFUSED_INVALID),
        ("unknown key", ReceiptVerdict.REFUSED_INVALID),
        ("a revocation list", ReceiptVerdict.REFUSED_INVALID),
        ("a credential", ReceiptVerdict.REFUSED_INVALID),
        ("another lockbox", ReceiptVerdict.REFUSED_WRONG_LOCKBOX),
        ("expired", ReceiptVerdict.REFUSED_EXPIRED),
    ],
)
async def test_a_receipt_that_is_not_the_servers_for_this_lockbox_drops_nothing(
    kind: str, verdict: ReceiptVerdict
) -> None:
    # given two records
    lockbox = make_lockbox()
    await try_open(lockbox, lockbox.credential())
    await try_open(lockbox, lockbox.credential())
    now = int(lockbox.clock().timestamp())
    receipt = {
        "tampered": lambda: _tampered(lockbox.receipt([1])),
        "unknown key": lambda: lockbox.receipt([1, 2], key=Ed25519PrivateKey.generate()),
        "a revocation list": lambda: _revocations_for(lockbox.server_key, now),
        "a credential": lambda: lockbox.credential(),
        "another lockbox": lambda: lockbox.receipt([1, 2], aud="LB-999999"),
        "expired": lambda: lockbox.receipt([1, 2]),
    }[kind]()
    if kind == "expired":
        lockbox.clock.now += hours(25)
    # when
    async with lockbox.client() as client:
        answer = await client.ack(receipt)
    # then
    assert answer is verdict
    assert pending_seqs(lockbox) == [1, 2]


async def test_a_receipt_names_the_same_serial_however_it_is_written() -> None:
    lockbox = make_lockbox()
    await try_open(lockbox, lockbox.credential())
    async with lockbox.client() as client:
        assert await client.ack(lockbox.receipt([1], aud=SERIAL.lower())) is ReceiptVerdict.ACCEPTED
    assert pending_seqs(lockbox) == []


def test_seq_ranges_are_few_and_oldest_first() -> None:
    assert seq_ranges([5, 1, 2, 3, 7, 8, 2]) == ((1, 3), (5, 5), (7, 8))
    assert seq_ranges([]) == ()
    assert len(seq_ranges(range(1, 1000, 2))) == MAX_RANGES
    assert seq_ranges(range(1, 1000, 2))[0] == (1, 1)
