"""graphql-transport-ws's side of persisted documents: a `subscribe` naming its document."""

from __future__ import annotations

from typing import Any, cast

from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage

from schema.persisted.documents import PersistedDocuments, document_id


def with_document(
    documents: PersistedDocuments, message: SubscribeMessage
) -> SubscribeMessage | GraphQLError:
    """The message with the text it runs, or the error to answer its id with. The same
    rules as over HTTP POST: its payload is a request's body."""
    payload: Any = message.get("payload")
    if not isinstance(payload, dict):
        return message  # Strawberry refuses it as it would
    query, extensions = payload.get("query"), payload.get("extensions")
    found = documents.text_for(
        query,
        extensions if isinstance(extensions, dict) else None,
        document_id(payload) if query is None else None,
        payload.get("operationName"),
        may_register=True,
    )
    if isinstance(found, GraphQLError):
        return found
    if found is None or found is query:
        return message
    return cast("SubscribeMessage", {**message, "payload": {**payload, "query": found}})
