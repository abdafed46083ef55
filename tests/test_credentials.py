"""syncCredentials' claims and the signing keys: kept, rotated, published as a JWKS."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble.b64 import b64url_encode
from ble.credential import decode_credential
from ble.jwks import okp_jwk, parse_jwks, raw_public_key
from ble.outcomes import AccessMethod
from core import clock
from core.ids import to_global_id
from models.accounts import Account
from models.grants import Grant
from models.listings import Lockbox
from resolvers import signing_keys
from settings import Settings
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_listing,
    make_lockbox,
    make_region,
)
from tests.sql_count import StatementCounter

SYNC = """
mutation Sync($deviceId: String!) {
  syncCredentials(input: {deviceId: $deviceId}) {
    bundle {
      issuedAt expiresAt
      credentials { token lockboxSerial notBefore expiresAt grant { id status } }
    }
    userErrors { code field message }
  }
}
"""
DAY = timedelta(hours=24)


async def signed_in(gql: GraphQLClient, account: Account) -> tuple[str, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    public_key = b64url_encode(raw_public_key(key.public_key()))
    token = await gql.sign_in(account.email or "", device_id="phone", devicePublicKey=public_key)
    return token, key


async def bundle_of(gql: GraphQLClient, token: str) -> dict[str, Any]:
    payload = (await gql(SYNC, {"deviceId": "phone"}, token=token))["syncCredentials"]
    assert payload["userErrors"] == []
    bundle: dict[str, Any] = payload["bundle"]
    return bundle


async def published(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def grant_to(
    contractor: Account, lockbox: Lockbox, start: timedelta, end: timedelta, **fields: Any
) -> Grant:
    now = clock.now()
    return await Grant.create(
        listing_id=lockbox.listing_id,  # type: ignore[attr-defined]
        lockbox=lockbox,
        granted_by_id=lockbox.assigned_to_id,  # type: ignore[attr-defined]
        grantee_email=contractor.email,
        grantee=contractor,
        starts_at=now + start,
        ends_at=now + end,
        **fields,
    )


async def test_a_contractor_gets_one_credential_per_current_grant_with_the_documented_claims(
    gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    # given grants: active, starting soon (recurring), later, expired, revoked, someone else's
    agent = await make_agent()
    lockbox = await make_lockbox(agent, await make_listing(agent))
    carl = await make_contractor(first_name="Carl")
    other = await make_contractor()
    active = await grant_to(carl, lockbox, -timedelta(hours=1), timedelta(days=3))
    soon = await grant_to(
        carl,
        lockbox,
        timedelta(hours=20),
        timedelta(hours=30),
        rec_weekdays="2,4",
        rec_start="09:00",
        rec_end="12:30",
    )
    await grant_to(carl, lockbox, timedelta(hours=25), timedelta(hours=30))
    await grant_to(carl, lockbox, -timedelta(hours=5), -timedelta(hours=1))
    await grant_to(carl, lockbox, timedelta(hours=1), timedelta(hours=2), revoked_at=clock.now())
    await grant_to(other, lockbox, -timedelta(hours=1), timedelta(hours=2))
    token, key = await signed_in(gql, carl)
    # when
    bundle = await bundle_of(gql, token)
    trusted = parse_jwks(await published(http))
    # then
    credentials = bundle["credentials"]
    assert [c["grant"]["id"] for c in credentials] == [
        to_global_id("Grant", active.id),
        to_global_id("Grant", soon.id),
    ]
    assert [c["grant"]["status"] for c in credentials] == ["ACTIVE", "SCHEDULED"]
    claims = [decode_credential(c["token"], trusted) for c in credentials]
    issued_at = claims[0].iat
    for c, claim in zip(credentials, claims, strict=True):
        assert claim.iss == "http://keybin.test"
        assert claim.sub == to_global_id("Contractor", carl.id)
        assert claim.aud == lockbox.serial_number == c["lockboxSerial"]
        assert claim.jti == c["grant"]["id"]
        assert claim.device_key == raw_public_key(key.public_key())
        assert claim.mth is AccessMethod.BLE_CREDENTIAL
    # nbf is the grant's start; exp the grant's end or a day after issue, whichever is first
    assert claims[0].nbf == int(active.starts_at.timestamp())
    assert claims[0].exp == issued_at + int(DAY.total_seconds())
    assert claims[1].exp == issued_at + int(DAY.total_seconds())
    assert claims[0].rec is None
    assert claims[1].rec is not None
    assert claims[1].rec.to_claim() == {
        "tz": "America/New_York",
        "days": [2, 4],
        "start": "09:00",
        "end": "12:30",
    }
    # the bundle lives a day
    assert _seconds(bundle["expiresAt"]) - _seconds(bundle["issuedAt"]) == DAY.total_seconds()


async def test_a_credential_never_outlives_its_grant(
    gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    agent = await make_agent()
    lockbox = await make_lockbox(agent, await make_listing(agent))
    carl = await make_contractor()
    grant = await grant_to(carl, lockbox, -timedelta(hours=1), timedelta(hours=2))
    token, _ = await signed_in(gql, carl)
    [credential] = (await bundle_of(gql, token))["credentials"]
    claims = decode_credential(credential["token"], parse_jwks(await published(http)))
    assert claims.exp == int(grant.ends_at.timestamp())
    assert _seconds(credential["expiresAt"]) == int(grant.ends_at.timestamp())


async def test_an_agent_gets_an_agent_key_for_each_assigned_ble_lockbox(
    gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    # given two BLE lockboxes (one on a listing), a classic one, and another agent's
    agent = await make_agent()
    on_listing = await make_lockbox(agent, await make_listing(agent))
    spare = await make_lockbox(agent, region=await make_region())
    await make_lockbox(agent, ble=False)
    await make_lockbox(await make_agent())
    token, _ = await signed_in(gql, agent)
    # when
    bundle = await bundle_of(gql, token)
    # then
    serials = sorted(c["lockboxSerial"] for c in bundle["credentials"])
    assert serials == sorted([on_listing.serial_number, spare.serial_number])
    trusted = parse_jwks(await published(http))
    for credential in bundle["credentials"]:
        claims = decode_credential(credential["token"], trusted)
        assert claims.mth is AccessMethod.AGENT_KEY
        assert claims.jti is None and credential["grant"] is None
        assert claims.sub == to_global_id("Agent", agent.id)
        assert claims.exp - claims.nbf == DAY.total_seconds()


async def test_jwks_document_shape_and_caching(http: httpx.AsyncClient) -> None:
    # when
    response = await http.get("/.well-known/jwks.json")
    # then
    assert response.status_code == 200
    assert "max-age=300" in response.headers["cache-control"]
    [key] = response.json()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}  # never the private "d"


async def test_rotation_keeps_the_old_key_published_and_signs_with_the_new_one(
    gql: GraphQLClient, http: httpx.AsyncClient, app_settings: Settings
) -> None:
    # given an agent's credential signed before rotation
    agent = await make_agent()
    await make_lockbox(agent)
    token, _ = await signed_in(gql, agent)
    [before] = (await bundle_of(gql, token))["credentials"]
    old_kid = _header(before["token"])["kid"]
    # when the keys rotate
    ring = signing_keys.rotate(app_settings)
    [after] = (await bundle_of(gql, token))["credentials"]
    kids = {key["kid"] for key in (await published(http))["keys"]}
    # then both verify against what is published; new credentials carry the new kid
    new_kid = _header(after["token"])["kid"]
    assert new_kid == ring.signer.kid != old_kid
    assert kids == {old_kid, new_kid}
    trusted = parse_jwks(await published(http))
    decode_credential(before["token"], trusted)
    decode_credential(after["token"], trusted)
    # a day later every credential of the old key has expired: unpublished, then pruned
    clock.travel(DAY.total_seconds() + 1)
    assert {key["kid"] for key in (await published(http))["keys"]} == {new_kid}
    again = signing_keys.rotate(app_settings)
    assert [key.kid for key in again.keys] == [new_kid, again.signer.kid]
    stat = signing_keys.keys_path(app_settings).stat()
    assert stat.st_mode & 0o777 == 0o600


async def test_keys_come_from_the_environment_when_given(
    gql: GraphQLClient, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a key set shared by several instances
    shared = signing_keys.KeyRing((signing_keys.new_key(clock.now()),))
    monkeypatch.setenv(signing_keys.KEYS_ENV, signing_keys.dumps(shared))
    # when
    document = await published(http)
    # then
    assert [key["kid"] for key in document["keys"]] == [shared.signer.kid]
    assert document["keys"][0]["x"] == okp_jwk(shared.signer.public_key)["x"]


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    # given four processes that find no key file
    program = (
        "import sys; from settings import Settings; from resolvers.signing_keys import keyring;"
        f"print(keyring(Settings(database_url='sqlite://{tmp_path}/k.sqlite3')).signer.kid)"
    )
    env = {k: v for k, v in os.environ.items() if k != signing_keys.KEYS_ENV}
    # when
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", program], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(4)
    ]
    kids = {run.communicate(timeout=60)[0].strip() for run in runs}
    # then
    assert len(kids) == 1 and "" not in kids
    document = json.loads((tmp_path / signing_keys.KEYS_FILE).read_text())
    assert [key["kid"] for key in document["keys"]] == list(kids)
    assert [p.name for p in tmp_path.iterdir()] == [signing_keys.KEYS_FILE]  # no temp files left


async def test_syncing_costs_the_same_sql_for_2_or_8_grants(
    gql: GraphQLClient, sql: StatementCounter
) -> None:
    async def sql_for(grants: int) -> list[str]:
        agent = await make_agent()
        carl = await make_contractor()
        for _ in range(grants):
            lockbox = await make_lockbox(agent, await make_listing(agent))
            await grant_to(carl, lockbox, -timedelta(hours=1), timedelta(hours=2))
        token, _ = await signed_in(gql, carl)
        assert len((await sql.count(bundle_of(gql, token)))["credentials"]) == grants
        return list(sql.statements)

    # given / when
    small, large = await sql_for(2), await sql_for(8)
    # then
    assert small, "the counter must see the request's statements"
    assert len(small) == len(large), large


def _header(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return header


def _seconds(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp())
