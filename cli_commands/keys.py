"""`keybin keys`: the credential-signing keys lockboxes trust (list, rotate)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from cli_commands import register
from core import clock
from resolvers.signing_keys import KEYS_ENV, KeyRing, dumps, keyring, keys_path, rotate
from settings import Settings


@register
def add_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    keys = sub.add_parser(
        "keys",
        help="the Ed25519 keys that sign lockbox credentials",
        description="The server signs lockbox credentials with Ed25519 keys kept beside the "
        f"database, or given as JSON in {KEYS_ENV} when several instances share them. "
        "GET /.well-known/jwks.json publishes the current key and every retired key whose "
        "credentials may still be valid (24 hours).",
    )
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="show the keys and which are published")
    listing.set_defaults(func=_list)
    rotation = actions.add_parser(
        "rotate",
        help="add a new signing key, retire the current one, drop keys retired over 24 h ago",
        description="Adds a new current key, marks the previous one retired now (it stays "
        "published for 24 hours, as long as credentials it signed may live) and removes keys "
        f"retired more than 24 hours ago. With {KEYS_ENV} set, prints the new key set for you "
        "to put in the environment of every instance.",
    )
    rotation.set_defaults(func=_rotate)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    _show(keyring(settings))
    return 0


def _rotate(args: argparse.Namespace, settings: Settings) -> int:
    ring = rotate(settings)
    if os.environ.get(KEYS_ENV, "").strip():
        message = f"{KEYS_ENV} is set: put this key set in the environment of every instance."
        print(message, file=sys.stderr)
        sys.stdout.write(dumps(ring))
        return 0
    print(f"rotated the signing keys in {keys_path(settings)}")
    _show(ring)
    return 0


def _show(ring: KeyRing) -> None:
    now = clock.now()
    signer = ring.signer.kid
    for key in ring.keys:
        state = (
            "signing"
            if key.kid == signer
            else ("published" if key.published_at(now) else "not published")
        )
        retired = f", retired {key.retired_at:%Y-%m-%d %H:%M} UTC" if key.retired_at else ""
        print(f"{key.kid}  created {key.created_at:%Y-%m-%d %H:%M} UTC{retired}  ({state})")
