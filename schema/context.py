"""The typed per-request context and the one Info alias resolvers use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from notify.pubsub import PubSub
from resolvers.auth import Authenticated
from resolvers.ratelimit import RateLimiter
from schema.errors import unauthenticated
from schema.fast import answer_cache
from schema.loaders import Loaders
from settings import Settings

if TYPE_CHECKING:
    from models.accounts import Account


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None
    settings: Settings
    pubsub: PubSub
    auth: Authenticated | None
    limiter: RateLimiter | None = None
    loaders: Loaders = field(default_factory=Loaders)
    # Filled by Strawberry with the graphql-transport-ws connection_init payload.
    connection_params: dict[str, Any] | None = None

    @property
    def account(self) -> Account | None:
        return self.auth.account if self.auth else None

    def require_account(self) -> Account:
        if self.auth is None:
            raise unauthenticated()
        return self.auth.account

    def require_auth(self) -> Authenticated:
        if self.auth is None:
            raise unauthenticated()
        return self.auth

    async def rate_limit(self, action: str, **subjects: str) -> None:
        """Raise TOO_MANY_ATTEMPTS (a DomainError) past the limit for the client address or
        for any subject (login=, email=, phone=, account=), counted across instances."""
        if self.limiter is not None:
            await self.limiter.hit(action, self.client_address, **subjects)

    @property
    def client_address(self) -> str | None:
        """The peer, or the client a trusted proxy named: uvicorn settles it from
        X-Forwarded-For only for TRUSTED_PROXIES (`keybin serve`); nothing reads that raw."""
        answer_cache.depends_on_client()
        client = self.request.client
        # Cut to the event log's column: a proxy passing a long header through must not
        # turn a failed sign-in into a database error.
        return client.host[:64] if client else None


Info = strawberry.Info[Context, None]
