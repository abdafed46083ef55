"""A document checked as a request's would be, before a request runs it."""

from __future__ import annotations

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode
from strawberry import Schema
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

ANY_OPERATION = frozenset(OperationType)


def refusals(schema: Schema, text: str, operation_name: str | None) -> list[GraphQLError]:
    """The errors Strawberry would answer this document with before running it: the parse
    with its token limit, the validation rules (depth, aliases, introspection in
    production), refused text. Through the schema's own extensions, so the rules are those
    requests meet (and the parser and validation caches are filled for them)."""
    context = ExecutionContext(
        query=text,
        schema=schema,
        allowed_operations=ANY_OPERATION,
        provided_operation_name=operation_name,
    )
    extensions = schema.get_extensions(sync=True)
    for extension in extensions:
        extension.execution_context = context
    runner = schema.create_extensions_runner(context, extensions)
    try:
        with runner.operation():
            # Strawberry's own parse-and-validate step (private, pinned with its version).
            refused = schema._prepare_operation_sync(context, runner)
    except GraphQLError as error:  # the parser cache parses in its hook
        return [error]
    except (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError) as error:
        return [GraphQLError(str(error))]
    return list(refused.errors or []) if refused is not None else []


def operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
