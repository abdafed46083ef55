"""The `keybin` command line: serve, migrate, import, staff, schema, keys, lockbox."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from settings import ConfigurationError, Settings, from_env
from web import logs

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int] | int]


def serving_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """Without PUBLIC_URL, the links keybin mails and prints lead to the address it serves
    (`--host`, `--port`), not to the default port 8000."""
    if os.environ.get("PUBLIC_URL"):
        return settings
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    return dataclasses.replace(settings, public_url=f"http://{host}:{args.port}")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    import db
    from app import create_app

    settings = serving_settings(args, settings)

    async def prepare() -> None:
        async with db.connected(settings):
            if args.demo:
                from demo import load_demo

                await load_demo(settings, announce=True, host=args.host, port=args.port)

    asyncio.run(prepare())
    app = create_app(settings, serving=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="info",
        **proxy_options(settings),
        **logs.uvicorn_options(settings.production),
    )
    return 0


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn trusts X-Forwarded-For from loopback unless told otherwise, so any local
    client could name its own address: only TRUSTED_PROXIES may, and with none nobody."""
    trusted = list(settings.trusted_proxies)
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted}


async def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    import db

    async with db.connected(settings):
        pass
    print("database is up to date")
    return 0


def _schema(args: argparse.Namespace, settings: Settings) -> int:
    from schema.schema import export_sdl

    sys.stdout.write(export_sdl())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keybin",
        description="keybin: temporary, trackable access to real-estate lockboxes.",
        epilog="Configuration comes from the environment (DATABASE_URL, SMTP_HOST, ...): "
        "see the README.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="migrate the database, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="load demo data and print sign-ins")
    serve.set_defaults(func=_serve)

    migrate = sub.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(func=_migrate)

    schema = sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    schema.set_defaults(func=_schema)

    import cli_commands  # importing it registers import, staff, keys, lockbox

    for registrar in cli_commands.registrars:
        registrar(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = from_env()
    except ConfigurationError as error:
        sys.exit(f"keybin: {error}")
    logs.configure(production=settings.production)  # JSON lines in production
    try:  # what a command finds wrong with its configuration (a trusted document, say)
        result = args.func(args, settings)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
    except ConfigurationError as error:
        sys.exit(f"keybin: {error}")
    sys.exit(int(result or 0))


if __name__ == "__main__":
    main()
