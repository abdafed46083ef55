"""Push tokens: registering a device's token, and one push per device for each new message."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core.errors import DomainError, invalid_input
from core.ids import to_global_id
from models.accounts import MAX_DEVICE_ID, Account, Device, PushToken
from models.enums import PushPlatform
from models.messages import Message
from notify import push
from resolvers.notifications import on_message
from settings import Settings

MAX_TOKEN_LENGTH = 512

# The platforms this process can deliver to, set from the settings when the app is made:
# with none, a message queues no pushes at all.
_platforms: frozenset[PushPlatform] = frozenset()


def configure(settings: Settings) -> None:
    global _platforms
    platforms = set()
    if settings.fcm_configured:
        platforms.add(PushPlatform.FCM)
    if settings.apns_configured:
        platforms.add(PushPlatform.APNS)
    _platforms = frozenset(platforms)


def _check_token(token: str) -> None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise invalid_input(
            f"A push token of 1-{MAX_TOKEN_LENGTH} characters is required.", "token"
        )
    if not token.isprintable() or any(char.isspace() for char in token):
        raise invalid_input("A push token has no spaces or control characters.", "token")


async def register_push_token(
    account: Account, device_id: str, platform: PushPlatform, token: str
) -> PushToken:
    """Store (or replace) the token of one of the caller's registered devices."""
    _check_token(token)
    device = None
    if 0 < len(device_id) <= MAX_DEVICE_ID and "\x00" not in device_id:
        device = await Device.get_or_none(account=account, device_id=device_id)
    if device is None:
        raise DomainError(
            "DEVICE_NOT_REGISTERED",
            "Sign in on this device first: it is not registered to this account.",
            ["input", "deviceId"],
        )
    try:
        async with in_transaction():
            return await _store(device, platform, token)
    except IntegrityError:
        # A concurrent registration for the same device and platform made the row first.
        async with in_transaction():
            return await _store(device, platform, token)


async def _store(device: Device, platform: PushPlatform, token: str) -> PushToken:
    # A token addresses one app installation: when another registration held it (someone
    # else signed in on this phone before), only the newest may receive pushes on it.
    await PushToken.filter(platform=platform, token=token).exclude(device_id=device.id).delete()
    row = await PushToken.get_or_none(device=device, platform=platform)
    if row is None:
        return await PushToken.create(device=device, platform=platform, token=token)
    if row.token != token:
        row.token = token
        await row.save(update_fields=["token"])
    return row


@on_message
async def queue_pushes(message: Message) -> None:
    """A push row per device with a token, in the message's own transaction."""
    if not _platforms:
        return
    account_id: int = message.account_id  # type: ignore[attr-defined]
    grant_id: int | None = message.grant_id  # type: ignore[attr-defined]
    tokens = await PushToken.filter(
        device__account_id=account_id, platform__in=list(_platforms)
    ).order_by("id")
    data: dict[str, str | None] = {
        "messageId": to_global_id("Message", message.id),
        "grantId": to_global_id("Grant", grant_id) if grant_id else None,
        "kind": message.kind.value,
    }
    for row in tokens:
        notification = push.Notification(
            token_id=row.id,
            platform=row.platform,
            token=row.token,
            title=message.title,
            body=message.body,
            data=data,
        )
        await push.queue(notification, account_id=account_id)
