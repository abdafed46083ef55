"""Input limits applied to every operation: no NUL characters, no oversized strings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

MAX_STRING = 10_000
_NUL_ESCAPE = re.compile(r"\\u0000", re.IGNORECASE)


def bad_text(value: Any) -> str | None:
    if isinstance(value, str):
        if "\x00" in value:
            return "Text may not contain NUL characters."
        if len(value) > MAX_STRING:
            return f"Text may not be longer than {MAX_STRING} characters."
    elif isinstance(value, dict):
        return next((m for v in value.values() if (m := bad_text(v))), None)
    elif isinstance(value, list):
        return next((m for v in value if (m := bad_text(v))), None)
    return None


class RejectBadText(SchemaExtension):
    """PostgreSQL refuses NUL bytes that SQLite accepts: refuse them at the edge, for both.

    It also labels the errors of a request GraphQL itself refused (a syntax error, an
    unknown field, a date that does not parse) with INVALID_INPUT, so every answer to
    bad input carries a code a client can act on.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query or ""
        problem = bad_text(context.variables or {})
        if problem is None and ("\x00" in query or _NUL_ESCAPE.search(query)):
            problem = "Text may not contain NUL characters."
        if problem is not None:
            # Set before validation runs, so Strawberry answers with this error only.
            context.pre_execution_errors = [
                GraphQLError(problem, extensions={"code": "INVALID_INPUT"})
            ]
        yield


def label_refusals(errors: list[GraphQLError] | None) -> None:
    """Errors of a request GraphQL itself refused (a syntax error, an unknown field, a
    date that does not parse) carry no path: label them INVALID_INPUT, so every answer
    to bad input has a code a client can act on."""
    for error in errors or []:
        if error.path is None and not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": "INVALID_INPUT"}
