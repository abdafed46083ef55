"""`keybin staff add`: create a support-console account with a one-time password and TOTP."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import cli_commands
from core.errors import DomainError
from models.enums import StaffRole
from settings import Settings


async def _add(args: argparse.Namespace, settings: Settings) -> int:
    import db
    from resolvers.staff import add_staff

    async with db.connected(settings):
        try:
            created = await add_staff(args.email, args.name or args.email, StaffRole(args.role))
        except DomainError as error:
            print(f"keybin: {error.message}", file=sys.stderr)
            return 1
    # One write, every line ended, flushed at once: log lines go to stderr meanwhile, and
    # a terminal showing both must never run one into the otpauth:// line.
    sys.stdout.write(
        f"Staff member {created.staff.email} ({created.staff.role.value}) added.\n"
        f"One-time password (changed at first login): {created.password}\n"
        "Add this to an authenticator app (TOTP):\n"
        f"{created.otpauth_uri}\n"
    )
    sys.stdout.flush()
    return 0


@cli_commands.register
def register(sub: argparse._SubParsersAction[Any]) -> None:
    staff = sub.add_parser("staff", help="manage support-console staff")
    actions = staff.add_subparsers(dest="staff_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a staff member; prints a one-time password")
    add.add_argument("--email", required=True)
    add.add_argument("--name", default="", help="shown in account event logs")
    add.add_argument("--role", required=True, choices=[role.value for role in StaffRole])
    add.set_defaults(func=_add)
