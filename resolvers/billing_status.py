"""The account status follows the money: unpaid past the due date and the grace days makes an
ACTIVE agent PAST_DUE; a payment that leaves nothing overdue makes it ACTIVE again at once.

Billing gives back only what it took: an account the association made PAST_DUE, SUSPENDED or
INACTIVE keeps that status whatever is paid."""

from __future__ import annotations

from collections.abc import Collection
from typing import cast

from models.accounts import Account
from models.billing import BillingAccount
from models.enums import AccountEventKind, AccountStatus
from notify.sessions import Ending
from resolvers import billing_notices, events
from resolvers.billing import billing_account, ledger, money, overdue_past_grace
from settings import Settings


async def held_past_due(account_ids: Collection[int]) -> set[int]:
    """The accounts among these that billing made PAST_DUE and no payment has given back: an
    association roster saying ACTIVE does not pay their bill, so it leaves them PAST_DUE."""
    if not account_ids:
        return set()
    held = await BillingAccount.filter(
        account_id__in=list(account_ids), made_past_due=True
    ).values_list("account_id", flat=True)
    return {cast(int, account_id) for account_id in held}


async def make_past_due(settings: Settings, account: Account, ending: Ending) -> bool:
    """Inside `sessions.ending()`: the account's live subscriptions close when it commits."""
    if not await overdue_past_grace(settings, account.id):
        return False
    changed = await Account.filter(id=account.id, status=AccountStatus.ACTIVE).update(
        status=AccountStatus.PAST_DUE
    )
    if not changed:
        return False  # not ACTIVE any more, or another instance did it first
    billing = await billing_account(account.id)
    await BillingAccount.filter(id=billing.id).update(made_past_due=True)
    owed = (await ledger(account.id)).owed
    amount = money(owed, settings.billing_currency)
    await events.record(account, AccountEventKind.MADE_PAST_DUE, f"{amount} unpaid")
    await billing_notices.tell(
        account, billing_notices.made_past_due(owed, settings.billing_currency)
    )
    ending.not_active([account.id])
    return True


async def reactivate_if_paid(settings: Settings, account: Account) -> bool:
    """Inside the transaction that recorded a payment: ACTIVE again once nothing is overdue
    past the grace days, if billing was what made it PAST_DUE."""
    billing = await BillingAccount.get_or_none(account_id=account.id)
    if billing is None or not billing.made_past_due:
        return False
    if await overdue_past_grace(settings, account.id):
        return False
    await BillingAccount.filter(id=billing.id).update(made_past_due=False)
    changed = await Account.filter(id=account.id, status=AccountStatus.PAST_DUE).update(
        status=AccountStatus.ACTIVE
    )
    if changed:
        account.status = AccountStatus.ACTIVE
        await events.record(account, AccountEventKind.MADE_ACTIVE, "the overdue balance was paid")
    return bool(changed)
