"""The server's Ed25519 credential-signing keys: kept beside the database, rotated, published."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ble.b64 import b64url_decode, b64url_encode
from ble.jwks import jwks, okp_jwk, thumbprint
from core import clock
from settings import Settings

KEYS_FILE = "keybin-signing-keys.json"
KEYS_ENV = "KEYBIN_SIGNING_KEYS"
# The longest a credential lives: a retired key stays published this long, so every
# credential it signed still verifies until it expires, and is pruned after.
MAX_CREDENTIAL_LIFETIME = timedelta(hours=24)


class SigningKeyError(Exception):
    """The key file or KEYBIN_SIGNING_KEYS is not a keybin key set."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    created_at: datetime
    retired_at: datetime | None = None

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def published_at(self, now: datetime) -> bool:
        return self.retired_at is None or now < self.retired_at + MAX_CREDENTIAL_LIFETIME


@dataclass(frozen=True)
class KeyRing:
    """Oldest first; the newest key not retired signs."""

    keys: tuple[SigningKey, ...]

    @property
    def signer(self) -> SigningKey:
        current = [key for key in self.keys if key.retired_at is None]
        if not current:
            raise SigningKeyError("no current signing key: run `keybin keys rotate`")
        return max(current, key=lambda key: key.created_at)

    def published(self, now: datetime | None = None) -> dict[str, Ed25519PublicKey]:
        at = now or clock.now()
        return {key.kid: key.public_key for key in self.keys if key.published_at(at)}

    def jwks(self, now: datetime | None = None) -> dict[str, list[dict[str, str]]]:
        return jwks(self.published(now))

    def rotated(self, now: datetime) -> KeyRing:
        """A new current key; the old ones retired now; those past every credential, gone."""
        kept = [
            key if key.retired_at is not None else replace(key, retired_at=now)
            for key in self.keys
            if key.retired_at is None or now < key.retired_at + MAX_CREDENTIAL_LIFETIME
        ]
        return KeyRing((*kept, new_key(now)))


def new_key(now: datetime) -> SigningKey:
    private_key = Ed25519PrivateKey.generate()
    return SigningKey(thumbprint(private_key.public_key()), private_key, now)


def dumps(ring: KeyRing) -> str:
    return json.dumps({"keys": [_entry(key) for key in ring.keys]}, indent=2) + "\n"


def loads(text: str) -> KeyRing:
    try:
        document = json.loads(text)
        entries = document["keys"]
        keys = tuple(_key(entry) for entry in entries)
    except (ValueError, KeyError, TypeError) as error:
        raise SigningKeyError(f"not a keybin signing key set: {error}") from error
    if not keys:
        raise SigningKeyError("the signing key set is empty")
    return KeyRing(keys)


def _entry(key: SigningKey) -> dict[str, Any]:
    raw = key.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return okp_jwk(key.public_key) | {
        "d": b64url_encode(raw),
        "kid": key.kid,
        "created_at": key.created_at.isoformat(),
        "retired_at": key.retired_at.isoformat() if key.retired_at else None,
    }


def _key(entry: Mapping[str, Any]) -> SigningKey:
    private_key = Ed25519PrivateKey.from_private_bytes(b64url_decode(entry["d"]))
    kid = thumbprint(private_key.public_key())
    if entry.get("kid", kid) != kid:
        raise ValueError(f"kid {entry['kid']!r} does not match its key")
    retired = entry.get("retired_at")
    return SigningKey(
        kid=kid,
        private_key=private_key,
        created_at=_aware(datetime.fromisoformat(entry["created_at"])),
        retired_at=_aware(datetime.fromisoformat(retired)) if retired else None,
    )


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("key times need a UTC offset")
    return value


def keys_path(settings: Settings) -> Path:
    return settings.data_dir / KEYS_FILE


# Parsed key sets by where they came from; a file is re-read when it changes on disk,
# so a running server picks up `keybin keys rotate` without a restart.
_cache: dict[tuple[object, ...], KeyRing] = {}


def keyring(settings: Settings) -> KeyRing:
    """The key set from KEYBIN_SIGNING_KEYS, else the file, created on first use."""
    from_env = os.environ.get(KEYS_ENV, "").strip()
    if from_env:
        return _cached(("env", from_env), lambda: loads(from_env))
    path = keys_path(settings)
    if not path.exists():
        _create(path)
    stat = path.stat()
    key = (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return _cached(key, lambda: loads(path.read_text()))


def _cached(key: tuple[object, ...], load: Callable[[], KeyRing]) -> KeyRing:
    ring = _cache.get(key)
    if ring is None:
        ring = _cache[key] = load()
    return ring


def rotate(settings: Settings) -> KeyRing:
    """Rotate the file's keys. With KEYBIN_SIGNING_KEYS the caller publishes the result."""
    ring = keyring(settings).rotated(clock.now())
    if not os.environ.get(KEYS_ENV, "").strip():
        _write(keys_path(settings), dumps(ring), replace_existing=True)
    return ring


def _create(path: Path) -> None:
    # Another process may make it first: then theirs is the key set everyone uses.
    with contextlib.suppress(FileExistsError):
        _write(path, dumps(KeyRing((new_key(clock.now()),))), replace_existing=False)


def _write(path: Path, text: str, *, replace_existing: bool) -> None:
    """Write whole or not at all: a reader never sees half a key file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace_existing:
            os.replace(temporary, path)
        else:
            # link() fails if the name exists, like O_EXCL, and publishes the whole file at once.
            os.link(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
