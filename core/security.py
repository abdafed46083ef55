"""Secrets: argon2id hashes for passwords, PINs and answers; random tokens kept as SHA-256."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import os
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import DomainError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters

PASSWORD_RULE = (
    "Password must be 6-20 characters with at least one upper case letter, "
    "one lower case letter and one digit."
)
# [0-9], not \d: \d also matches other scripts' digits ("١٢٣٤"), which the app's keypad
# cannot type back.
_PIN = re.compile(r"[0-9]{4}")


@functools.cache
def _dummy_hash() -> str:
    """A valid hash of nothing in particular: verifying against it when an account is
    missing keeps the answer time the same whether or not the login exists. Made when first
    needed (a server makes it as it starts, `prepare_dummy_hash`), not on import, where every
    command and process paid an argon2 hash (~130 ms) to start."""
    return _hasher.hash(secrets.token_hex(16))


def hash_secret(value: str) -> str:
    return _hasher.hash(value)


def verify_secret(stored: str | None, value: str) -> bool:
    try:
        return _hasher.verify(stored or _dummy_hash(), value) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_password_policy(password: str, *field: str) -> None:
    ok = (
        6 <= len(password) <= 20
        and re.search(r"[A-Z]", password) is not None
        and re.search(r"[a-z]", password) is not None
        and re.search(r"[0-9]", password) is not None
    )
    if not ok:
        raise DomainError("WEAK_PASSWORD", PASSWORD_RULE, ["input", *field])


def check_pin_format(pin: str, *field: str) -> None:
    if not _PIN.fullmatch(pin):
        raise DomainError("INVALID_INPUT", "A PIN is exactly 4 digits.", ["input", *field])


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_code(digits: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(digits))


def constant_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def normalize_answer(answer: str) -> str:
    """A security answer as compared: case and spacing do not matter to a caller on the phone."""
    return " ".join(answer.split()).casefold()


def _answer_fernet(secret_key: str) -> Fernet:
    # A key of its own, derived from SECRET_KEY, so a leak of one use does not open another.
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"keybin security answers"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, plaintext: str) -> str:
    """Encrypt a value support must read back (security answers) under SECRET_KEY."""
    return _answer_fernet(secret_key).encrypt(plaintext.encode()).decode()


def unseal(secret_key: str, sealed: str) -> str | None:
    """The sealed value, or None when it was sealed under another key or is damaged."""
    try:
        return _answer_fernet(secret_key).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None


def _yield_to_the_event_loop() -> None:
    """Hashing threads run at a lower priority: a burst of PIN checks (seconds of CPU) then
    delays the answers that wait for them, never live messages or requests that need none."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# As many hashing threads as CPUs the process may use (each argon2 call starts its own
# lanes, which inherit the priority): more would only queue inside the operating system.
_hashing = ThreadPoolExecutor(
    max_workers=_cpus(), thread_name_prefix="argon2", initializer=_yield_to_the_event_loop
)


async def hash_secret_async(value: str) -> str:
    """argon2id takes ~50-150 ms of CPU on purpose: run it off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_hashing, hash_secret, value)


async def verify_secret_async(stored: str | None, value: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_hashing, verify_secret, stored, value)


def prepare_dummy_hash() -> None:
    """Make the hash unknown logins are checked against now, on a hashing thread, so the first
    one is answered no slower than any other (not waited for: start-up goes on)."""
    _hashing.submit(_dummy_hash)
