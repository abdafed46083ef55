"""Admitted queries over HTTP without the view's per-request machinery.

Strawberry's view answers every kind of GraphQL request over HTTP: GET and POST, JSON,
multipart uploads, batches, streamed results, GraphiQL. For each one it builds request
adapters, parses the content type with the standard library's email parser, picks a
transport from the Accept header, and checks what kind of result came back. For the
request apps send most (a POST with a JSON body asking a query whose document was
admitted, schema/fast/admitted.py) that is about a fifth of the CPU of a small query.

This lane takes only that request, and only in its plainest form: no query string, the
body's media type exactly `application/json`, an Accept that asks for JSON (or nothing),
a body that is one JSON object with `query` (and `variables`, `operationName`) and nothing
else. It then does what the view does with it, through the view's own public hooks
(`get_root_value`, `get_sub_response`, `get_context`, `schema.execute`, `process_result`,
`encode_json`), and answers as the view's `create_response` does. Anything else, and any
body it cannot read, goes to the view untouched (the messages read are replayed):
tests/test_http_lane.py holds both answers equal, byte for byte and header for header."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from schema.fast.asgi_body import read_body, replaying

# The largest body read here; a larger one goes to the view as it came.
MAX_REQUEST = 64 * 1024
ALLOWED = OperationType.from_http("POST")
_FIELDS = frozenset(("query", "variables", "operationName"))
# Media types a client may accept for a plain JSON answer (one Accept value, as sent).
_PLAIN_ACCEPT = frozenset((b"", b"*/*", b"application/json"))


class View(Protocol):
    """The public hooks of the GraphQL view this lane answers for."""

    schema: Any

    async def get_root_value(self, request: Request) -> Any: ...

    async def get_sub_response(self, request: Request) -> Response: ...

    async def get_context(self, request: Request, response: Response) -> Any: ...

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse: ...

    def decode_json(self, data: str | bytes) -> object: ...

    def encode_json(self, data: object) -> str: ...


class AdmittedLane:
    """ASGI middleware in front of the view (`app`), which answers everything else."""

    def __init__(
        self, app: ASGIApp, view: View, admitted: Callable[[str, str | None], bool]
    ) -> None:
        self.app = app
        self.view = view
        self.admitted = admitted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        if not _plain_json(scope["headers"]):
            await self.app(scope, receive, send)
            return
        received, body = await read_body(receive, MAX_REQUEST)
        replay = replaying(received, receive)
        asked = self._asked(body) if body is not None else None
        if asked is None:
            await self.app(scope, replay, send)
            return
        await self._answer(scope, replay, send, *asked)

    def _asked(self, body: bytes) -> tuple[str, dict[str, Any] | None, str | None] | None:
        """The query, variables and operation name, when the body is a plain request for an
        admitted document; None sends it to the view."""
        try:
            data = self.view.decode_json(body)
        except ValueError:  # malformed JSON (the view answers 400), UnicodeDecodeError
            return None
        if not isinstance(data, dict) or not data.keys() <= _FIELDS:
            return None
        query, variables, name = data.get("query"), data.get("variables"), data.get("operationName")
        if not isinstance(query, str) or not isinstance(variables, dict | None):
            return None
        if not isinstance(name, str | None) or not self.admitted(query, name):
            return None
        return query, variables, name

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        query: str,
        variables: dict[str, Any] | None,
        name: str | None,
    ) -> None:
        view = self.view
        request = Request(scope, receive)
        root_value = await view.get_root_value(request)
        sub_response = await view.get_sub_response(request)
        context = await view.get_context(request, sub_response)
        result = await view.schema.execute(
            query,
            variable_values=variables,
            context_value=context,
            root_value=root_value,
            operation_name=name,
            allowed_operation_types=ALLOWED,
        )
        data = await view.process_result(request, result)
        # As the view's create_response builds it.
        response = Response(view.encode_json(data), status_code=200, media_type="application/json")
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        await response(scope, receive, send)


def _plain_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """A JSON body, and an answer wanted as plain JSON (not streamed, not multipart)."""
    content_type = accept = None
    for key, value in headers:
        if key == b"content-type":
            if content_type is not None:
                return False
            content_type = value
        elif key == b"accept":
            if accept is not None:
                return False
            accept = value
    # Exactly as written: the view refuses "Application/JSON" (400), and so must this.
    if content_type is None or content_type.split(b";")[0].strip() != b"application/json":
        return False
    return (accept or b"").strip() in _PLAIN_ACCEPT
