"""Upload receipts: the server's signed word that it stored a lockbox's records."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from ble.receipt import Receipt, seq_ranges, sign_receipt
from core import clock
from resolvers.signing_keys import keyring
from settings import Settings

# The phone may upload far from the lockbox and acknowledge at its next visit; a receipt only
# ever names records the server holds, so a long life costs nothing but a little trust.
RECEIPT_LIFETIME = timedelta(days=7)


def upload_receipt(settings: Settings, lockbox_serial: str, stored: Collection[int]) -> str | None:
    """A receipt naming the stored seqs, signed with the key that signs credentials; None
    for an upload of no records."""
    if not stored:
        return None
    now = clock.now().replace(microsecond=0)
    receipt = Receipt(
        iss=settings.public_url,
        aud=lockbox_serial,
        iat=int(now.timestamp()),
        exp=int((now + RECEIPT_LIFETIME).timestamp()),
        seq=seq_ranges(stored),
    )
    signer = keyring(settings).signer
    return sign_receipt(signer.private_key, signer.kid, receipt)
