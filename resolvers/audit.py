"""The staff audit trail: every console action, who took it, on which account, from where;
read back by a SYSADMIN a page (or a CSV export) at a time."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from tortoise.expressions import Q, RawSQL
from tortoise.queryset import QuerySet

from core import clock
from models.accounts import Account, AccountEvent
from models.enums import AccountEventKind, StaffAction
from models.staff import Staff, StaffAudit
from resolvers.events import Actor

PAGE_SIZE = 50
EXPORT_BATCH = 500
# A repeat of the same search (or view) by the same member within this window, with nothing
# in between, is the same look: a reload, Back, or htmx firing twice for one settled input.
REPEAT_WINDOW = timedelta(minutes=1)
REDACTED = "[deleted]"
_NOT_DIGIT = re.compile(r"[^0-9]")
_WORD = re.compile(r"[^\W\d_]+")  # a run of letters

# What the page needs of the account a row names, read in the same statement as the rows:
# its kind (none when there is no such account) and whether only its tombstone is left.
_ACCOUNT_KIND = RawSQL(
    '(SELECT "kind" FROM "account" WHERE "account"."id" = "staff_audit"."account_id")'
)
_ACCOUNT_GONE = RawSQL(
    '(SELECT CASE WHEN "deleted_at" IS NULL THEN 0 ELSE 1 END FROM "account" '
    'WHERE "account"."id" = "staff_audit"."account_id")'
)


def _mask(part: str) -> str:
    keep = min(2, len(part) - 1) if part else 0
    return part[:keep] + "*" * (len(part) - keep)


def mask_email(address: str | None) -> str:
    """'john@example.com' -> 'jo**@ex*****.com': enough to tell two addresses apart in a log,
    too little to write to one. The top-level domain stays; a one-letter part is all stars."""
    if not address:
        return "(none)"
    local, at, domain = address.rpartition("@")
    if not at:
        return _mask(address)
    name, dot, top = domain.rpartition(".")
    masked_domain = f"{_mask(name)}.{top}" if dot and name else _mask(domain)
    return f"{_mask(local)}@{masked_domain}"


def email_change_detail(old: str | None, new: str | None) -> str:
    return f"{mask_email(old)} -> {mask_email(new)}"


async def _create(
    action: StaffAction,
    staff_id: int | None,
    label: str,
    account_id: int | None,
    target_staff_id: int | None,
    detail: str,
    client_address: str | None,
) -> StaffAudit:
    return await StaffAudit.create(
        at=clock.now(),
        staff_id=staff_id,
        staff_label=label[:254],
        action=action,
        account_id=account_id,
        target_staff_id=target_staff_id,
        detail=detail[:500],
        client_address=client_address[:64] if client_address else None,
    )


async def record(
    action: StaffAction,
    staff: Staff | None,
    *,
    account_id: int | None = None,
    target_staff_id: int | None = None,
    detail: str = "",
    client_address: str | None = None,
    label: str | None = None,
) -> StaffAudit:
    """One line of the trail; `label` names the actor when there is no staff row (a failed
    sign-in with an unknown address), otherwise the member's name or email as it is now."""
    if label is None:
        label = (staff.name or staff.email) if staff is not None else ""
    staff_id = staff.id if staff is not None else None
    return await _create(
        action, staff_id, label, account_id, target_staff_id, detail, client_address
    )


async def record_by(
    actor: Actor, action: StaffAction, account_id: int | None = None, detail: str = ""
) -> StaffAudit | None:
    """The line for a change a resolver made on a staff member's behalf; none when the
    account holder made it themselves (the app is not staff)."""
    if actor.staff_id is None:
        return None
    label = actor.staff_name or ""
    return await _create(
        action, actor.staff_id, label, account_id, None, detail, actor.client_address
    )


async def record_look(
    action: StaffAction,
    staff: Staff,
    *,
    account_id: int | None = None,
    detail: str = "",
    client_address: str | None = None,
) -> StaffAudit | None:
    """A search or an account view, unless it repeats the member's latest line within
    REPEAT_WINDOW: then it is the same look again and the trail keeps the first one."""
    latest = await StaffAudit.filter(staff_id=staff.id).order_by("-at", "-id").first()
    if (
        latest is not None
        and latest.action == action
        and latest.account_id == account_id
        and latest.detail == detail[:500]
        and latest.at > clock.now() - REPEAT_WINDOW
    ):
        return None
    return await record(
        action, staff, account_id=account_id, detail=detail, client_address=client_address
    )


async def record_search(staff: Staff, text: str, client_address: str | None) -> None:
    """A search as the results were served for it. The box searches 250 ms after typing
    stops, so each line is a result set the member saw ("jo", then "john sm"): the trail
    keeps every one of them, since each showed accounts. Only the exact repeats
    (reload, Back, a second trigger for the same text) are dropped by record_look."""
    searched = " ".join(text.replace("\x00", "").split())[:100]
    if len(searched) >= 2:
        await record_look(
            StaffAction.SEARCHED, staff, detail=searched, client_address=client_address
        )


async def forget_account(
    account_id: int, emails: list[str], phones: list[str], names: list[str]
) -> None:
    """Called by the deletion, in its transaction. Lines about the account keep who, what
    and when but lose their detail (masked addresses, device names). A search that typed its
    email, its phone or a word of its name loses its text too, even if it was looking for
    someone else of that name: the trail keeps that a search happened, by whom, when. Parts
    of words ("zeb") stay: they are what staff typed, and name no one."""
    await StaffAudit.filter(account_id=account_id).exclude(detail="").update(detail="")
    words = {word for name in names for word in _WORD.findall(name.casefold()) if len(word) > 1}
    clues = [*emails, *(_digits(phone)[-4:] for phone in phones), *words]
    if not clues:
        return
    near = Q(*(Q(detail__icontains=clue) for clue in clues), join_type="OR")
    candidates = await StaffAudit.filter(near, action=StaffAction.SEARCHED).only("id", "detail")
    named = [row.id for row in candidates if _names(row.detail, emails, phones, words)]
    if named:
        await StaffAudit.filter(id__in=named).update(detail=REDACTED)


def _digits(text: str) -> str:
    return _NOT_DIGIT.sub("", text)


def _names(searched: str, emails: list[str], phones: list[str], words: set[str]) -> bool:
    text = searched.casefold()
    if any(email.casefold() in text for email in emails):
        return True
    typed = _digits(searched)
    if len(typed) >= 7 and any(typed in _digits(phone) for phone in phones):
        return True
    return not words.isdisjoint(_WORD.findall(text))


@dataclass(frozen=True)
class AuditFilter:
    """What the SYSADMIN narrowed the trail to; dates are whole days in UTC."""

    staff_id: int | None = None  # lines by the member, or about them (disabled, sign-in tried)
    account_id: int | None = None
    action: StaffAction | None = None
    since: date | None = None
    until: date | None = None

    def query(self) -> QuerySet[StaffAudit]:
        query = StaffAudit.all()
        if self.staff_id is not None:
            query = query.filter(Q(staff_id=self.staff_id) | Q(target_staff_id=self.staff_id))
        if self.account_id is not None:
            query = query.filter(account_id=self.account_id)
        if self.action is not None:
            query = query.filter(action=self.action)
        if self.since is not None:
            query = query.filter(at__gte=_midnight(self.since))
        # The last day there is has no next midnight (the date type ends): it bounds nothing.
        if self.until is not None and self.until < date.max:
            query = query.filter(at__lt=_midnight(self.until + timedelta(days=1)))
        return query

    def describe(self) -> str:
        """The filter in words, for the export's own line in the trail."""
        parts = [
            f"staff #{self.staff_id}" if self.staff_id is not None else "",
            f"account #{self.account_id}" if self.account_id is not None else "",
            f"action {self.action.value}" if self.action is not None else "",
            f"from {self.since.isoformat()}" if self.since is not None else "",
            f"to {self.until.isoformat()}" if self.until is not None else "",
        ]
        return ", ".join(part for part in parts if part) or "everything"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class AuditRow:
    entry: StaffAudit
    account_kind: str | None  # None: the line names no account, or one that never existed
    account_deleted: bool  # only the stripped row is left: no page to link to


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    total: int  # lines matching the filter, on every page
    older: int | None  # `before` of the next older page
    newer: int | None  # `after` of the next newer page


def _annotated(query: QuerySet[StaffAudit]) -> QuerySet[StaffAudit]:
    return query.annotate(account_kind=_ACCOUNT_KIND, account_gone=_ACCOUNT_GONE)


def _row(entry: StaffAudit) -> AuditRow:
    kind = getattr(entry, "account_kind", None)
    return AuditRow(entry, str(kind) if kind else None, bool(getattr(entry, "account_gone", 0)))


async def page(
    where: AuditFilter, before: int | None = None, after: int | None = None, size: int = PAGE_SIZE
) -> AuditPage:
    """Newest first, keyed on id (lines added while paging shift nothing): `before` steps to
    older lines, `after` back to newer ones. One statement for the rows, one for the count."""
    query = _annotated(where.query())
    if after is not None:
        found = await query.filter(id__gt=after).order_by("id").limit(size + 1)
        entries = list(reversed(found[:size]))
        newer = entries[0].id if len(found) > size else None
        older = entries[-1].id if entries else after + 1
    else:
        if before is not None:
            query = query.filter(id__lt=before)
        found = await query.order_by("-id").limit(size + 1)
        entries = found[:size]
        older = entries[-1].id if len(found) > size else None
        newer = None if before is None else (entries[0].id if entries else before - 1)
    total = await where.query().count()
    return AuditPage([_row(entry) for entry in entries], total, older, newer)


async def export(where: AuditFilter) -> AsyncIterator[AuditRow]:
    """Every matching line, newest first, a batch per statement (the export streams)."""
    before: int | None = None
    while True:
        query = _annotated(where.query())
        if before is not None:
            query = query.filter(id__lt=before)
        batch = await query.order_by("-id").limit(EXPORT_BATCH)
        for entry in batch:
            yield _row(entry)
        if len(batch) < EXPORT_BATCH:
            return
        before = batch[-1].id


@dataclass(frozen=True)
class Tombstone:
    """What is left to say of a deleted account: nothing personal, only when and how."""

    account_id: int
    kind: str
    deleted_at: datetime
    staff_name: str | None  # None: its holder deleted it in the app

    @property
    def by(self) -> str:
        return f"support: {self.staff_name}" if self.staff_name else "the app (its holder)"


async def tombstone(account_id: int) -> Tombstone | None:
    account = await Account.get_or_none(id=account_id, deleted_at__isnull=False)
    if account is None or account.deleted_at is None:
        return None
    deleted = (
        await AccountEvent.filter(account_id=account_id, kind=AccountEventKind.DELETED.value)
        .order_by("-id")
        .first()
    )
    staff_name = None
    if deleted is not None and deleted.staff_id is not None:
        staff_name = deleted.staff_name or f"staff #{deleted.staff_id}"
    return Tombstone(account_id, account.kind.value.lower(), account.deleted_at, staff_name)


async def staff_members() -> list[Staff]:
    """For the filter's select: everyone who may appear in the trail."""
    return await Staff.all().order_by("name", "email", "id").only("id", "name", "email")
