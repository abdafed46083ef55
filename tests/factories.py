"""Small factories for test data, and a GraphQL client over the ASGI app."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from core import security
from models.accounts import Account
from models.enums import AccountKind, AccountStatus, ContractorRole
from models.listings import Listing, Lockbox, Region

_hashes: dict[str, str] = {}


def hash_secret(value: str) -> str:
    """argon2id is slow by design: hash each test secret once per run."""
    if value not in _hashes:
        _hashes[value] = security.hash_secret(value)
    return _hashes[value]


# A lockbox made with a holder or a listing has been there all along, as far as records go.
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
PASSWORD = "Secret123"
PIN = "1234"
_seq = itertools.count(1)


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def raw(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """Data of a query that must not fail."""
        body = await self.raw(query, variables, token)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def sign_in(
        self, login: str, password: str = PASSWORD, device_id: str = "device-1", **extra: Any
    ) -> str:
        data = await self(
            SIGN_IN,
            {
                "input": {
                    "login": login,
                    "password": password,
                    "deviceId": device_id,
                    "deviceName": "Test phone",
                    **extra,
                }
            },
        )
        payload = data["signIn"]
        assert payload["userErrors"] == [], payload["userErrors"]
        token: str = payload["token"]
        return token


SIGN_IN = """
mutation SignIn($input: SignInInput!) {
  signIn(input: $input) {
    token
    account { id firstName lastName email ... on Agent { keyId } }
    userErrors { code field message }
  }
}
"""


async def make_agent(
    email: str | None = None,
    password: str | None = PASSWORD,
    pin: str | None = PIN,
    **fields: Any,
) -> Account:
    n = next(_seq)
    return await Account.create(
        kind=AccountKind.AGENT,
        key_id=fields.pop("key_id", f"{100000000 + n:09d}"),
        mls_id=fields.pop("mls_id", f"M{n}"),
        association=fields.pop("association", "Test Association"),
        first_name=fields.pop("first_name", "Alice"),
        last_name=fields.pop("last_name", f"Agent{n}"),
        email=(email or f"agent{n}@example.com").lower(),
        phone=fields.pop("phone", None),
        status=fields.pop("status", AccountStatus.ACTIVE),
        email_verified=fields.pop("email_verified", True),
        password_hash=hash_secret(password) if password else None,
        pin_hash=hash_secret(pin) if pin else None,
        **fields,
    )


async def make_contractor(
    email: str | None = None, password: str = PASSWORD, pin: str = PIN, **fields: Any
) -> Account:
    n = next(_seq)
    return await Account.create(
        kind=AccountKind.CONTRACTOR,
        first_name=fields.pop("first_name", "Carl"),
        last_name=fields.pop("last_name", f"Contractor{n}"),
        email=(email or f"contractor{n}@example.com").lower(),
        phone=fields.pop("phone", f"+1513555{n:04d}"),
        role=fields.pop("role", ContractorRole.CLEANER),
        status=fields.pop("status", AccountStatus.ACTIVE),
        email_verified=fields.pop("email_verified", True),
        password_hash=hash_secret(password),
        pin_hash=hash_secret(pin),
        **fields,
    )


async def make_region(code: str = "CIN", time_zone: str = "America/New_York") -> Region:
    region, _ = await Region.get_or_create(
        code=code, defaults={"name": f"Region {code}", "time_zone": time_zone}
    )
    return region


async def make_listing(agent: Account, **fields: Any) -> Listing:
    from models.enums import ListingSource

    n = next(_seq)
    return await Listing.create(
        agent=agent,
        mls_number=fields.pop("mls_number", f"MLS{n}"),
        association=fields.pop("association", agent.association),
        source=fields.pop("source", ListingSource.IMPORTED),
        line1=fields.pop("line1", f"{n} Main Street"),
        city=fields.pop("city", "Cincinnati"),
        state=fields.pop("state", "OH"),
        postal_code=fields.pop("postal_code", "45202"),
        **fields,
    )


TEST_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


async def make_lockbox(
    agent: Account | None = None, listing: Listing | None = None, ble: bool = True, **fields: Any
) -> Lockbox:
    n = next(_seq)
    region = fields.pop("region", None)
    if listing is not None and region is None:
        region = await make_region()
    return await Lockbox.create(
        serial_number=fields.pop("serial_number", f"SL{n:08d}"),
        model=fields.pop("model", "VBox BLE" if ble else "Classic"),
        ble=ble,
        secret=fields.pop("secret", TEST_SECRET),
        assigned_to=agent,
        listing=listing,
        region=region,
        on_listing_since=fields.pop("on_listing_since", None),
        assigned_at=fields.pop("assigned_at", LONG_AGO if agent else None),
        listed_at=fields.pop("listed_at", LONG_AGO if listing else None),
        **fields,
    )


async def make_staff(
    email: str | None = None, name: str = "Sam Support", role: str = "SUPPORT"
) -> Any:
    """A console staff member as `keybin staff add` makes it (a NewStaff: one-time password)."""
    from models.enums import StaffRole
    from resolvers.staff import add_staff

    n = next(_seq)
    return await add_staff(email or f"staff{n}@keybin.test", name, StaffRole(role))


async def make_grant(
    agent: Account,
    listing: Listing,
    lockbox: Lockbox,
    grantee: Account | None = None,
    starts_in: float = 3600,
    hours: float = 2,
    **fields: Any,
) -> Any:
    """A grant written straight to the database, starting `starts_in` seconds from now."""
    from datetime import timedelta

    from core import clock
    from models.grants import Grant

    starts_at = clock.now() + timedelta(seconds=starts_in)
    return await Grant.create(
        listing=listing,
        lockbox=lockbox,
        granted_by=agent,
        grantee=grantee,
        grantee_email=fields.pop("grantee_email", grantee.email if grantee else "new@example.com"),
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=hours),
        **fields,
    )


async def both_ways(
    gql: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The answer through compiled execution (and its SQL pages), then through
    graphql-core's own executor alone: the two must be the same."""
    from schema.fast.plans import CompiledExecutor

    compiled = await gql.raw(query, variables, token)
    with monkeypatch.context() as patch:
        patch.setattr(CompiledExecutor, "enabled", False)
        general = await gql.raw(query, variables, token)
    return compiled, general
