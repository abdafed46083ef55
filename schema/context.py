"""The typed per-request context and the one Info alias resolvers use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from models.accounts import Account
from notify.pubsub import PubSub
from resolvers.auth import Authenticated
from resolvers.ratelimit import RateLimiter
from schema import answers
from schema.errors import unauthenticated
from schema.loaders import Loaders
from settings import Settings


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

    def rate_limit(self, action: str) -> None:
        """Raise TOO_MANY_ATTEMPTS (a DomainError) past the per-address limit."""
        if self.limiter is not None:
            self.limiter.hit(action, self.client_address)

    @property
    def client_address(self) -> str | None:
        answers.depends_on_client()
        client = self.request.client
        return client.host if client else None


Info = strawberry.Info[Context, None]
