"""Deleting an account: its personal data goes at once; access history keeps only the name."""

from __future__ import annotations

import re

from tortoise.expressions import Q

from models.accounts import (
    Account,
    AccountEvent,
    Device,
    Invitation,
    PasswordReset,
    PushToken,
    SecurityAnswer,
    Session,
    Verification,
)
from models.enums import AccountEventKind, AccountStatus
from models.grants import Grant
from models.messages import Message
from models.outbox import OutboxMessage
from notify import sessions
from resolvers import clock, events
from resolvers.auth import check_password_of
from resolvers.errors import DomainError
from resolvers.events import SELF, Actor

REDACTED = "[deleted]"


async def delete_my_account(account: Account, password: str) -> None:
    await check_password_of(account, password, "password")
    await delete_account(account.id)


async def delete_account(account_id: int, actor: Actor = SELF) -> None:
    """Wipe the account's personal data now; the console calls this too (with the staff actor)."""
    account = await Account.get_or_none(id=account_id, deleted_at__isnull=True)
    if account is None:
        raise DomainError("NOT_FOUND", "No such account.")
    # Addresses it used before (signup email, earlier phones) are wiped as well.
    earlier = await Verification.filter(account_id=account.id).values_list("email", "phone")
    emails = sorted({e for e in [account.email, *(row[0] for row in earlier)] if e})
    phones = sorted({p for p in [account.phone, *(row[1] for row in earlier)] if p})
    device_ids = await Device.filter(account_id=account.id).values_list("id", flat=True)
    push_tokens = await PushToken.filter(device_id__in=device_ids).values_list("token", flat=True)
    now = clock.now()
    async with sessions.ending() as ending:
        its_grants = Q(grantee_id=account.id) | Q(grantee_email__in=emails)
        # Future visits are cancelled; ones under way or past stay in the history.
        await Grant.filter(its_grants, starts_at__gt=now, revoked_at__isnull=True).update(
            revoked_at=now
        )
        await Grant.filter(its_grants).update(grantee_email=None)
        await Invitation.filter(email__in=emails).update(email=None)
        await Verification.filter(
            Q(account_id=account.id) | Q(email__in=emails) | Q(phone__in=phones)
        ).delete()
        await PasswordReset.filter(account_id=account.id).delete()
        await SecurityAnswer.filter(account_id=account.id).delete()
        await PushToken.filter(device_id__in=device_ids).delete()
        await Session.filter(account_id=account.id).delete()
        ending.account(account.id)  # its open subscriptions close at commit
        await Device.filter(account_id=account.id).delete()
        await Message.filter(account_id=account.id).delete()
        recipients = [*emails, *phones, *(str(t) for t in push_tokens)]
        await OutboxMessage.filter(Q(account_id=account.id) | Q(recipient__in=recipients)).delete()
        # Its log entries stay (kind, time, staff) but say nothing personal any more
        # (device names, for one, are often a person's name).
        await AccountEvent.filter(account_id=account.id).update(detail="")
        await _redact_other_events([*emails, *phones])
        await Account.filter(id=account.id).update(
            first_name="",
            last_name="",
            email=None,
            phone=None,
            company=None,
            password_hash=None,
            pin_hash=None,
            failed_logins=0,
            locked_until=None,
            failed_pins=0,
            pin_locked_until=None,
            status=AccountStatus.INACTIVE,
            deleted_at=now,
        )
        await events.record(account, AccountEventKind.DELETED, "", actor)


async def _redact_other_events(values: list[str]) -> None:
    """Other accounts' log entries (e.g. an agent's invitation) must not quote the address."""
    for value in values:
        pattern = re.compile(re.escape(value), re.IGNORECASE)
        for entry in await AccountEvent.filter(detail__icontains=value):
            entry.detail = pattern.sub(REDACTED, entry.detail)
            await entry.save(update_fields=["detail"])
