"""The lockbox's shared secret: base32 text, the key for One Day Codes and access records."""

import base64
import binascii

# pyotp refuses shorter HOTP secrets (NIST SP 800-63B); records use the same bytes, so the
# same floor applies to both and a short secret fails early with one clear error.
MIN_SECRET_BYTES = 14


class InvalidSecret(ValueError):
    """The secret is not base32 or is too short."""


def normalize_secret(secret: str) -> str:
    """Uppercase and unpadded: secrets are typed and imported in every style."""
    text = _canonical(secret)
    secret_bytes(text)
    return text


def secret_bytes(secret: str) -> bytes:
    text = _canonical(secret)
    try:
        key = base64.b32decode(text + "=" * (-len(text) % 8))
    except binascii.Error as error:
        raise InvalidSecret("lockbox secret is not base32") from error
    if len(key) < MIN_SECRET_BYTES:
        raise InvalidSecret(f"lockbox secret is shorter than {MIN_SECRET_BYTES} bytes")
    return key


def _canonical(secret: str) -> str:
    return "".join(secret.split()).rstrip("=").upper()
