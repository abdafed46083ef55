"""`keybin import members`: the association roster (RESO Member JSON) as agent accounts."""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from core.errors import DomainError
from importers import bulk
from importers.report import ImportReport, RowError
from importers.sources import (
    batched,
    json_object,
    optional,
    originating_system,
    required,
    reso_values,
)
from models.accounts import Account, AccountEvent
from models.enums import AccountEventKind, AccountKind, AccountStatus
from notify import sessions
from resolvers.billing_status import held_past_due
from resolvers.emails import valid_email
from resolvers.phones import normalize_phone

# RESO's MemberStatus values (Active, Inactive) and the contract's names, in any letter
# case, with or without spaces, hyphens or underscores ("Past Due", "PAST_DUE").
STATUSES = {
    "active": AccountStatus.ACTIVE,
    "inactive": AccountStatus.INACTIVE,
    "suspended": AccountStatus.SUSPENDED,
    "pastdue": AccountStatus.PAST_DUE,
}
_SEPARATORS = re.compile(r"[\s_-]+")
# What a re-import may change; everything else (Key ID, password, PIN) is the agent's own.
ROSTER_FIELDS = ("first_name", "last_name", "email", "phone", "status")
# A batch whose insert collides with a concurrent writer is re-planned this many times.
ATTEMPTS = 3

Key = tuple[str, str]  # (association, MLS id): who an agent is across imports


@dataclass
class Member:
    index: int
    association: str
    mls_id: str
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    status: AccountStatus

    @property
    def key(self) -> Key:
        return (self.association, self.mls_id)

    def roster(self) -> dict[str, Any]:
        """The roster fields as stored (the status as its value)."""
        return {name: _stored(getattr(self, name)) for name in ROSTER_FIELDS}


def _stored(value: Any) -> Any:
    return value.value if isinstance(value, AccountStatus) else value


def parse_member(
    index: int, value: Any, report: ImportReport, association: str | None = None
) -> Member:
    """The row as an agent; what is required is checked before any warning is given.
    `association` is the one the command line names, if any."""
    row = json_object(value)
    mls_id = required(row, "MemberMlsId", 64)
    first_name = required(row, "MemberFirstName", 100)
    last_name = required(row, "MemberLastName", 100)
    # Agents are known by MLS id within their association, and MLS ids repeat across
    # associations: a row naming none could take over any association's agent.
    association = originating_system(row, association)
    if association is None:
        raise RowError(
            "OriginatingSystemName is missing: name the association on each row or with "
            "--association"
        )
    raw_status = optional(row, "MemberStatus", 32)
    raw_email = optional(row, "MemberEmail", 254)
    raw_phone = optional(row, "MemberMobilePhone", 32)
    email = None
    if raw_email is not None:
        try:
            email = valid_email(raw_email)
        except DomainError:
            report.warn(index, f"MemberEmail {raw_email!r} is not an email address: left empty")
    phone = None
    if raw_phone is not None:
        try:
            phone = normalize_phone(raw_phone)
        except DomainError:
            report.warn(index, f"MemberMobilePhone {raw_phone!r} is not a phone number: left empty")
    return Member(
        index=index,
        association=association,
        mls_id=mls_id,
        first_name=first_name,
        last_name=last_name,
        email=email,
        phone=phone,
        status=_status(index, raw_status, report),
    )


def _status(index: int, raw: str | None, report: ImportReport) -> AccountStatus:
    """A status keybin does not know grants nothing: the agent is INACTIVE, and told."""
    status = STATUSES.get(_SEPARATORS.sub("", raw or "").lower())
    if status is not None:
        return status
    given = f"MemberStatus {raw!r} is not one keybin knows" if raw else "MemberStatus is missing"
    report.warn(index, f"{given} (Active, Inactive, Suspended, Past Due): made INACTIVE")
    return AccountStatus.INACTIVE


async def import_members(
    path: Path, report: ImportReport, association: str | None = None
) -> ImportReport:
    """Create or update one agent per roster row; new agents get a Key ID. `association`:
    the file is that association's roster (rows naming another are refused)."""
    report.position = "index"
    values = reso_values(path)
    progress = report.progress("members", len(values))
    done = 0
    for batch in batched(enumerate(values)):
        members: dict[Key, Member] = {}
        repeats = 0
        for index, value in batch:
            try:
                member = parse_member(index, value, report, association)
            except RowError as error:
                report.skip(index, str(error))
                continue
            # The same agent twice in one batch: the later row wins, as a re-import would.
            repeats += member.key in members
            members[member.key] = member
        await _leave_out_contractor_emails(members, report)
        created, updated = await _write(members, report)
        report.created += created
        report.updated += updated + repeats
        done += len(batch)
        progress.update(done)
    progress.finish(len(values))
    return report


async def _leave_out_contractor_emails(members: Mapping[Key, Member], report: ImportReport) -> None:
    """A contractor's email stays theirs: held by an agent too, it would make every grant to
    the contractor EMAIL_BELONGS_TO_AGENT. The agent lands without it, and the report says so."""
    emails = {member.email for member in members.values() if member.email is not None}
    if not emails:
        return
    taken: list[Any] = await Account.filter(
        kind=AccountKind.CONTRACTOR, email__in=emails
    ).values_list("email", flat=True)
    for member in members.values():
        if member.email in taken:
            report.warn(member.index, "MemberEmail is a contractor's sign-in email: left empty")
            member.email = None


async def _write(members: Mapping[Key, Member], report: ImportReport) -> tuple[int, int]:
    for attempt in range(1, ATTEMPTS + 1):
        left_alone: list[Member] = []
        leaving: list[int] = []
        try:
            async with sessions.ending() as ending:
                created, updated = await _upsert(ending.db, members, left_alone, leaving)
                # Their open subscriptions close (on every instance) once this commits.
                ending.not_active(leaving)
        except IntegrityError:
            # Another writer took a Key ID or an agent meanwhile: plan the batch again.
            if attempt == ATTEMPTS:
                raise
            continue
        for member in left_alone:
            report.warn(member.index, f"agent {member.mls_id} deleted their account: left alone")
        return created, updated
    raise AssertionError("unreachable")


async def _upsert(
    db: BaseDBAsyncClient,
    members: Mapping[Key, Member],
    left_alone: list[Member],
    leaving: list[int],
) -> tuple[int, int]:
    """Write one batch; returns (created, updated), lists rows it would not apply and the
    accounts it takes out of ACTIVE."""
    if not members:
        return 0, 0
    found = await Account.filter(
        kind=AccountKind.AGENT,
        association__in={key[0] for key in members},
        mls_id__in={key[1] for key in members},
    ).values_list("id", "association", "mls_id", "deleted_at", *ROSTER_FIELDS)
    existing = {(row[1], row[2]): row for row in found}
    unpaid = await held_past_due([row[0] for row in found])
    changes: list[list[Any]] = []
    events: list[tuple[Any, ...]] = []
    new: list[Member] = []
    for key, member in members.items():
        row = existing.get(key)
        if row is None:
            new.append(member)
            continue
        if row[3] is not None:
            # A deleted account stays wiped: the roster must not bring its data back.
            left_alone.append(member)
            continue
        roster = member.roster()
        if row[0] in unpaid and roster["status"] == AccountStatus.ACTIVE.value:
            # The association's ACTIVE does not pay keybin's bill: billing keeps PAST_DUE until
            # a payment gives it back (resolvers/billing_status.py); any other status applies.
            roster["status"] = AccountStatus.PAST_DUE.value
        differences = [
            name
            for name, old in zip(ROSTER_FIELDS, row[4:], strict=True)
            if _stored(old) != roster[name]
        ]
        if "status" in differences and row[4 + ROSTER_FIELDS.index("status")] == "ACTIVE":
            leaving.append(row[0])
        if differences:
            # The roster's address is the association's word: proven, like a new agent's.
            changes.append([*roster.values(), roster["email"] is not None, row[0]])
            events.append(_event(row[0], "roster update: " + ", ".join(differences)))
    await bulk.update(db, Account, (*ROSTER_FIELDS, "email_verified"), changes)
    if new:
        key_ids = await _new_key_ids(len(new))
        await bulk.insert(
            db,
            Account,
            # The roster's addresses are the association's own: proven.
            ("kind", "email_verified", "key_id", "association", "mls_id", *ROSTER_FIELDS),
            [
                (
                    AccountKind.AGENT,
                    True,
                    key_id,
                    member.association,
                    member.mls_id,
                    *member.roster().values(),
                )
                for member, key_id in zip(new, key_ids, strict=True)
            ],
        )
        # Inserted without RETURNING: read the new ids back by their unique Key IDs.
        for account_id, association in await Account.filter(key_id__in=key_ids).values_list(
            "id", "association"
        ):
            events.append(_event(account_id, f"imported from the {association or 'MLS'} roster"))
    await bulk.insert(db, AccountEvent, ("account_id", "kind", "detail"), events)
    return len(new), len(members) - len(new) - len(left_alone)


def _event(account_id: int, detail: str) -> tuple[Any, ...]:
    # The entry resolvers.events.record writes, made in bulk for large rosters.
    return (account_id, AccountEventKind.IMPORTED.value, detail[:500])


async def _new_key_ids(count: int) -> list[str]:
    """Unique random 9-digit Key IDs (no leading zero), drawn again where one is taken."""
    chosen: set[str] = set()
    while len(chosen) < count:
        candidates = {new_key_id() for _ in range(count - len(chosen))} - chosen
        taken = await _taken(candidates)
        chosen |= candidates - taken
    return list(chosen)


async def _taken(key_ids: Collection[str]) -> set[str]:
    rows: list[Any] = await Account.filter(key_id__in=key_ids).values_list("key_id", flat=True)
    return {str(key_id) for key_id in rows}


def new_key_id() -> str:
    return str(100_000_000 + secrets.randbelow(900_000_000))
