"""Queries whose document has been admitted once run without the per-request pipeline.

Every request through Strawberry opens its extension hooks (seven here), looks the document
up in the parser and validation caches, applies the limits and builds an execution context,
before the query itself runs: about a quarter of the CPU of a small query. All of that
depends only on the document (and on the schema, fixed for the process), so once a
document has been through it and answered a query without any error, the same text with
the same operation name can go straight to the executor: the same graphql-core `execute`
with the same compiled executor that Strawberry calls, the same context and variables.

What stays per request: the variables are checked for bad text (`RejectBadText` looks at
them, not only at the document); graphql-core coerces them as always. An answer with an
error is finished here as the pipeline finishes it (`finish_errors`: field suggestions
removed when the schema hides them, unexpected errors logged, then masked by the installed
`MaskErrors`), never worked out again: its resolvers run once. Mutations and subscriptions
are never admitted, and nothing is while an extension outside the known, document-level
ones is installed. The admitted documents are a bounded LRU, like the parser cache."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from graphql import DocumentNode, GraphQLError, execute, get_operation_ast, parse
from graphql import ExecutionResult as CoreResult
from graphql.language import OperationType
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as AllowedType
from strawberry.utils.await_maybe import await_maybe

from schema.cost import LimitCost
from schema.limits import RejectBadText, bad_text

MAX_DOCUMENTS = 256
# Extensions whose work depends on the document alone (limits, caches, validation rules,
# refusing bad text: its variables check is repeated here), or touches only answers with
# errors (masking), which are never answered from here. Any other extension turns
# admission off: what it does per request would be skipped.
DOCUMENT_LEVEL: tuple[type[SchemaExtension], ...] = (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
    MaskErrors,
    RejectBadText,
    LimitCost,  # per request too (its variables' page sizes): KeybinSchema asks it again
)

Key = tuple[str, str | None]


def admits(extensions: Iterable[SchemaExtension]) -> bool:
    """Whether answers without the extensions' hooks are the same."""
    return all(isinstance(extension, DOCUMENT_LEVEL) for extension in extensions)


class Admitted:
    """The documents that passed the whole pipeline, by (text, operation name)."""

    def __init__(self) -> None:
        self.documents: OrderedDict[Key, DocumentNode] = OrderedDict()

    def get(self, query: str | None, operation_name: str | None) -> DocumentNode | None:
        if query is None:
            return None
        key = (query, operation_name)
        document = self.documents.get(key)
        if document is not None:
            self.documents.move_to_end(key)
        return document

    def admit(self, query: str, operation_name: str | None) -> bool:
        """After a clean answer from the pipeline: parsed again here (once), kept only if
        the operation it ran is a query. Whether it was."""
        document = parse(query)
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return False
        self.documents[(query, operation_name)] = document
        if len(self.documents) > MAX_DOCUMENTS:
            self.documents.popitem(last=False)
        return True


async def run_admitted(
    schema: Any,
    document: DocumentNode,
    variable_values: dict[str, Any] | None,
    context_value: Any,
    root_value: Any,
    operation_name: str | None,
    allowed_operation_types: Iterable[AllowedType] | None,
    operation_extensions: dict[str, Any] | None,
) -> ExecutionResult | None:
    """The answer, errors included, or None when the whole pipeline must answer this
    request (bad text in the variables, queries not allowed)."""
    if allowed_operation_types is not None and AllowedType.QUERY not in allowed_operation_types:
        return None
    if variable_values and bad_text(variable_values) is not None:
        return None
    result: CoreResult = await await_maybe(
        execute(
            schema._schema,
            document,
            root_value=root_value,
            context_value=context_value,
            variable_values=variable_values,
            operation_name=operation_name,
            executor_class=schema.execution_context_class,
            is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
            operation_extensions=operation_extensions,
        )
    )
    if result.errors:
        return ExecutionResult(data=result.data, errors=finish_errors(schema, result.errors))
    return ExecutionResult(data=result.data, errors=None)


def finish_errors(schema: Any, errors: list[GraphQLError]) -> list[GraphQLError]:
    """What Strawberry's pipeline does with an executed operation's errors, through public
    APIs: `_process_errors` (suggestions removed, `process_errors` logs), then each
    `MaskErrors` extension's masking as it leaves the operation. Of the document-level
    extensions, only MaskErrors touches errors (tests/test_admitted.py compares both)."""
    if schema.config.disable_field_suggestions:
        for error in errors:
            schema.remove_field_suggestion(error)
    schema.process_errors(errors, None)
    for extension in schema.get_extensions():
        if isinstance(extension, MaskErrors):
            errors = [
                extension.anonymise_error(error) if extension.should_mask_error(error) else error
                for error in errors
            ]
    return errors
