"""Input limits applied to every operation: no NUL characters, no lone surrogates, no
oversized strings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

MAX_STRING = 10_000
_NUL_ESCAPE = re.compile(r"\\u0000", re.IGNORECASE)
# U+D800-U+DFFF are halves of UTF-16 pairs, not characters: JSON's "\ud800" escape decodes to
# one, and every later encode (hashing, the database driver, a log line) fails on it.
_SURROGATE = re.compile("[\ud800-\udfff]")
NUL_TEXT = "Text may not contain NUL characters."
NOT_UNICODE = "Text must be valid Unicode characters."
MAX_NESTING = 32
NESTED_TOO_DEEP = f"Input may not be nested more than {MAX_NESTING} levels deep."


# What a request's operationName becomes when it is not text at all (7, [], {}): like the
# name below, one no operation can have, so the request is refused as any unknown name is.
NOT_A_NAME = "<not a string>"


def writable_name(operation_name: object) -> str | None:
    """An operation name that can be quoted back: operation names are ASCII, so one with
    half a surrogate pair names none, and is refused as any unknown name is. JSON lets a
    client send any value there; only text names an operation."""
    if operation_name is None:
        return None
    if not isinstance(operation_name, str):
        return NOT_A_NAME
    return _SURROGATE.sub("\ufffd", operation_name)


def bad_text(value: Any) -> str | None:
    """What is wrong with a request's variables, if anything. Walked with a stack of its own,
    not by recursion: no input of the schema nests more than a few levels, and JSON nested
    hundreds deep must be refused, not exhaust Python's recursion limit."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if problem := _bad_string(item):
                return problem
        elif isinstance(item, dict | list):
            if depth >= MAX_NESTING:
                return NESTED_TOO_DEEP
            # A dict's names too: an unknown field's name comes back in the error message.
            members = [v for pair in item.items() for v in pair] if isinstance(item, dict) else item
            stack.extend((member, depth + 1) for member in reversed(members))
    return None


def _bad_string(value: str) -> str | None:
    if "\x00" in value:
        return NUL_TEXT
    if _SURROGATE.search(value):
        return NOT_UNICODE
    if len(value) > MAX_STRING:
        return f"Text may not be longer than {MAX_STRING} characters."
    return None


class RejectBadText(SchemaExtension):
    """PostgreSQL refuses NUL bytes that SQLite accepts, and no encoder takes a lone
    surrogate: refuse both at the edge, for every request's variables and document.

    It also labels the errors of a request GraphQL itself refused (a syntax error, an
    unknown field, a date that does not parse) with INVALID_INPUT, so every answer to
    bad input carries a code a client can act on.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query or ""
        problem = bad_text(context.variables or {})
        if problem is None and ("\x00" in query or _NUL_ESCAPE.search(query)):
            problem = NUL_TEXT
        if problem is None and _SURROGATE.search(query):
            problem = NOT_UNICODE
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
