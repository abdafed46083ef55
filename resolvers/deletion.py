"""Deleting an account: its personal data goes at once; access history keeps only the name."""

from __future__ import annotations

import re
from datetime import datetime

from tortoise.expressions import Q

from core import clock
from core.errors import DomainError
from models.accounts import (
    Account,
    AccountEvent,
    Device,
    EmailConfirmation,
    Invitation,
    PasswordReset,
    PushToken,
    SecurityAnswer,
    Session,
    Verification,
)
from models.enums import AccountEventKind, AccountStatus, MessageKind, StaffAction
from models.grants import Grant
from models.messages import Message
from models.outbox import OutboxMessage
from notify import outbox, sessions
from resolvers import audit, events, grant_status
from resolvers.auth import check_password_of
from resolvers.events import SELF, Actor
from resolvers.grants import local_time
from resolvers.listings import one_line_address
from resolvers.lockboxes import zone_of
from resolvers.notifications import post_message

REDACTED = "[deleted]"


async def delete_my_account(account: Account, password: str) -> None:
    await check_password_of(account, password, "password")
    await delete_account(account.id)


async def delete_account(account_id: int, actor: Actor = SELF) -> None:
    """Wipe the account's personal data now; the console calls this too (with the staff actor)."""
    account = await Account.get_or_none(id=account_id, deleted_at__isnull=True)
    if account is None:
        raise DomainError("NOT_FOUND", "No such account.")
    # Addresses it used before (signup email, earlier emails and phones) are wiped as well.
    earlier = await Verification.filter(account_id=account.id).values_list("email", "phone")
    claimed = await EmailConfirmation.filter(account_id=account.id).values_list("email", flat=True)
    emails = sorted({e for e in [account.email, *(row[0] for row in earlier), *claimed] if e})
    phones = sorted({p for p in [account.phone, *(row[1] for row in earlier)] if p})
    # Waiting grants and open invitations to an address are the account's only if it proved
    # it: otherwise they wait for whoever holds the mailbox, and typing someone's address in
    # then deleting must not cancel the access granted to them.
    proven = [account.email] if account.email and account.email_verified else []
    device_ids = await Device.filter(account_id=account.id).values_list("id", flat=True)
    push_tokens = await PushToken.filter(device_id__in=device_ids).values_list("token", flat=True)
    now = clock.now()
    async with sessions.ending() as ending:
        its_grants = Q(grantee_id=account.id) | Q(grantee_email__in=proven)
        await _end_grants(its_grants, now, account.full_name)
        await Grant.filter(its_grants).update(grantee_email=None)
        await Invitation.filter(
            Q(email__in=proven) | Q(email__in=emails, accepted_at__isnull=False)
        ).update(email=None)
        await Verification.filter(
            Q(account_id=account.id) | Q(email__in=emails) | Q(phone__in=phones)
        ).delete()
        await EmailConfirmation.filter(account_id=account.id).delete()
        await PasswordReset.filter(account_id=account.id).delete()
        await SecurityAnswer.filter(account_id=account.id).delete()
        await PushToken.filter(device_id__in=device_ids).delete()
        await Session.filter(account_id=account.id).delete()
        ending.account(account.id)  # its open subscriptions close at commit
        await Device.filter(account_id=account.id).delete()
        await Message.filter(account_id=account.id).delete()
        # Mail sent for no account (an invitation) to an address it never proved waits for
        # that mailbox's owner, not for it.
        recipients = [*proven, *phones, *(str(t) for t in push_tokens)]
        await OutboxMessage.filter(Q(account_id=account.id) | Q(recipient__in=recipients)).delete()
        # Its log entries stay (kind, time, staff) but say nothing personal any more
        # (device names, for one, are often a person's name).
        await AccountEvent.filter(account_id=account.id).update(detail="")
        await _redact_other_events([*emails, *phones])
        # The staff audit trail keeps its lines (who looked, who changed what) but not the
        # masked addresses or device names in them, nor searches that typed who it was.
        await audit.forget_account(
            account.id, emails, phones, [account.first_name, account.last_name]
        )
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
        await audit.record_by(actor, StaffAction.ACCOUNT_DELETED, account.id, account.kind.lower())
    outbox.wake()  # the listing agents' messages may have pushes to send


async def _end_grants(its_grants: Q, now: datetime, name: str) -> None:
    """Every grant not yet over ends now: a visit to come is cancelled, and one under way
    ends too (revoked, so the lockbox's revocation list names it: the phone may still hold
    a credential). Each listing's agent is told, by the name the access history keeps."""
    grants = await Grant.filter(its_grants, grant_status.not_over(now)).select_related(
        "listing__agent", "lockbox"
    )
    await Grant.filter(id__in=[grant.id for grant in grants]).update(revoked_at=now)
    who = name or "A contractor"
    for grant in grants:
        agent = grant.listing.agent
        if agent.deleted_at is not None:
            continue
        address = one_line_address(grant.listing)
        zone = await zone_of(grant.lockbox)
        window = f"from {local_time(grant.starts_at, zone)} to {local_time(grant.ends_at, zone)}"
        if grant.starts_at <= now:
            title, outcome = f"Access ended: {address}", "has ended"
        else:
            title, outcome = f"Access cancelled: {address}", "is cancelled"
        await post_message(
            agent.id,
            MessageKind.ACCESS_REVOKED,
            title,
            f"{who} deleted their account: their access to the lockbox at {address} "
            f"{window} {outcome}.",
            grant.id,
        )


async def _redact_other_events(values: list[str]) -> None:
    """Other accounts' log entries (e.g. an agent's invitation) must not quote the address."""
    for value in values:
        pattern = re.compile(re.escape(value), re.IGNORECASE)
        for entry in await AccountEvent.filter(detail__icontains=value):
            entry.detail = pattern.sub(REDACTED, entry.detail)
            await entry.save(update_fields=["detail"])
