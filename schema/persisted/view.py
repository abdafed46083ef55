"""The GraphQL view's side of persisted documents (HTTP): the request's document id, its text."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from cross_web import AsyncHTTPRequestAdapter
from graphql import GraphQLError
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from schema.persisted.documents import PersistedDocuments, document_id


async def with_document(
    documents: PersistedDocuments,
    request: AsyncHTTPRequestAdapter,
    data: GraphQLRequestData,
) -> GraphQLRequestData | ExecutionResult:
    """The request with the text it runs, or the answer that refuses it. Only a POST may
    register a text: a GET must never change anything (and keybin runs no query from one)."""
    named = None
    if data.query is None and not (data.extensions and "persistedQuery" in data.extensions):
        named = await _named_id(request)
    found = documents.text_for(
        data.query,
        data.extensions,
        named,
        data.operation_name,
        may_register=request.method == "POST",
    )
    if isinstance(found, GraphQLError):
        return ExecutionResult(data=None, errors=[found])
    if found is None or found is data.query:
        return data
    return replace(data, query=found)


async def _named_id(request: AsyncHTTPRequestAdapter) -> Any:
    if request.method == "GET":
        return document_id(request.query_params)
    try:
        # Read and parsed already by the view, which keeps no field but its own.
        body = json.loads(await request.get_body())
    except ValueError:
        return None
    return document_id(body) if isinstance(body, dict) else None
