"""The ASGI application: routes, the GraphQL view, and what runs beside it (outbox, pub/sub)."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cross_web import AsyncHTTPRequestAdapter
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from tortoise import Tortoise

import db
from console import create_console
from core import security
from models.enums import AccountStatus
from notify.dispatcher import Dispatcher
from notify.pg_pubsub import PostgresPubSub
from notify.pubsub import PubSub
from resolvers import push, signing_keys
from resolvers.auth import Authenticated, authenticate
from resolvers.billing_schedule import BillingScheduler
from resolvers.ratelimit import RateLimiter
from resolvers.scheduler import StartingNotifier
from schema.context import Context
from schema.fast import answer_cache, json_fragments
from schema.fast.answer_cache import AnswerCache, versions_for
from schema.fast.http_lane import AdmittedLane
from schema.persisted.documents import PersistedDocuments
from schema.persisted.view import with_document
from schema.schema import KeybinSchema, build_schema
from schema.transport import SessionTransportHandler
from settings import Settings, from_env
from web.body_limit import BodyLimit
from web.confirm import confirm_page
from web.invitation import invitation_page
from web.logs import RequestIds
from web.metrics import Metrics, bind_live_delivery, metrics_page, unbind_live_delivery
from web.reset import reset_page
from web.stripe_webhook import checkout_return, stripe_webhook
from web.well_known import android_document, apple_document

log = logging.getLogger("keybin")


def bearer_token(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def connection_authorization(params: object) -> str | None:
    """`Authorization` in a connection_init payload, in any letter case, as in HTTP headers.

    Two spellings that disagree give "", which no token matches: the connection is refused.
    """
    if not isinstance(params, dict):
        return None
    values = {
        str(v) for k, v in params.items() if isinstance(k, str) and k.lower() == "authorization"
    }
    if not values:
        return None
    return values.pop() if len(values) == 1 else ""


class KeybinGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with keybin's context and WebSocket authentication."""

    graphql_transport_ws_handler_class = SessionTransportHandler

    def __init__(self, settings: Settings, pubsub: PubSub) -> None:
        schema = build_schema(settings)
        super().__init__(
            schema,
            graphql_ide="graphiql" if not settings.production else None,
            allow_queries_via_get=False,  # a GET must never change anything (CSRF)
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            multipart_uploads_enabled=False,
        )
        self.settings = settings
        self.pubsub = pubsub
        # Read and checked here: a trusted document that cannot be served stops start-up.
        self.persisted = PersistedDocuments.from_settings(schema, settings)
        self.limiter = RateLimiter(
            settings.secret_key,
            settings.rate_limit_per_minute,
            settings.rate_limit_per_account_per_minute,
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        auth = None
        if isinstance(request, Request):
            token = bearer_token(request.headers.get("authorization"))
            auth = await authenticate(token) if token else None
            if auth is not None:
                answer_cache.session_expires(auth.session.expires_at)
        return Context(
            request=request,
            response=response,
            settings=self.settings,
            pubsub=self.pubsub,
            auth=auth,
            limiter=self.limiter,
        )

    async def execute_single(  # noqa: PLR0913, PLR0917 - Strawberry's signature
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """A document asked for by id runs its text (schema/persisted/)."""
        found = await with_document(self.persisted, request_adapter, request_data)
        if isinstance(found, ExecutionResult):
            return found
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, found
        )

    def decode_json(self, data: str | bytes) -> object:
        """As Strawberry's; JSON nested deeper than the parser goes is malformed JSON too (a
        400 over HTTP, 4400 on a WebSocket), not an unexpected error."""
        try:
            return json.loads(data)
        except RecursionError as error:
            raise json.JSONDecodeError("nested too deeply", "", 0) from error

    def encode_json(self, data: object) -> str:
        """As Strawberry's, with the pages the database wrote as JSON sent as they came."""
        return json_fragments.encode(data)

    def admits_again(self, query: str, operation_name: str | None) -> bool:
        schema = self.schema
        return isinstance(schema, KeybinSchema) and schema.admits_again(query, operation_name)

    def runs_as_sent(self, query: str, operation_name: str | None) -> bool:
        """Whether a request with this text (and no extensions) runs it as it is, admitted:
        what schema/fast/http_lane.py may answer without the view."""
        allowed = self.persisted.text_for(query, None, None, operation_name, may_register=True)
        return allowed is query and self.admits_again(query, operation_name)

    async def on_ws_connect(self, context: Context) -> None:
        params = getattr(context, "connection_params", None) or {}
        raw = connection_authorization(params)
        if raw is None:
            return None  # anonymous: subscribing then answers UNAUTHENTICATED
        token = bearer_token(str(raw))
        auth = await authenticate(token) if token else None
        if auth is None:
            raise ConnectionRejectionError({"message": "Invalid token"})
        if auth.account.status != AccountStatus.ACTIVE:
            # Signed in, but nothing live for an account that is not ACTIVE (closed with 4403).
            raise ConnectionRejectionError({"message": "Account not active"})
        context.auth = auth
        return None


async def jwks_document(request: Request) -> Response:
    """The public keys lockboxes trust; a retired key stays until its credentials expire."""
    ring = signing_keys.keyring(request.app.state.settings)
    # Short, so whoever fetches it learns a rotated key within minutes.
    return JSONResponse(ring.jwks(), headers={"Cache-Control": "public, max-age=300"})


async def healthz(request: Request) -> Response:
    try:
        await Tortoise.get_connection("default").execute_query("SELECT 1")
    except Exception as error:  # noqa: BLE001  (any failure means "not healthy")
        log.warning("health check failed: %s", error)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def settle_heap() -> None:
    """Once started: the schema, the models and the modules (about 100,000 objects) are
    moved out of the cycle collector's reach. Full collections otherwise walk all of them
    again and again; under the nested listings page they took a fifth of the server's time
    (2.0 s of every 10), and 0.4 s after this. Only for a serving process: a test run
    creates many apps, and frozen objects are never collected."""
    gc.collect()
    gc.freeze()


# The largest /graphql request body: far above a document the token limit admits, with its
# variables (each string at most 10,000 characters), and far below what would stall the server.
MAX_BODY = 1024 * 1024


def create_app(settings: Settings | None = None, *, serving: bool = False) -> Starlette:
    settings = settings or from_env()
    push.configure(settings)  # which push services new messages are queued for
    pubsub = PubSub() if settings.is_sqlite else PostgresPubSub(settings.database_url)
    metrics = Metrics(pubsub)
    dispatcher = Dispatcher(settings, pubsub, metrics)
    starting_notifier = StartingNotifier()
    billing_scheduler = BillingScheduler(settings)  # runs only when billing is configured
    graphql = KeybinGraphQL(settings, pubsub)
    graphql.limiter.on_refusal = metrics.rate_limited
    lane = AdmittedLane(graphql, graphql, graphql.runs_as_sent)
    kept_answers = AnswerCache(
        lane, versions_for(settings), graphql.admits_again, graphql.persisted.known_text
    )
    metrics.count_answers(kept_answers)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await Tortoise.init(config=db.tortoise_config(settings), _enable_global_fallback=True)
        graphql.persisted.plan()  # after the database: a plan may depend on its dialect
        await pubsub.start()
        bind_live_delivery(metrics)
        dispatcher.start()
        starting_notifier.start()
        billing_scheduler.start()
        if serving:
            settle_heap()
        security.prepare_dummy_hash()
        try:
            yield
        finally:
            await billing_scheduler.stop()
            await starting_notifier.stop()
            await dispatcher.stop()
            await pubsub.stop()
            unbind_live_delivery(metrics)
            kept_answers.close()
            await Tortoise.close_connections()

    routes: list[BaseRoute] = [
        Route(
            "/graphql", metrics.timed(BodyLimit(kept_answers, MAX_BODY)), methods=["GET", "POST"]
        ),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/metrics", metrics_page),  # only with METRICS_TOKEN (web/metrics.py)
        Route("/reset-password", reset_page, methods=["GET", "POST"]),
        Route("/confirm-email", confirm_page, methods=["GET", "POST"]),
        # Stripe's signed events (resolvers/stripe_webhooks.py) and where its Checkout returns.
        Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
        Route("/billing/return", checkout_return),
        # The support console, its static files and its own session cookie (see console/app.py).
        Mount("/console", app=create_console(settings), name="console"),
        Route("/.well-known/jwks.json", jwks_document),
        # An invitation's link: the page for a browser; the app opens the same URL itself.
        Route("/signup", invitation_page),
        Route("/.well-known/apple-app-site-association", apple_document),
        Route("/.well-known/assetlinks.json", android_document),
        Mount("/static", app=StaticFiles(packages=[("web", "static")]), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(RequestIds)])
    app.state.settings = settings
    app.state.pubsub = pubsub
    app.state.graphql = graphql
    app.state.answers = kept_answers
    app.state.dispatcher = dispatcher
    app.state.metrics = metrics
    app.state.starting_notifier = starting_notifier
    app.state.billing_scheduler = billing_scheduler
    return app


def __getattr__(name: str) -> Any:
    # `uvicorn app:app` builds the app from the environment on first use only,
    # so importing this module (tests, the CLI) never reads the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)


__all__ = ["Authenticated", "create_app"]
