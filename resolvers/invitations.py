"""What an invitation link may still say: the grant it was mailed for, or why it is over."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core import clock
from core.security import token_digest
from models.accounts import Account, Invitation
from models.grants import Grant
from models.listings import Listing, Lockbox
from resolvers import grant_status
from resolvers.grants import local_time
from resolvers.listings import one_line_address
from resolvers.lockboxes import zone_of

# Tokens are 43 characters; anything much longer is not one and is never looked up.
MAX_TOKEN = 200


class InvitationState(enum.Enum):
    OPEN = "open"
    USED = "used"  # accepted: the account it made holds the grant
    EXPIRED = "expired"  # its grant ended or was revoked, or an account behind it is gone
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class InvitationView:
    """Exactly what the invitation mail said, and nothing for a link that is over."""

    state: InvitationState
    agent_name: str = ""
    address: str = ""
    starts_at: str = ""
    ends_at: str = ""


async def view_invitation(token: str) -> InvitationView:
    token = token.strip()
    if not token or len(token) > MAX_TOKEN:
        return InvitationView(InvitationState.UNKNOWN)
    invitation = await Invitation.get_or_none(token_hash=token_digest(token))
    if invitation is None:
        return InvitationView(InvitationState.UNKNOWN)
    if invitation.accepted_at is not None:
        return InvitationView(InvitationState.USED)
    agent_id: int | None = invitation.invited_by_id  # type: ignore[attr-defined]
    agent = await Account.get_or_none(id=agent_id, deleted_at__isnull=True) if agent_id else None
    # A deleted invitee's address is wiped from the row: the link can no longer sign anyone up.
    grant = await _open_grant(invitation, agent.id) if agent and invitation.email else None
    if agent is None or grant is None:
        return InvitationView(InvitationState.EXPIRED)
    listing = await Listing.get(id=grant.listing_id)  # type: ignore[attr-defined]
    zone = await zone_of(await Lockbox.get(id=grant.lockbox_id))  # type: ignore[attr-defined]
    return InvitationView(
        InvitationState.OPEN,
        agent_name=agent.full_name,
        address=one_line_address(listing),
        starts_at=local_time(grant.starts_at, zone),
        ends_at=local_time(grant.ends_at, zone),
    )


async def _open_grant(invitation: Invitation, agent_id: int) -> Grant | None:
    """The invitation's grant while it still waits for its contractor and can still be used."""
    waiting = Grant.filter(
        grant_status.not_over(clock.now()),
        grantee_email=invitation.email,
        granted_by_id=agent_id,
        grantee_id__isnull=True,
    )
    if invitation.grant_id is not None:
        return await waiting.filter(id=invitation.grant_id).first()
    # Rows from before invitations named their grant: the agent's earliest waiting grant to
    # the address, which an invitation mailed there described.
    return await waiting.order_by("starts_at", "id").first()
