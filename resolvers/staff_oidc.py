"""Staff sign-in through the company's OpenID Connect provider: from checked claims to the
staff member, bound to the provider's subject, with the role the claim or the table gives."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import pyotp
from tortoise.exceptions import IntegrityError

from core.errors import DomainError
from models.enums import StaffAction, StaffRole
from models.staff import Staff
from resolvers import audit
from resolvers.staff import DISABLED

log = logging.getLogger("keybin.staff")

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
NO_ROLE = (
    "Your company sign-in gives you no role in the support console: "
    "ask a system administrator for SUPPORT or SYSADMIN access."
)
NOT_STAFF = "You are not on the support console's staff: ask a system administrator to add you."
UNVERIFIED = (
    "Your company sign-in did not confirm your email address, so it matches no staff member."
)
TAKEN = (
    "This staff member's console access belongs to another company sign-in: "
    "ask a system administrator."
)
RETRY = "Your sign-in crossed another one: start again."


@dataclass(frozen=True)
class RoleRule:
    """Where a member's role comes from: the named claim when there is one, else the table."""

    claim: str = ""
    sysadmin_values: Collection[str] = ("SYSADMIN",)
    support_values: Collection[str] = ("SUPPORT",)

    def role(self, claims: dict[str, Any]) -> StaffRole | None:
        """The role the claim grants (a string, or a list of strings such as groups): the
        higher when it carries both; None when it is missing or names neither."""
        value = claims.get(self.claim)
        values = {value} if isinstance(value, str) else value
        if not isinstance(values, list | set):
            return None
        if any(item in self.sysadmin_values for item in values if isinstance(item, str)):
            return StaffRole.SYSADMIN
        if any(item in self.support_values for item in values if isinstance(item, str)):
            return StaffRole.SUPPORT
        return None


@dataclass(frozen=True)
class Identity:
    """The person the provider vouched for, as the claims describe them."""

    subject: str
    email: str | None  # only a verified one (or one the provider does not call unverified)
    email_unverified: bool
    name: str
    role: StaffRole | None  # from the role claim; None without one

    @classmethod
    def from_claims(cls, claims: dict[str, Any], rule: RoleRule) -> Identity:
        email = claims.get("email")
        email = email.strip().lower() if isinstance(email, str) else ""
        usable = bool(_EMAIL.fullmatch(email)) and len(email) <= 254
        # email_verified is optional: when a provider sends it, only true will do.
        unverified = "email_verified" in claims and claims["email_verified"] is not True
        name = claims.get("name")
        return cls(
            subject=str(claims["sub"])[:255],
            email=email if usable and not unverified else None,
            email_unverified=unverified,
            name=name.strip()[:200] if isinstance(name, str) else "",
            role=rule.role(claims) if rule.claim else None,
        )


class Refused(DomainError):
    """A refused sign-in; `staff` is the row it concerns, when one does (for the trail)."""

    def __init__(self, code: str, message: str, staff: Staff | None = None) -> None:
        super().__init__(code, message)
        self.staff = staff


async def sign_in(
    claims: dict[str, Any], rule: RoleRule, provider: str, client_address: str | None
) -> Staff:
    """The staff member to open a session for, or Refused; a line in the audit trail either
    way. `provider` names the issuer's host in that line."""
    identity = Identity.from_claims(claims, rule)
    try:
        staff = await _staff_for(identity, rule)
    except Refused as refused:
        await audit.record(
            StaffAction.SIGN_IN_FAILED,
            None,
            label=identity.email or f"{identity.subject} at {provider}",
            target_staff_id=refused.staff.id if refused.staff is not None else None,
            detail=f"through {provider}: {refused.code.lower().replace('_', ' ')}",
            client_address=client_address,
        )
        raise
    await audit.record(
        StaffAction.SIGNED_IN, staff, detail=f"through {provider}", client_address=client_address
    )
    return staff


async def _staff_for(identity: Identity, rule: RoleRule) -> Staff:
    # The subject is the binding: once a row carries it, the email claim no longer matters
    # (an address that moved to someone else at the provider takes over nothing).
    staff = await Staff.get_or_none(oidc_subject=identity.subject)
    if staff is None and identity.email is not None:
        staff = await Staff.get_or_none(email=identity.email)
        if staff is not None and staff.oidc_subject is not None:
            raise Refused("SUBJECT_MISMATCH", TAKEN, staff)
    if staff is not None and staff.disabled:
        raise Refused("DISABLED", DISABLED, staff)
    if rule.claim and identity.role is None:
        raise Refused("NO_ROLE", NO_ROLE, staff)
    if staff is None:
        if identity.email_unverified:
            raise Refused("EMAIL_UNVERIFIED", UNVERIFIED)
        if identity.role is None or identity.email is None:
            raise Refused("NOT_STAFF", NOT_STAFF)
        return await _create(identity, identity.role)
    return await _bind(staff, identity, identity.role or staff.role)


async def _bind(staff: Staff, identity: Identity, role: StaffRole) -> Staff:
    """Binds the row to the subject at its first sign-in through the provider, and takes the
    claim's role. A one-time password never replaced is retired: the member signs in through
    the company now, and nobody else should go on knowing a password for them."""
    changes: dict[str, Any] = {"role": role}
    if staff.must_change_password:
        changes.update(password_hash="", must_change_password=False)
    query = Staff.filter(id=staff.id)
    if staff.oidc_subject is None:
        # Conditional: of two first sign-ins racing for one row, only one binds it.
        query = query.filter(oidc_subject=None)
        changes["oidc_subject"] = identity.subject
    try:
        bound = await query.update(**changes)
    except IntegrityError as error:  # the subject got bound to another row meanwhile
        raise Refused("RETRY", RETRY, staff) from error
    if not bound:
        raise Refused("SUBJECT_MISMATCH", TAKEN, staff)
    if staff.oidc_subject is None:
        log.info("staff %s bound to their company sign-in", staff.id)
    await staff.refresh_from_db()
    return staff


async def _create(identity: Identity, role: StaffRole) -> Staff:
    """A member the role claim vouches for, made at their first sign-in. No password, and a
    TOTP secret nobody is shown: they can only ever sign in through the provider."""
    assert identity.email is not None  # noqa: S101  (checked by the caller)
    try:
        staff = await Staff.create(
            email=identity.email,
            name=identity.name or identity.email,
            role=role,
            password_hash="",
            totp_secret=pyotp.random_base32(),
            must_change_password=False,
            oidc_subject=identity.subject,
        )
    except IntegrityError as error:  # another sign-in of the same person made it first
        raise Refused("RETRY", RETRY) from error
    log.info("staff %s added at their first company sign-in (%s)", staff.id, role.value)
    return staff
