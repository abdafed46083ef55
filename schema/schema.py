"""The Schema object: the root types merged, the limits and error masking applied."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from core import clock
from schema.accounts import Agent, Contractor
from schema.cost import LimitCost, over_limit
from schema.fast import answer_cache
from schema.fast.admitted import Admitted, admits, run_admitted
from schema.fast.plans import CompiledExecutor
from schema.grants import AccessEvent, Grant
from schema.limits import RejectBadText, label_refusals, writable_name
from schema.listings import Listing, Lockbox
from schema.messages import Message
from schema.mutations.auth import AuthMutation
from schema.mutations.billing import BillingMutation
from schema.mutations.credentials import CredentialMutation
from schema.mutations.grants import GrantMutation
from schema.mutations.listings import ListingMutation
from schema.mutations.messages import MessageMutation
from schema.mutations.profile import ProfileMutation
from schema.mutations.signup import SignupMutation
from schema.mutations.step_up import StepUpMutation
from schema.query import Query
from schema.subscription import Subscription
from settings import Settings
from web import metrics

MAX_DEPTH = 15
MAX_ALIASES = 30
MAX_TOKENS = 5000

Mutation = merge_types(
    "Mutation",
    (
        AuthMutation,
        SignupMutation,
        ProfileMutation,
        ListingMutation,
        GrantMutation,
        StepUpMutation,
        CredentialMutation,
        MessageMutation,
        BillingMutation,
    ),
)


def keep_unmasked(error: GraphQLError) -> bool:
    """Mask only the unexpected: errors with an explicit code and validation errors pass."""
    if error.extensions and "code" in error.extensions:
        return False
    return error.original_error is not None


class MaskUnexpected(MaskErrors):
    """Replace unexpected errors by "Unexpected error" with extensions.code INTERNAL."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=keep_unmasked, error_message="Unexpected error")

    def _process_result(self, result: object) -> None:
        # Strawberry's own check is isinstance() against a runtime-checkable Protocol, which
        # costs tens of microseconds; it runs for every subscription event of every
        # subscriber. The same test, by attribute.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return GraphQLError(
            self.error_message,
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "INTERNAL"},
        )


class KeybinSchema(strawberry.Schema):
    """Labels refused input INVALID_INPUT, logs only unexpected errors (access and input
    errors are answers, not incidents), and runs admitted queries directly
    (schema/fast/admitted.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admitted = Admitted() if admits(self.get_extensions()) else None

    def admits_again(self, query: str, operation_name: str | None) -> bool:
        """Whether this document has been admitted (the answer cache keeps only those)."""
        return self.admitted is not None and self.admitted.get(query, operation_name) is not None

    async def execute(  # noqa: PLR0913, PLR0917 - Strawberry's signature
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        # In Strawberry's order, which run_admitted takes too.
        request = (
            variable_values,
            context_value,
            root_value,
            writable_name(operation_name),
            allowed_operation_types,
            operation_extensions,
        )
        pending = answer_cache.pending()
        if pending is None:
            result, _ = await self._answer(query, request)
            return result
        with clock.watched() as reading:
            result, clean_query = await self._answer(query, request)
        pending.note(clean=clean_query, timed=reading.read)
        return result

    async def _answer(
        self, query: str | None, request: tuple[Any, ...]
    ) -> tuple[ExecutionResult, bool]:
        """The result, and whether it is a query's answer without any error."""
        admitted = self.admitted
        document = admitted.get(query, request[3]) if admitted is not None else None
        variables, operation_name = request[0], request[3]
        # The one limit asked per request: a cost depends on the variables' page sizes.
        if document is not None and over_limit(
            self._schema, query or "", document, operation_name, variables
        ):
            document = None  # the pipeline answers, with the error
        if document is not None:
            answer = await run_admitted(self, document, *request)
            if answer is not None:
                metrics.note_operation("query")
                label_refusals(answer.errors)
                return answer, not answer.errors
        result = await super().execute(query, *request)
        label_refusals(result.errors)
        clean_query = False
        if admitted is not None and document is None and query is not None and _clean(result):
            clean_query = admitted.admit(query, request[3])
        return result, clean_query

    def _create_execution_context(self, *args: Any, **kwargs: Any) -> ExecutionContext:
        # Strawberry's own (private, pinned with Strawberry's version): the one place that
        # sees every request it runs, so the request's timer can tell its operation type.
        execution = super()._create_execution_context(*args, **kwargs)
        metrics.note_execution(execution)
        return execution

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        unexpected = [e for e in errors if e.original_error is not None and not _has_code(e)]
        super().process_errors(unexpected, execution_context)


def _clean(result: ExecutionResult) -> bool:
    return not result.errors and result.data is not None and not result.extensions


def _has_code(error: GraphQLError) -> bool:
    return bool(error.extensions and "code" in error.extensions)


def build_schema(settings: Settings) -> strawberry.Schema:
    # The limit rules are built once: ValidationCache keys on the rule classes, and
    # fresh ones per request (the limiter extensions' own way) would miss it every time.
    limit_rules = [
        *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
        *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
    ]
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        # Factories, never shared instances: an instance would serve concurrent requests.
        lambda: AddValidationRules(limit_rules),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        RejectBadText,
        LimitCost,
    ]
    if settings.env != "development":
        extensions.append(MaskUnexpected)
    if settings.production:
        extensions.append(DisableIntrospection)
    return KeybinSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Agent, Contractor, Listing, Lockbox, Grant, AccessEvent, Message],
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=settings.production),
        execution_context_class=CompiledExecutor,
    )


def export_sdl() -> str:
    return build_schema(Settings()).as_str() + "\n"
