"""Signed revocation lists per lockbox, so phones carry revocations to lockboxes offline."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q
from tortoise.functions import Count

from ble.revocation import RevocationList, sign_revocations
from core.ids import to_global_id
from models.grants import Grant
from resolvers.signing_keys import MAX_CREDENTIAL_LIFETIME, keyring
from settings import Settings

REVOCATIONS_LIFETIME = timedelta(hours=24)
# A lockbox's clock may run behind the server's: keep naming a revoked grant this much
# longer than any of its credentials can live by the server's clock.
CLOCK_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class IssuedRevocations:
    lockbox_serial: str
    token: str
    issued_at: datetime
    seq: int
    grant_ids: frozenset[str]


def still_live(now: datetime) -> Q:
    """Revoked grants whose credentials may still open a lockbox.

    A credential was signed before its grant was revoked, lives at most
    MAX_CREDENTIAL_LIFETIME and never past the grant's end: once either bound has passed
    (and the margin for a slow lockbox clock), no credential for it is left to refuse.
    """
    return Q(
        revoked_at__isnull=False,
        revoked_at__gt=now - MAX_CREDENTIAL_LIFETIME - CLOCK_MARGIN,
        ends_at__gt=now - CLOCK_MARGIN,
    )


async def revocation_lists(
    settings: Settings, serials: Mapping[int, str], now: datetime
) -> list[IssuedRevocations]:
    """One signed list for each lockbox in `serials` (lockbox id -> serial), by serial."""
    if not serials:
        return []
    ids = list(serials)
    # Counted before the grants are read: a revocation committed in between then shows up
    # in a list whose seq does not count it yet, never the other way round, so a list with
    # seq N always names every live one of the lockbox's first N revocations.
    counts = await _revoked_counts(ids)
    listed = await Grant.filter(still_live(now), lockbox_id__in=ids).values_list("id", "lockbox_id")
    grant_ids: dict[int, set[str]] = {lockbox_id: set() for lockbox_id in ids}
    for grant_id, lockbox_id in listed:
        grant_ids[lockbox_id].add(to_global_id("Grant", grant_id))
    signer = keyring(settings).signer
    issued = []
    for lockbox_id, serial in sorted(serials.items(), key=lambda item: item[1]):
        revocations = RevocationList(
            iss=settings.public_url,
            aud=serial,
            iat=int(now.timestamp()),
            exp=int((now + REVOCATIONS_LIFETIME).timestamp()),
            seq=counts.get(lockbox_id, 0),
            jti=frozenset(grant_ids[lockbox_id]),
        )
        token = sign_revocations(signer.private_key, signer.kid, revocations)
        issued.append(IssuedRevocations(serial, token, now, revocations.seq, revocations.jti))
    return issued


async def revoked_lockboxes_of(grantee_id: int, now: datetime) -> dict[int, str]:
    """The BLE lockboxes where this contractor's revoked grants may still have credentials."""
    rows = await Grant.filter(
        still_live(now), grantee_id=grantee_id, lockbox__ble=True
    ).values_list("lockbox_id", "lockbox__serial_number")
    return dict(rows)


async def _revoked_counts(lockbox_ids: Collection[int]) -> dict[int, int]:
    # Revocations are never undone and grants never deleted, so this count only grows.
    rows = (
        await Grant.filter(lockbox_id__in=lockbox_ids, revoked_at__isnull=False)
        .annotate(revoked=Count("id"))
        .group_by("lockbox_id")
        .values_list("lockbox_id", "revoked")
    )
    return dict(rows)
