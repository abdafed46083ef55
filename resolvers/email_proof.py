"""Proven email addresses: the links keybin mails, and what proving an address unlocks.

A grant is addressed to an email. It reaches an account only once that account has shown it
can read the mailbox: by an invitation token mailed there, or a confirmation link mailed there.
"""

from __future__ import annotations

from datetime import timedelta

from tortoise.transactions import in_transaction

from core import clock
from core.errors import DomainError
from core.security import new_token, token_digest
from models.accounts import Account, EmailConfirmation, Invitation
from models.enums import AccountEventKind, AccountKind, MessageKind
from models.grants import Grant
from notify import outbox
from resolvers import events
from resolvers.events import SELF, Actor
from resolvers.grants import tell_grantee
from resolvers.notifications import post_message
from settings import Settings

CONFIRMATION_LIFETIME = timedelta(days=3)
# A burst of "send it again" taps sends one mail while the last link is still good.
RESEND_THROTTLE = timedelta(minutes=1)


def _invalid(message: str) -> DomainError:
    return DomainError("INVALID_TOKEN", message, ["input", "token"])


async def mail_confirmation(settings: Settings, account: Account, email: str) -> None:
    """Call inside the transaction that gives the account the address: a link to prove it."""
    token = new_token()
    await EmailConfirmation.create(
        token_hash=token_digest(token),
        account_id=account.id,
        email=email,
        expires_at=clock.now() + CONFIRMATION_LIFETIME,
    )
    await outbox.email(
        email,
        "confirm_email",
        {
            "name": account.first_name or "there",
            "link": f"{settings.public_url}/confirm-email?token={token}",
            "days": CONFIRMATION_LIFETIME.days,
        },
        account_id=account.id,
    )


async def request_confirmation(settings: Settings, account: Account) -> None:
    """Mail a new link for the account's unproven address; quiet while a fresh one exists."""
    await account.refresh_from_db(fields=["email", "email_verified"])
    if account.email_verified:
        return
    if not account.email:
        raise DomainError("INVALID_INPUT", "Add an email address first.")
    now = clock.now()
    recent = await EmailConfirmation.filter(
        account_id=account.id,
        email=account.email,
        used_at__isnull=True,
        expires_at__gt=now,
        created_at__gte=now - RESEND_THROTTLE,
    ).exists()
    if recent:
        return
    async with in_transaction():
        await mail_confirmation(settings, account, account.email)
    outbox.wake()


async def is_confirmation(token: str) -> bool:
    """Whether a token is a confirmation link's (else it may be an invitation's)."""
    return await EmailConfirmation.exists(token_hash=token_digest(token.strip()))


async def confirm_email(token: str) -> Account:
    """Follow a confirmation link: single use, and only for the address the account still has."""
    confirmation = await EmailConfirmation.get_or_none(token_hash=token_digest(token.strip()))
    now = clock.now()
    if confirmation is None or confirmation.used_at is not None or confirmation.expires_at <= now:
        raise _invalid("This confirmation link is invalid, used or expired: ask for a new one.")
    account = await Account.get_or_none(
        id=confirmation.account_id,  # type: ignore[attr-defined]
        deleted_at__isnull=True,
    )
    if account is None or account.email != confirmation.email:
        raise _invalid("This link is for an address the account no longer uses.")
    async with in_transaction():
        # Conditional: two uses of one link at once, only one proves anything.
        used = await EmailConfirmation.filter(id=confirmation.id, used_at__isnull=True).update(
            used_at=now
        )
        if not used:
            raise _invalid("This confirmation link has already been used.")
        await prove(account, confirmation.email)
    outbox.wake()
    return await Account.get(id=account.id)


async def confirm_with_invitation(account: Account, token: str) -> Account:
    """A signed-in contractor proves its address with an invitation mailed to it."""
    invitation = await Invitation.get_or_none(token_hash=token_digest(token.strip()))
    if (
        account.kind != AccountKind.CONTRACTOR
        or invitation is None
        or invitation.accepted_at is not None
        or not account.email
        or invitation.email != account.email
    ):
        raise _invalid("This invitation is not valid for your email address.")
    async with in_transaction():
        await prove(account, account.email)
    outbox.wake()
    return await Account.get(id=account.id)


async def prove(account: Account, email: str, actor: Actor = SELF) -> int:
    """Inside a transaction: the address is proven; waiting grants to it become the account's.

    Returns how many grants it received. Each one that can still be used is announced in the
    Message Center, as a grant to a proven contractor is when it is made.
    """
    marked = await Account.filter(id=account.id, email=email).update(email_verified=True)
    if not marked:
        raise _invalid("This link is for an address the account no longer uses.")
    await EmailConfirmation.filter(account_id=account.id, used_at__isnull=True).update(
        used_at=clock.now()
    )
    if account.kind != AccountKind.CONTRACTOR:
        await events.record(account, AccountEventKind.EMAIL_CONFIRMED, "", actor)
        return 0
    await Invitation.filter(email=email, accepted_at__isnull=True).update(accepted_at=clock.now())
    waiting = await Grant.filter(grantee_email=email, grantee_id__isnull=True).order_by("id")
    if waiting:
        await Grant.filter(id__in=[g.id for g in waiting]).update(grantee_id=account.id)
        for grant in waiting:
            if grant.revoked_at is None and grant.ends_at > clock.now():
                await tell_grantee(grant, account.id)
    await events.record(
        account, AccountEventKind.EMAIL_CONFIRMED, f"{len(waiting)} grant(s) received", actor
    )
    return len(waiting)


async def release_unproven(email: str) -> None:
    """Inside the signup of an invitation's holder: an unproven claim to the address loses it.

    The account keeps working for the sessions it has; it no longer has this address (it can
    add another and prove it), and its Message Center says why.
    """
    losers = await Account.filter(
        email=email, kind=AccountKind.CONTRACTOR, email_verified=False, deleted_at__isnull=True
    )
    for loser in losers:
        await Account.filter(id=loser.id).update(email=None)
        await EmailConfirmation.filter(account_id=loser.id, used_at__isnull=True).delete()
        await post_message(
            loser.id,
            MessageKind.ACCOUNT,
            "Your email address was removed",
            "The owner of the email address you signed up with proved it is theirs, so it is "
            "no longer on your account. Add an email address you can read, and confirm it "
            "with the link we send there.",
        )
        await events.record(loser, AccountEventKind.EMAIL_RELEASED, "proven by its owner")
