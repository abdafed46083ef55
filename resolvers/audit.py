"""The staff audit trail: every console action, who took it, on which account, from where."""

from __future__ import annotations

from models.enums import StaffAction
from models.staff import Staff, StaffAudit
from resolvers import clock


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
    return await StaffAudit.create(
        at=clock.now(),
        staff_id=staff.id if staff is not None else None,
        staff_label=label[:254],
        action=action,
        account_id=account_id,
        target_staff_id=target_staff_id,
        detail=detail[:500],
        client_address=client_address[:64] if client_address else None,
    )
