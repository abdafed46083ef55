"""Revocation lists at the lockbox: the message, the lockbox's checks and the client's delivery."""

import json

import pytest
from ble_helpers import GRANT_ID, KID, SERIAL, Lockbox, make_lockbox
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble.b64 import b64url_decode, b64url_encode
from ble.client import find_and_open
from ble.framing import Reassembler
from ble.inmemory import InMemoryTransport
from ble.messages import (
    ProtocolError,
    RevocationsRequest,
    decode_request,
    encode_request,
    error_answer,
    read_revocations,
    revocations_answer,
)
from ble.outcomes import AccessOutcome
from ble.revocation import (
    TYP,
    InvalidRevocations,
    RevocationList,
    RevocationsVerdict,
    decode_revocations,
    newest_for,
    peek_revocations,
    sign_revocations,
)
from ble.transport import NotifyCallback, Transport

OTHER_GRANT = "R3JhbnQ6Mg=="  # global id Grant:2


def revocations(lockbox: Lockbox, **overrides: object) -> RevocationList:
    """A list for this lockbox, issued now, living a day, naming GRANT_ID."""
    now = int(lockbox.clock().timestamp())
    fields: dict[str, object] = {
        "iss": "https://keybin.test",
        "aud": SERIAL,
        "iat": now,
        "exp": now + 86400,
        "seq": 1,
        "jti": frozenset({GRANT_ID}),
    }
    return RevocationList(**(fields | overrides))  # type: ignore[arg-type]


def signed(lockbox: Lockbox, **overrides: object) -> str:
    return sign_revocations(lockbox.server_key, KID, revocations(lockbox, **overrides))


class Tap:
    """A transport that keeps every request message the phone sends, whole."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.requests: list[dict[str, object]] = []
        self._inbox = Reassembler()

    @property
    def mtu(self) -> int:
        return self.inner.mtu

    async def connect(self) -> None:
        await self.inner.connect()

    async def disconnect(self) -> None:
        await self.inner.disconnect()

    async def read(self, char_uuid: str) -> bytes:
        return await self.inner.read(char_uuid)

    async def write(self, char_uuid: str, data: bytes) -> None:
        if (message := self._inbox.feed(data)) is not None:
            self.requests.append(json.loads(message))
        await self.inner.write(char_uuid, data)

    async def start_notify(self, char_uuid: str, callback: NotifyCallback) -> None:
        await self.inner.start_notify(char_uuid, callback)


# ---- the format and the message -------------------------------------------------------


def test_a_list_is_a_compact_jws_with_its_own_type() -> None:
    lockbox = make_lockbox()
    token = signed(lockbox, jti=frozenset({OTHER_GRANT, GRANT_ID}))
    header = json.loads(b64url_decode(token.split(".")[0]))
    claims = json.loads(b64url_decode(token.split(".")[1]))
    assert header == {"alg": "EdDSA", "kid": KID, "typ": TYP}
    assert TYP == "lockbox-revocations+jwt"
    assert claims["jti"] == sorted([GRANT_ID, OTHER_GRANT])
    assert (claims["aud"], claims["seq"]) == (SERIAL, 1)
    trusted = {KID: lockbox.server_key.public_key()}
    assert (
        decode_revocations(token, trusted)
        == peek_revocations(token)
        == revocations(lockbox, jti=frozenset({OTHER_GRANT, GRANT_ID}))
    )


@pytest.mark.parametrize(
    "claims",
    [
        {"jti": "R3JhbnQ6MQ=="},
        {"jti": [1]},
        {"seq": "1"},
        {"seq": True},
        {"aud": None},
    ],
)
def test_claims_of_the_wrong_shape_are_refused(claims: dict[str, object]) -> None:
    lockbox = make_lockbox()
    good = json.loads(b64url_decode(signed(lockbox).split(".")[1]))
    header, _, sig = signed(lockbox).split(".")
    payload = b64url_encode(json.dumps(good | claims).encode())
    with pytest.raises(InvalidRevocations):
        peek_revocations(f"{header}.{payload}.{sig}")


def test_a_credential_is_not_a_revocation_list() -> None:
    lockbox = make_lockbox()
    with pytest.raises(InvalidRevocations, match="header"):
        decode_revocations(lockbox.credential(), {KID: lockbox.server_key.public_key()})


def test_the_request_and_answer_on_the_wire() -> None:
    request = RevocationsRequest("a.b.c")
    assert encode_request(request) == b'{"op":"revocations","token":"a.b.c"}'
    assert decode_request(b'{"op":"revocations","token":"a.b.c"}') == request
    with pytest.raises(ProtocolError):
        decode_request(b'{"op":"revocations","token":["a.b.c"]}')
    accepted = revocations_answer(RevocationsVerdict.ACCEPTED, 4)
    assert accepted == b'{"ok":true,"verdict":"ACCEPTED","seq":4}'
    refused = revocations_answer(RevocationsVerdict.REFUSED_STALE, 4)
    assert json.loads(refused)["ok"] is False
    assert read_revocations(refused) is RevocationsVerdict.REFUSED_STALE
    with pytest.raises(ProtocolError):
        read_revocations(b'{"ok":true,"verdict":"MAYBE"}')
    with pytest.raises(ProtocolError, match="busy"):
        read_revocations(error_answer("busy"))


def test_the_phone_picks_the_newest_list_for_the_lockbox() -> None:
    lockbox = make_lockbox()
    older, newer = signed(lockbox, seq=1), signed(lockbox, seq=2)
    elsewhere = signed(lockbox, aud="LB-999999", seq=9)
    assert newest_for(SERIAL, ["junk", older, elsewhere, newer]) == newer
    assert newest_for("LB-000001", [older, newer]) is None


# ---- the lockbox's checks -------------------------------------------------------------


async def deliver(lockbox: Lockbox, token: str) -> RevocationsVerdict:
    async with lockbox.client() as client:
        return await client.deliver_revocations(token)


async def test_a_genuine_list_revokes_without_any_open() -> None:
    # given
    lockbox = make_lockbox()
    # when (at the smallest MTU: a list spans many frames)
    verdict = await deliver(lockbox, signed(lockbox))
    # then
    assert verdict is RevocationsVerdict.ACCEPTED
    assert lockbox.simulator.revocations_seq == 1
    assert await _open(lockbox) is AccessOutcome.DENIED_REVOKED
    assert lockbox.simulator.pending_records()  # the refusal is logged


async def test_a_newer_list_replaces_the_set_and_keeps_what_was_revoked_by_hand() -> None:
    # given one grant revoked by hand and one by a list
    lockbox = make_lockbox()
    lockbox.simulator.revoke("R3JhbnQ6Nw==")
    await deliver(lockbox, signed(lockbox, seq=1))
    # when a newer list no longer names GRANT_ID (say its grant has ended) but another
    verdict = await deliver(lockbox, signed(lockbox, seq=2, jti=frozenset({OTHER_GRANT})))
    # then
    assert verdict is RevocationsVerdict.ACCEPTED
    assert lockbox.simulator.revoked() == {"R3JhbnQ6Nw==", OTHER_GRANT}
    assert await _open(lockbox) is AccessOutcome.OPENED


async def test_the_same_seq_again_is_up_to_date_and_only_adds() -> None:
    lockbox = make_lockbox()
    await deliver(lockbox, signed(lockbox, seq=3))
    verdict = await deliver(lockbox, signed(lockbox, seq=3, jti=frozenset({OTHER_GRANT})))
    assert verdict is RevocationsVerdict.UP_TO_DATE
    assert lockbox.simulator.revoked() == {GRANT_ID, OTHER_GRANT}


@pytest.mark.parametrize(
    ("case", "verdict"),
    [
        ("older seq", RevocationsVerdict.REFUSED_STALE),
        ("another lockbox", RevocationsVerdict.REFUSED_WRONG_LOCKBOX),
        ("expired", RevocationsVerdict.REFUSED_EXPIRED),
        ("untrusted key", RevocationsVerdict.REFUSED_INVALID),
        ("unknown kid", RevocationsVerdict.REFUSED_INVALID),
        ("tampered", RevocationsVerdict.REFUSED_INVALID),
        ("garbage", RevocationsVerdict.REFUSED_INVALID),
    ],
)
async def test_a_list_the_lockbox_must_not_take_changes_nothing(
    case: str, verdict: RevocationsVerdict
) -> None:
    # given a lockbox holding list 5, which names GRANT_ID
    lockbox = make_lockbox()
    assert await deliver(lockbox, signed(lockbox, seq=5)) is RevocationsVerdict.ACCEPTED
    forgive = {"jti": frozenset()}
    now = int(lockbox.clock().timestamp())
    tokens = {
        "older seq": lambda: signed(lockbox, seq=4, **forgive),
        "another lockbox": lambda: signed(lockbox, aud="LB-999999", seq=6, **forgive),
        "expired": lambda: signed(lockbox, seq=6, exp=now, **forgive),
        "untrusted key": lambda: sign_revocations(
            Ed25519PrivateKey.generate(), KID, revocations(lockbox, seq=6, **forgive)
        ),
        "unknown kid": lambda: sign_revocations(
            lockbox.server_key, "retired-2019", revocations(lockbox, seq=6, **forgive)
        ),
        "tampered": lambda: _tampered(signed(lockbox, seq=6)),
        "garbage": lambda: "not.a.jws",
    }
    # when
    answer = await deliver(lockbox, tokens[case]())
    # then
    assert answer is verdict
    assert (lockbox.simulator.revocations_seq, lockbox.simulator.revoked()) == (5, {GRANT_ID})


async def test_delivering_a_list_leaves_the_nonce_for_the_open() -> None:
    lockbox = make_lockbox()
    async with lockbox.client() as client:
        delivered = await client.deliver_revocations(signed(lockbox, jti=frozenset()))
        assert delivered is RevocationsVerdict.ACCEPTED
        assert await client.open(lockbox.credential()) is AccessOutcome.OPENED


# ---- the client ------------------------------------------------------------------------


async def test_find_and_open_sends_the_list_before_the_open() -> None:
    # given a phone carrying two lists for this lockbox and one for another
    lockbox = make_lockbox()
    tap = Tap(InMemoryTransport(lockbox.simulator))
    lists = [signed(lockbox, seq=1, jti=frozenset()), signed(lockbox, seq=2), "garbage"]
    # when
    visit = await find_and_open(
        SERIAL,
        [lockbox.credential()],
        lockbox.device_key,
        lambda _: tap,
        now=lockbox.clock(),
        revocations=lists,
    )
    # then
    assert [request["op"] for request in tap.requests][:2] == ["revocations", "open"]
    assert tap.requests[0]["token"] == lists[1]
    assert (visit.revocations, visit.outcome) == (
        RevocationsVerdict.ACCEPTED,
        AccessOutcome.DENIED_REVOKED,
    )


async def test_a_refused_list_never_stands_in_the_way_of_opening() -> None:
    # given a lockbox holding a newer list than the phone's, naming another grant
    lockbox = make_lockbox()
    await deliver(lockbox, signed(lockbox, seq=7, jti=frozenset({OTHER_GRANT})))
    # when
    visit = await find_and_open(
        SERIAL,
        [lockbox.credential()],
        lockbox.device_key,
        lambda _: InMemoryTransport(lockbox.simulator),
        now=lockbox.clock(),
        revocations=[signed(lockbox, seq=6, jti=frozenset())],
    )
    # then
    assert (visit.revocations, visit.outcome) == (
        RevocationsVerdict.REFUSED_STALE,
        AccessOutcome.OPENED,
    )
    assert lockbox.simulator.revoked() == {OTHER_GRANT}


async def test_without_a_list_for_the_lockbox_only_the_open_is_sent() -> None:
    lockbox = make_lockbox()
    tap = Tap(InMemoryTransport(lockbox.simulator))
    visit = await find_and_open(
        SERIAL,
        [lockbox.credential()],
        lockbox.device_key,
        lambda _: tap,
        now=lockbox.clock(),
        revocations=[signed(lockbox, aud="LB-999999")],
    )
    assert [request["op"] for request in tap.requests][:1] == ["open"]
    assert (visit.revocations, visit.outcome) == (None, AccessOutcome.OPENED)


async def _open(lockbox: Lockbox) -> AccessOutcome:
    async with lockbox.client() as client:
        return await client.open(lockbox.credential())


def _tampered(token: str) -> str:
    header, payload, sig = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["jti"] = []
    return f"{header}.{b64url_encode(json.dumps(claims).encode())}.{sig}"
