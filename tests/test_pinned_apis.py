"""The private or internal pieces of Strawberry and graphql-core the fast paths rely on
(schema/fast/plans.py, admitted.py, page_sql.py, fanout.py, schema/schema.py and
schema/persisted/checks.py) are still there and still take what they are given. An upgrade
that renames one fails here, by name, instead of silently answering differently (a missing
`_exception_handler_specs`, say, would call resolvers past their exception handlers)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import graphql
import graphql.execution.executor
import pytest
import strawberry
from graphql.execution.collect_fields import FieldDetails, collect_fields, collect_subfields
from graphql.execution.values import get_argument_values
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.arguments import convert_arguments

from schema.fast.plans import CompiledExecutor
from schema.schema import KeybinSchema, build_schema
from settings import Settings


def parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def needs(condition: bool, what: str) -> None:
    if not condition:
        pytest.fail(f"Strawberry or graphql-core changed: {what}; see the fast path that uses it")


@pytest.fixture(scope="module")
def schema() -> KeybinSchema:
    built = build_schema(Settings())
    assert isinstance(built, KeybinSchema)
    return built


def test_strawberry_schema_internals(schema: KeybinSchema) -> None:
    core = getattr(schema, "_schema", None)
    needs(isinstance(core, graphql.GraphQLSchema), "Schema._schema (admitted.py)")
    needs(
        getattr(core, "_strawberry_schema", None) is schema,
        "GraphQLSchema._strawberry_schema (schema/fast/plans.py)",
    )
    converter = schema.schema_converter
    needs(
        hasattr(converter, "_exception_handler_specs"),
        "schema_converter._exception_handler_specs (schema/fast/plans.py: direct calls)",
    )
    needs(hasattr(converter, "scalar_registry"), "schema_converter.scalar_registry")
    needs(
        hasattr(strawberry.Schema, "_create_execution_context"),
        "Schema._create_execution_context (schema.py)",
    )
    needs(
        callable(getattr(schema, "remove_field_suggestion", None)),
        "Schema.remove_field_suggestion (admitted.py)",
    )


def test_strawberry_fields_and_resolvers(schema: KeybinSchema) -> None:
    region = schema._schema.type_map["Region"]
    assert isinstance(region, graphql.GraphQLObjectType)
    needs(
        getattr(region.fields["code"].resolve, "_is_default", None) is True,
        "a plain field's default resolver's _is_default (schema/fast/plans.py)",
    )
    needs(
        "strawberry-definition" in region.fields["code"].extensions,
        "GraphQLField.extensions['strawberry-definition']",
    )
    needs(
        parameters(schema.config.info_class)[:2] == ["_raw_info", "_field"],
        "Info(_raw_info=, _field=) (schema/fast/plans.py)",
    )
    needs(
        parameters(convert_arguments)[:5]
        == ["value", "arguments", "scalar_registry", "config", "info"],
        "convert_arguments(value, arguments, scalar_registry=, config=, info=)",
    )


def test_graphql_core_executor_internals(schema: KeybinSchema) -> None:
    executor = CompiledExecutor.build(schema._schema, graphql.parse("{ regions { code } }"))
    needs(isinstance(executor, StrawberryGraphQLCoreExecutionContext), "executor build()")
    for name in (
        "field_resolver",
        "type_resolver",
        "fragments",
        "fragment_definitions",
        "abort_signal",
        "middleware_manager",
        "variable_values",
        "operation",
        "is_awaitable",
    ):
        needs(hasattr(executor, name), f"Executor.{name} (schema/fast/plans.py)")
    needs(parameters(executor.execute_operation) == ["serially"], "execute_operation(serially)")
    needs(parameters(executor.build_per_event_executor) == ["payload"], "build_per_event_executor")
    needs(
        parameters(executor.build_resolve_info)
        == ["field_def", "field_nodes", "parent_type", "path"],
        "build_resolve_info(field_def, field_nodes, parent_type, path)",
    )
    needs(callable(getattr(executor, "build_response", None)), "Executor.build_response")
    needs(
        parameters(collect_fields)[:5]
        == ["schema", "fragments", "variable_values", "runtime_type", "operation"],
        "collect_fields signature (schema/fast/plans.py)",
    )
    needs(
        parameters(collect_subfields)[:6]
        == ["schema", "fragments", "variable_values", "operation", "return_type"]
        + ["field_details_list"],
        "collect_subfields signature (schema/fast/plans.py, page_sql.py)",
    )
    needs(
        {"node", "defer_usage", "fragment_variable_values"} <= set(FieldDetails._fields),
        "FieldDetails fields",
    )
    needs(
        parameters(get_argument_values)[:3] == ["def_", "node", "variable_values"]
        or parameters(get_argument_values)[:3] == ["type_def", "node", "variable_values"],
        "get_argument_values(definition, node, variable_values)",
    )
    needs(
        {"executor_class", "is_awaitable"} <= set(parameters(graphql.execute)),
        "graphql.execute(executor_class=, is_awaitable=) (admitted.py)",
    )
    # A plan that meets an error hands the operation to graphql-core with a middleware that
    # answers the resolvers it already called (plans.py _replay): graphql-core must still
    # wrap each field's resolver through the manager it holds when the field runs.
    needs(
        callable(getattr(graphql.MiddlewareManager, "get_field_resolver", None)),
        "MiddlewareManager.get_field_resolver (schema/fast/plans.py replay)",
    )
    source = inspect.getsource(graphql.execution.executor.Executor.execute_field)
    needs(
        "self.middleware_manager.get_field_resolver" in source,
        "graphql-core's execute_field reads self.middleware_manager (schema/fast/plans.py replay)",
    )
    date_time = schema._schema.type_map["DateTime"]
    needs(hasattr(date_time, "coerce_output_value"), "GraphQLScalarType.coerce_output_value")


def test_strawberry_websocket_handler_internals() -> None:
    needs(
        callable(getattr(BaseGraphQLTransportWSHandler, "run_operation", None)),
        "BaseGraphQLTransportWSHandler.run_operation (schema/fast/fanout.py)",
    )
    needs(
        {"id", "completed"} <= set(getattr(Operation, "__slots__", ()))
        or "completed" in inspect.getsource(Operation),
        "Operation.id / Operation.completed (schema/fast/fanout.py)",
    )
    needs(
        callable(getattr(Operation, "send_operation_message", None)),
        "Operation.send_operation_message (schema/fast/fanout.py)",
    )


def test_strawberry_parse_and_validate_step() -> None:
    prepare = getattr(strawberry.Schema, "_prepare_operation_sync", None)
    needs(
        callable(prepare) and parameters(prepare) == ["self", "context", "extensions_runner"],
        "Schema._prepare_operation_sync(context, extensions_runner) (schema/persisted/checks.py)",
    )
