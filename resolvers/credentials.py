"""syncCredentials: signing the caller's lockbox credentials for one registered device."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ble.b64 import b64url_decode
from ble.credential import CredentialClaims, sign_credential
from ble.outcomes import AccessMethod
from ble.recurrence import Recurrence
from core import clock
from core.errors import DomainError
from core.ids import to_global_id
from models.accounts import MAX_DEVICE_ID, Account, Device
from models.enums import AccountKind
from models.grants import Grant
from models.listings import Lockbox
from resolvers.account_status import require_active
from resolvers.revocations import IssuedRevocations, revocation_lists, revoked_lockboxes_of
from resolvers.signing_keys import MAX_CREDENTIAL_LIFETIME, SigningKey, keyring
from settings import Settings

log = logging.getLogger("keybin.credentials")

BUNDLE_LIFETIME = MAX_CREDENTIAL_LIFETIME
# Credentials also go out for grants starting this soon, so a phone that syncs in the
# morning can open in the afternoon without signal at the listing.
LOOKAHEAD = timedelta(hours=24)


@dataclass(frozen=True)
class IssuedCredential:
    token: str
    lockbox_serial: str
    grant: Grant | None
    not_before: datetime
    expires_at: datetime
    lockbox_id: int


@dataclass(frozen=True)
class CredentialBundle:
    issued_at: datetime
    expires_at: datetime
    credentials: list[IssuedCredential]
    revocations: list[IssuedRevocations] = field(default_factory=list)


async def sync_credentials(
    settings: Settings, account: Account, device_id: str
) -> CredentialBundle:
    require_active(account)
    device_key = await _device_key(account, device_id)
    now = clock.now().replace(microsecond=0)
    signer = keyring(settings).signer
    issuer = _Issuer(settings.public_url, signer, device_key, now)
    serials: dict[int, str] = {}
    if account.kind == AccountKind.AGENT:
        credentials = await _agent_credentials(issuer, account)
    else:
        credentials = await _contractor_credentials(issuer, account)
        # Also where its own revoked grants were: the old credential may still be on a phone,
        # and every phone that goes to that lockbox may as well carry the news.
        serials |= await revoked_lockboxes_of(account.id, now)
    serials |= {issued.lockbox_id: issued.lockbox_serial for issued in credentials}
    revocations = await revocation_lists(settings, serials, now)
    return CredentialBundle(now, now + BUNDLE_LIFETIME, credentials, revocations)


async def _device_key(account: Account, device_id: str) -> bytes:
    device = None
    # A longer id was never registered, and Tortoise refuses to look one up.
    if len(device_id) <= MAX_DEVICE_ID:
        device = await Device.get_or_none(account_id=account.id, device_id=device_id)
    try:
        raw = b64url_decode(device.public_key or "") if device else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise DomainError(
            "DEVICE_NOT_REGISTERED",
            "This phone is not set up to open lockboxes yet: sign in on it again.",
            ["input", "deviceId"],
        )
    return raw


@dataclass(frozen=True)
class _Issuer:
    public_url: str
    signer: SigningKey
    device_key: bytes
    now: datetime

    def issue(
        self,
        sub: str,
        lockbox: Lockbox,
        nbf: datetime,
        exp: datetime,
        *,
        grant: Grant | None = None,
        rec: Recurrence | None = None,
    ) -> IssuedCredential:
        claims = CredentialClaims(
            iss=self.public_url,
            sub=sub,
            aud=lockbox.serial_number,
            jti=to_global_id("Grant", grant.id) if grant else None,
            nbf=int(nbf.timestamp()),
            exp=int(exp.timestamp()),
            iat=int(self.now.timestamp()),
            device_key=self.device_key,
            rec=rec,
            mth=AccessMethod.BLE_CREDENTIAL if grant else AccessMethod.AGENT_KEY,
        )
        token = sign_credential(self.signer.private_key, self.signer.kid, claims.to_dict())
        return IssuedCredential(token, lockbox.serial_number, grant, nbf, exp, lockbox.id)


async def _contractor_credentials(issuer: _Issuer, account: Account) -> list[IssuedCredential]:
    now = issuer.now
    grants = (
        await Grant.filter(
            grantee_id=account.id,
            revoked_at__isnull=True,
            starts_at__lt=now + LOOKAHEAD,
            ends_at__gt=now,
            lockbox__ble=True,
        )
        .select_related("lockbox", "lockbox__region")
        .order_by("starts_at", "id")
    )
    sub = to_global_id("Contractor", account.id)
    issued = []
    for grant in grants:
        exp = min(grant.ends_at, now + MAX_CREDENTIAL_LIFETIME)
        if int(exp.timestamp()) <= int(grant.starts_at.timestamp()):
            continue  # starts just as this bundle ends: the next sync brings it
        try:
            rec = _recurrence(grant)
        except ValueError:  # InvalidRecurrence, or weekdays that are not numbers
            log.error("grant %s has unusable weekly hours; no credential issued", grant.id)
            continue
        issued.append(issuer.issue(sub, grant.lockbox, grant.starts_at, exp, grant=grant, rec=rec))
    return issued


async def _agent_credentials(issuer: _Issuer, account: Account) -> list[IssuedCredential]:
    lockboxes = await Lockbox.filter(assigned_to_id=account.id, ble=True).order_by("serial_number")
    sub = to_global_id("Agent", account.id)
    exp = issuer.now + MAX_CREDENTIAL_LIFETIME
    return [issuer.issue(sub, lockbox, issuer.now, exp) for lockbox in lockboxes]


def _recurrence(grant: Grant) -> Recurrence | None:
    if not grant.rec_weekdays:
        return None
    region = grant.lockbox.region
    return Recurrence(
        tz=region.time_zone if region else "UTC",
        days=tuple(int(day) for day in grant.rec_weekdays.split(",")),
        start=grant.rec_start or "",
        end=grant.rec_end or "",
    )
