"""What billing tells an agent: a Message Center message for every effect of money, and an
email too for reminders and a paused account, queued in the transaction of the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from models.accounts import Account
from models.enums import MessageKind
from notify import outbox
from resolvers.billing import money
from resolvers.notifications import post_message

HOW_TO_PAY = "Pay in the app, or call support with your 9-digit Key ID."


@dataclass(frozen=True)
class Notice:
    title: str
    body: str
    email: bool = False  # reminders and a paused account are mailed as well


async def tell(account: Account, notice: Notice) -> None:
    """Call inside the transaction of the change; outbox.wake() after it commits."""
    await post_message(account.id, MessageKind.ACCOUNT, notice.title, notice.body)
    if notice.email and account.email:
        context = {
            "name": account.first_name or "there",
            "title": notice.title,
            "body": notice.body,
            "key_id": account.key_id or "",
        }
        await outbox.email(account.email, "billing_notice", context, account.id)


def day(value: date) -> str:
    return f"{value:%B} {value.day}, {value.year}"


def bill_issued(amount: int, currency: str, period_start: date) -> Notice:
    return Notice(
        f"Your key subscription bill: {money(amount, currency)} due {day(period_start)}",
        f"Your key subscription for {period_start:%B %Y} is {money(amount, currency)}, due "
        f"on {day(period_start)}. {HOW_TO_PAY} To have it paid every month, tick "
        "“Pay every month” when you pay in the app.",
        email=True,
    )


def overdue(owed: int, currency: str, due_on: date, grace_days: int) -> Notice:
    last_day = due_on + timedelta(days=grace_days)
    return Notice(
        f"Payment overdue: {money(owed, currency)}",
        f"Your key subscription payment was due on {day(due_on)} and {money(owed, currency)} "
        f"is unpaid. Please pay by {day(last_day)} to keep your account active: after that "
        f"it becomes past due and your keys stop working until it is paid. {HOW_TO_PAY}",
        email=True,
    )


def made_past_due(owed: int, currency: str) -> Notice:
    return Notice(
        "Your account is past due",
        f"Your key subscription balance of {money(owed, currency)} is unpaid, so your account "
        "is past due: lockbox keys and new accesses are paused until it is paid. "
        f"{HOW_TO_PAY} Your account becomes active again as soon as the payment is received. "
        "For anything else about your account status, please contact your Association or "
        "MLS office.",
        email=True,
    )


def payment_received(amount: int, currency: str, balance: int, reactivated: bool) -> Notice:
    text = (
        f"Thank you: we received your payment of {money(amount, currency)}. "
        f"Your balance is {money(max(balance, 0), currency)}."
    )
    if balance < 0:
        text += f" You have a credit of {money(-balance, currency)} for your next bills."
    if reactivated:
        text += " Your account is active again."
    return Notice(f"Payment received: {money(amount, currency)}", text)


def payment_failed(amount: int, currency: str, reason: str, autopay: bool) -> Notice:
    what = "Your automatic monthly payment" if autopay else "Your payment"
    because = f" ({reason.rstrip('.')})" if reason else ""
    return Notice(
        "Payment failed",
        f"{what} of {money(amount, currency)} did not go through{because}. Nothing was "
        f"charged. Please pay with another card: {HOW_TO_PAY}",
        email=True,
    )


def refunded(amount: int, currency: str, balance: int) -> Notice:
    return Notice(
        f"Refund: {money(amount, currency)}",
        f"{money(amount, currency)} was refunded to your card. "
        f"Your balance is {money(balance, currency)}.",
    )


def autopay_started(first_day: date | None) -> Notice:
    when = f", starting {day(first_day)}" if first_day else ""
    return Notice(
        "Automatic monthly payment is on",
        f"Your key subscription is now paid automatically on the 1st of every month{when}.",
    )


def autopay_ended() -> Notice:
    return Notice(
        "Automatic monthly payment has stopped",
        "Your key subscription is no longer paid automatically. Your bills will appear in "
        f"the app each month. {HOW_TO_PAY}",
        email=True,
    )


def autopay_price_changed(before: int, after: int, currency: str) -> Notice:
    return Notice(
        f"Your automatic monthly payment is now {money(after, currency)}",
        f"The key subscription price for your association is now {money(after, currency)} a "
        f"month (it was {money(before, currency)}). Your automatic payment on the 1st charges "
        "the new amount from the next month billed. To pay each bill yourself instead, turn "
        "off automatic payment in the app.",
        email=True,
    )


def autopay_paused() -> Notice:
    return Notice(
        "Automatic monthly payment is paused",
        "Your association has no key subscription price at the moment, so nothing is charged "
        "to your card. Automatic payment starts again by itself if a price is set, and you "
        "will be told. To end it now, turn off automatic payment in the app. For anything "
        "else, please contact your Association or MLS office.",
        email=True,
    )


def autopay_resumed(amount: int, currency: str) -> Notice:
    return Notice(
        f"Automatic monthly payment resumes at {money(amount, currency)}",
        f"The key subscription price for your association is {money(amount, currency)} a "
        "month. Your automatic payment on the 1st charges it again from the next month "
        "billed. To pay each bill yourself instead, turn off automatic payment in the app.",
        email=True,
    )


def active_again() -> Notice:
    return Notice(
        "Your account is active again",
        "Nothing is overdue on your key subscription any more: your account is active again.",
    )
