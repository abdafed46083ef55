"""Query.node: resolve a global id, showing only what the signed-in account may see."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from core.ids import from_global_id, pk_of, to_global_id
from resolvers import nodes
from schema.accounts import account_from_model
from schema.base import Node
from schema.context import Info
from schema.messages import Message

NodeResolver = Callable[[Info, int], Awaitable[Node | None]]

# type name -> resolver; each returns None for what the caller may not see, so
# another account's objects are indistinguishable from missing ones.
RESOLVERS: dict[str, NodeResolver] = {}


def node_resolver(*type_names: str) -> Callable[[NodeResolver], NodeResolver]:
    def register(fn: NodeResolver) -> NodeResolver:
        for name in type_names:
            RESOLVERS[name] = fn
        return fn

    return register


async def resolve_node(info: Info, global_id: str) -> Node | None:
    info.context.require_account()
    parsed = from_global_id(global_id)
    # An id no row can have (not ASCII digits, past the id column) is missing, as any other.
    if parsed is None or parsed[0] not in RESOLVERS or (pk := pk_of(parsed[1])) is None:
        return None
    return await RESOLVERS[parsed[0]](info, pk)


@node_resolver("Agent", "Contractor")
async def _account(info: Info, pk: int) -> Node | None:
    row = await nodes.own_account(info.context.require_account(), pk)
    return account_from_model(row) if row else None


@node_resolver("Device")
async def _device(info: Info, pk: int) -> Node | None:
    row = await nodes.own_device(info.context.require_account(), pk)
    if row is None:
        return None
    from schema.accounts import Device

    current = info.context.auth.session.device_id if info.context.auth else None  # type: ignore[attr-defined]
    return Device(
        id=to_global_id("Device", row.id),  # type: ignore[arg-type]
        name=row.name,
        registered_at=row.registered_at,
        last_seen_at=row.last_seen_at,
        current=row.id == current,
    )


@node_resolver("Message")
async def _message(info: Info, pk: int) -> Node | None:
    row = await nodes.own_message(info.context.require_account(), pk)
    return Message.from_model(row) if row else None


@node_resolver("Listing")
async def _listing(info: Info, pk: int) -> Node | None:
    from schema.listings import Listing

    row = await nodes.own_listing(info.context.require_account(), pk)
    return Listing.from_model(row) if row else None


@node_resolver("Lockbox")
async def _lockbox(info: Info, pk: int) -> Node | None:
    from schema.listings import Lockbox

    row = await nodes.assigned_lockbox(info.context.require_account(), pk)
    return Lockbox.from_model(row) if row else None


@node_resolver("Grant")
async def _grant(info: Info, pk: int) -> Node | None:
    from resolvers.grants import visible_grant
    from schema.grants import Grant

    row = await visible_grant(info.context.require_account(), pk)
    return Grant.from_model(row) if row else None


@node_resolver("AccessEvent")
async def _access_event(info: Info, pk: int) -> Node | None:
    from resolvers.access_log import visible_event
    from schema.grants import AccessEvent

    row = await visible_event(info.context.require_account(), pk)
    return AccessEvent.from_model(row) if row else None


@node_resolver("OneDayCodeIssue")
async def _one_day_code_issue(info: Info, pk: int) -> Node | None:
    from resolvers.codes import visible_code_issue
    from schema.one_day_codes import OneDayCodeIssue

    row = await visible_code_issue(info.context.require_account(), pk)
    return OneDayCodeIssue.from_model(row) if row else None


@node_resolver("Invoice")
async def _invoice(info: Info, pk: int) -> Node | None:
    from resolvers.billing import paid_invoice_ids
    from schema.billing import Invoice

    row = await nodes.own_invoice(info.context.require_account(), pk)
    if row is None:
        return None
    return Invoice.from_model(row, row.id in await paid_invoice_ids(row.account_id))  # type: ignore[attr-defined]


@node_resolver("Payment")
async def _payment(info: Info, pk: int) -> Node | None:
    from schema.billing import Payment

    row = await nodes.own_payment(info.context.require_account(), pk)
    return Payment.from_model(row) if row else None
