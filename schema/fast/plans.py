"""Compiled execution: queries and subscription events run from a plan built once per
document, not field by field through graphql-core's general executor.

graphql-core re-derives everything for every field of every object: it looks the field up,
builds a resolve info and a path, coerces arguments, picks a completion by type and wraps
each step in error handling. For a list of a thousand grants that bookkeeping costs far more
than the resolvers do. A plan does it once: for each selection it keeps the field, its
resolver (or the attribute a plain Strawberry field reads), and a completer chosen for its
type; at run time it only calls resolvers, reads attributes and serializes leaves. Resolve
infos and arguments are built once per field per request, not once per object.

The same resolvers run, with the same Strawberry wrappers (argument conversion, info,
permissions), so the answers are the same; tests/test_compiled_execution.py runs every
operation both ways and compares. Anything a plan does not reproduce exactly is left to
graphql-core: mutations (serial, with side effects), @skip/@include and @defer, introspection,
resolver middleware. And if a plan meets anything unusual while running (an exception, a
null in a non-null position, an unexpected runtime type), it stops and graphql-core answers
the operation, so error messages, paths and null propagation stay graphql-core's; its
resolvers are answered with what they already gave the plan (`_replay`), so none runs twice.

On PostgreSQL a field that starts one of the hot pages (an agent's listings, the Message
Center) may be answered as a whole by one statement instead (schema/fast/page_sql.py); the
plan asks it first and calls the resolver when it declines."""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from graphql import (
    DocumentNode,
    GraphQLAbstractType,
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    MiddlewareManager,
    OperationType,
    default_field_resolver,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import get_argument_values
from graphql.language import BREAK, FieldNode, Node, OperationDefinitionNode, Visitor, visit
from graphql.pyutils import Path
from graphql.pyutils import Undefined as _UNDEFINED
from graphql.type import is_abstract_type, is_leaf_type, is_object_type
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

from schema.fast import page_sql

PLAN_CACHE_SIZE = 256


class NotCompilable(Exception):
    """The operation uses something plans leave to graphql-core."""


class Bail(Exception):
    """Met at run time: graphql-core must answer this one."""


Completer = Callable[[Any, "CompiledExecutor", "FieldStep"], Any]
# An object type's name and the identities of the field nodes whose selections it plans.
SubplanKey = tuple[str, tuple[int, ...]]


class FieldStep:
    """One response key of a selection set: how to get its value and complete it."""

    __slots__ = (
        "attr",
        "complete",
        "definition",
        "direct",
        "event",
        "field_def",
        "key",
        "nodes",
        "parent_type",
        "resolve",
        "sql",
        "typename",
    )

    def __init__(self, key: str, parent_type: GraphQLObjectType, nodes: list[FieldNode]) -> None:
        self.key = key
        self.parent_type = parent_type
        self.nodes = nodes
        self.typename: str | None = None
        self.attr: str | None = None
        self.resolve: Callable[..., Any] = default_field_resolver
        self.complete: Completer = _identity
        self.field_def: GraphQLField | None = None
        self.definition: StrawberryField | None = None
        # The Strawberry resolver itself, called without Strawberry's per-call wrapper.
        self.direct: Callable[[Any, dict[str, Any]], Any] | None = None
        # A subscription's root field: for an event its value is the event itself.
        self.event = False
        # The whole field as one SQL statement (schema/fast/page_sql.py); None when the
        # resolvers must answer this time.
        self.sql: Callable[[Any, Any, dict[str, Any]], Awaitable[Any] | None] | None = None


class ObjectPlan:
    """The selection set of one object type, compiled."""

    __slots__ = ("steps", "synchronous", "type")

    def __init__(self, object_type: GraphQLObjectType) -> None:
        self.type = object_type
        self.steps: list[FieldStep] = []
        # Set on a root plan: no step anywhere below can return an awaitable.
        self.synchronous = False

    def run(self, source: Any, ex: CompiledExecutor) -> Any:
        """The object's response dict, or an awaitable of it when a resolver is async."""
        data: dict[str, Any] = {}
        waiting: list[tuple[str, Awaitable[Any]]] | None = None
        is_awaitable = ex.is_awaitable
        for step in self.steps:
            if step.typename is not None:
                data[step.key] = step.typename
                continue
            resolved = True
            if step.attr is not None:
                value = getattr(source, step.attr)
                resolved = False
            elif step.direct is not None:
                kwargs = ex.resolver_kwargs(step)
                try:
                    value = step.direct(source, kwargs)
                except Exception as error:
                    ex.resolved.append((step, source, _Raised(error)))
                    raise
            elif step.event:
                value = source
                resolved = False
            else:
                info, args = ex.prepared(step)
                if step.sql is not None and (answer := step.sql(source, ex, args)) is not None:
                    data[step.key] = None
                    if waiting is None:
                        waiting = []
                    waiting.append((step.key, answer))
                    continue
                try:
                    value = step.resolve(source, info, **args)
                except Exception as error:
                    ex.resolved.append((step, source, _Raised(error)))
                    raise
            if is_awaitable(value):
                completed = _resolve_then_complete(value, step, ex, source)
            else:
                if resolved:
                    ex.resolved.append((step, source, value))
                completed = step.complete(value, ex, step)
            if is_awaitable(completed):
                data[step.key] = None  # holds the key's place in the selection's order
                if waiting is None:
                    waiting = []
                waiting.append((step.key, completed))
            else:
                data[step.key] = completed
        if waiting is None:
            return data
        return _fill(data, waiting)


async def _fill(data: dict[str, Any], waiting: list[tuple[str, Awaitable[Any]]]) -> Any:
    values = await gather([awaitable for _, awaitable in waiting])
    for (key, _), value in zip(waiting, values, strict=True):
        data[key] = value
    return data


async def _resolve_then_complete(
    value: Awaitable[Any], step: FieldStep, ex: Any, source: Any
) -> Any:
    try:
        value = await value
    except Exception as error:
        ex.resolved.append((step, source, _Raised(error)))
        raise
    ex.resolved.append((step, source, value))
    completed = step.complete(value, ex, step)
    if ex.is_awaitable(completed):
        return await completed
    return completed


async def gather(awaitables: Sequence[Awaitable[Any]]) -> list[Any]:
    """All of them concurrently (so DataLoader calls batch). On a failure the others still
    finish, as under graphql-core: what their resolvers returned is replayed when
    graphql-core answers the operation, so none is cut off halfway and run again."""
    if len(awaitables) == 1:
        return [await awaitables[0]]
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        values = await asyncio.gather(*tasks, return_exceptions=True)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    for value in values:
        if isinstance(value, BaseException):
            raise value
    return values


def _identity(value: Any, ex: Any, step: FieldStep) -> Any:
    return value


class _Raised:
    """A resolver's outcome that was an exception (an exception can also be a value)."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


# A resolver call: where the field's first node starts in the document, its parent type,
# the source object.
CallKey = tuple[int, int, int]


def _at(node: FieldNode) -> int:
    """The node's place in the document text. Plans are shared by every parse of the same
    text (an admitted document is parsed apart from the pipeline's), so not its identity."""
    return node.loc.start if node.loc is not None else id(node)


def _replay(resolved: list[tuple[FieldStep, Any, Any]]) -> MiddlewareManager:
    """graphql-core's resolvers, answered with what the plan's run already got from them.

    A call is the same when its field node (by its place in the text), parent type and
    source object are the same (the arguments come from the node and the variables, fixed
    for the request); the
    sources below the root are the very objects the replayed resolvers returned, so the
    match holds all the way down. A call the plan never made (a field it did not reach, a
    page it answered as one statement) runs as usual. An iterator is never replayed: the
    plan has used it up."""
    answers: dict[CallKey, tuple[Any, Any]] = {}
    for step, source, outcome in resolved:
        if isinstance(outcome, Iterator | AsyncIterator):
            continue
        answers[(_at(step.nodes[0]), id(step.parent_type), id(source))] = (source, outcome)

    def replay(
        next_: Callable[..., Any], root: Any, info: GraphQLResolveInfo[Any], **args: Any
    ) -> Any:
        found = answers.get((_at(info.field_nodes[0]), id(info.parent_type), id(root)))
        if found is None or found[0] is not root:
            return next_(root, info, **args)
        outcome = found[1]
        if isinstance(outcome, _Raised):
            raise outcome.error
        return outcome

    return MiddlewareManager(replay)


class Compiler:
    """Builds plans for one operation; everything it reads is fixed by the document."""

    def __init__(self, ex: CompiledExecutor) -> None:
        self.ex = ex
        # Keyed by the selection's field nodes, which the entry keeps alive: never by id() of
        # a list made while compiling, which is freed once planned and whose address a later
        # list (another selection) may be given.
        self.subplans: dict[SubplanKey, tuple[tuple[FieldNode, ...], ObjectPlan]] = {}
        strawberry_schema = ex.strawberry_schema
        # Exception handlers live in Strawberry's wrapper: with any, it must stay.
        self.direct_calls = strawberry_schema is not None and not getattr(
            strawberry_schema.schema_converter, "_exception_handler_specs", ()
        )
        # Cleared by any step that may return an awaitable (a resolver that is async or
        # not known, a statement, a type resolver).
        self.synchronous = True

    def root(self, root_type: GraphQLObjectType, operation: OperationDefinitionNode) -> ObjectPlan:
        grouped, deferred, forbidden = collect_fields(
            self.ex.schema,
            self.ex.fragments,
            self.ex.variable_values,
            root_type,
            operation,
        )
        if deferred or forbidden:
            raise NotCompilable("@defer or @stream")
        plan = self.object_plan(root_type, grouped)
        plan.synchronous = self.synchronous
        return plan

    def object_plan(
        self, object_type: GraphQLObjectType, grouped: dict[str, list[FieldDetails]]
    ) -> ObjectPlan:
        plan = ObjectPlan(object_type)
        for key, details in grouped.items():
            plan.steps.append(self.step(object_type, key, details))
        return plan

    def step(self, parent: GraphQLObjectType, key: str, details: list[FieldDetails]) -> FieldStep:
        nodes = [detail.node for detail in details]
        for detail in details:
            if detail.defer_usage is not None or detail.fragment_variable_values is not None:
                raise NotCompilable("deferred or parameterised fragment")
        step = FieldStep(key, parent, nodes)
        name = nodes[0].name.value
        if name == "__typename":
            step.typename = parent.name
            return step
        if name.startswith("__"):
            raise NotCompilable("introspection")
        field_def = parent.fields.get(name)
        if field_def is None:
            raise NotCompilable(f"unknown field {name}")
        step.field_def = field_def
        resolve = field_def.resolve
        step.sql = page_sql.compile_field(self, parent, field_def, details)
        definition = field_def.extensions.get("strawberry-definition")
        if step.sql is not None:
            # Through the general branch, which asks the statement first.
            step.resolve = resolve or self.ex.field_resolver
            self.synchronous = False
        elif resolve is None:
            step.resolve = self.ex.field_resolver
            self.synchronous = False
        elif _is_plain_attribute(resolve, field_def) and not field_def.args:
            step.attr = definition.python_name
        elif self.direct_calls and (plain := _plain_resolver(field_def)) is not None:
            step.definition = plain
            step.direct = _direct_call(plain)
            self.synchronous = self.synchronous and not plain.is_async
        elif (
            parent is self.ex.schema.subscription_type
            and isinstance(definition, StrawberryField)
            and definition.is_subscription
        ):
            # Strawberry resolves a subscription field's events as `lambda event: event`.
            step.event = True
        else:
            step.resolve = resolve
            self.synchronous = False
        step.complete = self.completer(field_def.type, details)
        return step

    def completer(self, return_type: GraphQLOutputType, details: list[FieldDetails]) -> Completer:
        if isinstance(return_type, GraphQLNonNull):
            inner = self.completer(return_type.of_type, details)

            def non_null(value: Any, ex: CompiledExecutor, step: FieldStep) -> Any:
                if value is None:
                    raise Bail
                return inner(value, ex, step)

            return non_null
        if isinstance(return_type, GraphQLList):
            return _list_completer(self.completer(return_type.of_type, details))
        if is_leaf_type(return_type):
            return _leaf_completer(return_type)
        if is_object_type(return_type):
            plan = self.subplan(return_type, details)
            return _object_completer(plan)
        if is_abstract_type(return_type):
            return self.abstract_completer(return_type, details)
        raise NotCompilable(f"type {return_type}")

    def subplan(self, object_type: GraphQLObjectType, details: list[FieldDetails]) -> ObjectPlan:
        nodes = tuple(detail.node for detail in details)
        key = (object_type.name, tuple(map(id, nodes)))
        found = self.subplans.get(key)
        if found is None:
            grouped, deferred, forbidden = collect_subfields(
                self.ex.schema,
                self.ex.fragments,
                self.ex.variable_values,
                self.ex.operation,
                object_type,
                details,
            )
            if deferred or forbidden:
                raise NotCompilable("@defer or @stream")
            found = self.subplans[key] = (nodes, self.object_plan(object_type, grouped))
        return found[1]

    def abstract_completer(
        self, abstract: GraphQLAbstractType, details: list[FieldDetails]
    ) -> Completer:
        self.synchronous = False  # a type resolver may be async
        schema = self.ex.schema
        plans = {
            possible.name: self.subplan(possible, details)
            for possible in schema.get_possible_types(abstract)
        }
        resolve_type = abstract.resolve_type or self.ex.type_resolver

        def abstract_value(value: Any, ex: CompiledExecutor, step: FieldStep) -> Any:
            if value is None:
                return None
            info, _ = ex.prepared(step)
            type_name = resolve_type(value, info, abstract)
            plan = plans.get(type_name) if isinstance(type_name, str) else None
            if plan is None:
                raise Bail
            return _run_object(plan, value, ex, step)

        return abstract_value


def _is_plain_attribute(resolve: Callable[..., Any], field_def: GraphQLField) -> bool:
    """A Strawberry field with no resolver of its own: its value is an attribute."""
    definition = field_def.extensions.get("strawberry-definition")
    return (
        definition is not None
        and getattr(resolve, "_is_default", False)
        and definition.is_basic_field
        and not definition.extensions
        and not definition.permission_classes
    )


# Built-in scalars whose serialization returns a value of this exact type unchanged: the
# per-leaf call is skipped for them (anything else still goes through serialize).
_UNCHANGED = {"String": str, "ID": str, "Boolean": bool, "Int": int}
_INT_RANGE = range(-(2**31), 2**31)


def _plain_resolver(field_def: GraphQLField) -> StrawberryField | None:
    """A Strawberry field whose resolver can be called directly: no field extensions (which
    is also where permission classes live), not a subscription."""
    definition = field_def.extensions.get("strawberry-definition")
    if (
        not isinstance(definition, StrawberryField)
        or definition.base_resolver is None
        or definition.extensions
        or definition.permission_classes
        or definition.is_subscription
    ):
        return None
    return definition


def _direct_call(definition: StrawberryField) -> Callable[[Any, dict[str, Any]], Any]:
    """What Strawberry's wrapper does per call once the arguments are converted: pass the
    source as `self`, `root` or the parent parameter (`resolver_kwargs` adds `info`)."""
    resolver = definition.base_resolver
    assert resolver is not None  # noqa: S101 - checked by _plain_resolver
    takes_self = resolver.self_parameter is not None
    named = [p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p is not None]

    def call(source: Any, kwargs: dict[str, Any]) -> Any:
        if named:
            kwargs = {**kwargs, **dict.fromkeys(named, source)}
        return resolver(source, **kwargs) if takes_self else resolver(**kwargs)

    return call


def _leaf_completer(leaf: GraphQLLeafType) -> Completer:
    # What graphql-core's complete_leaf_value calls (`serialize` is its deprecated alias,
    # which may differ from it when a scalar gives both).
    serialize = leaf.coerce_output_value
    unchanged = _UNCHANGED.get(leaf.name)

    def leaf_value(value: Any, ex: Any, step: FieldStep) -> Any:
        if value is None:
            return None
        if type(value) is unchanged and (unchanged is not int or value in _INT_RANGE):
            return value
        serialized = serialize(value)
        if serialized is None or serialized is _UNDEFINED:
            raise Bail
        return serialized

    return leaf_value


def _run_object(plan: ObjectPlan, value: Any, ex: CompiledExecutor, step: FieldStep) -> Any:
    is_type_of = plan.type.is_type_of
    if is_type_of is not None:
        info, _ = ex.prepared(step)
        if is_type_of(value, info) is not True:
            raise Bail
    return plan.run(value, ex)


def _object_completer(plan: ObjectPlan) -> Completer:
    def object_value(value: Any, ex: CompiledExecutor, step: FieldStep) -> Any:
        if value is None:
            return None
        return _run_object(plan, value, ex, step)

    return object_value


def _list_completer(item: Completer) -> Completer:
    def list_value(value: Any, ex: CompiledExecutor, step: FieldStep) -> Any:
        if value is None:
            return None
        items = [item(element, ex, step) for element in value]
        is_awaitable = ex.is_awaitable
        waiting = [index for index, completed in enumerate(items) if is_awaitable(completed)]
        if not waiting:
            return items
        return _fill_list(items, waiting)

    return list_value


async def _fill_list(items: list[Any], waiting: list[int]) -> list[Any]:
    for index, value in zip(waiting, await gather([items[i] for i in waiting]), strict=True):
        items[index] = value
    return items


# The executor of the subscription being set up in this task (contextvars are per task).
_subscribing: contextvars.ContextVar[CompiledExecutor | None] = contextvars.ContextVar(
    "subscribing", default=None
)


def subscribing() -> CompiledExecutor | None:
    """Inside a subscription resolver: the executor that will run its events."""
    return _subscribing.get()


PlanKey = tuple[str, str | None, str]
# Per schema: a plan holds that schema's fields and resolvers.
_plans: weakref.WeakKeyDictionary[GraphQLSchema, OrderedDict[PlanKey, ObjectPlan | None]] = (
    weakref.WeakKeyDictionary()
)


def _has_directives(node: Node) -> bool:
    """@skip/@include make the selection depend on variables; a plan must not."""

    class Finder(Visitor):
        found = False

        def enter_directive(self, *_: Any) -> Any:
            self.found = True
            return BREAK

    finder = Finder()
    visit(node, finder)
    return finder.found


class CompiledExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, with queries and subscription events run from a plan."""

    # Off only to compare the two paths (tests/test_compiled_execution.py).
    enabled: ClassVar[bool] = True
    _prepared: dict[int, tuple[Any, dict[str, Any]]]
    _converted: dict[int, dict[str, Any]]
    # Every resolver call of the plan's run: (step, source, value or _Raised).
    resolved: list[tuple[FieldStep, Any, Any]]

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        executor = super().build(*args, **kwargs)
        if (
            isinstance(executor, CompiledExecutor)
            and executor.operation.operation is OperationType.SUBSCRIPTION
        ):
            # The subscription resolver runs next, in this task: see `subscribing()`.
            _subscribing.set(executor)
        return executor

    def _compiles(self, serially: bool | None) -> bool:
        return self.enabled and not (
            self.operation.operation is OperationType.MUTATION
            or serially
            or self.abort_signal is not None
            or (self.middleware_manager is not None and self.middleware_manager.middlewares)
        )

    def execute_operation(self, serially: bool | None = None) -> Any:
        if not self._compiles(serially):
            return super().execute_operation(serially)
        plan = self._plan()
        if plan is None:
            return super().execute_operation(serially)
        return self._run_plan(plan, serially)

    def _plan(self) -> ObjectPlan | None:
        operation = self.operation
        source = operation.loc.source.body if operation.loc else None
        if source is None:
            return None
        plans = _plans.get(self.schema)
        if plans is None:
            plans = _plans[self.schema] = OrderedDict()
        key = (source, operation.name.value if operation.name else None, operation.operation.value)
        if key in plans:
            plans.move_to_end(key)
            return plans[key]
        root_type = self.schema.get_root_type(operation.operation)
        plan: ObjectPlan | None = None
        try:
            if root_type is not None and not any(
                _has_directives(node) for node in (operation, *self.fragment_definitions.values())
            ):
                plan = Compiler(self).root(root_type, operation)
        except NotCompilable:
            plan = None
        plans[key] = plan
        if len(plans) > PLAN_CACHE_SIZE:
            plans.popitem(last=False)
        return plan

    async def _run_plan(self, plan: ObjectPlan, serially: bool | None) -> Any:
        self._prepared = {}
        self._converted = {}
        self.resolved = []
        try:
            data = plan.run(self.root_value, self)
            if self.is_awaitable(data):
                data = await data
        except asyncio.CancelledError:
            raise
        except Exception:
            # graphql-core answers from the start: its own errors, paths and nulls. Its
            # resolvers are answered with what they gave the plan: none runs twice.
            self._prepared = {}
            self._converted = {}
            self.middleware_manager = _replay(self.resolved)
            self.resolved = []
            result = super().execute_operation(serially)
            return await result if self.is_awaitable(result) else result
        return self.build_response(data)

    def event_runner(self) -> Callable[[Any], dict[str, Any]] | None:
        """A subscription's events answered on the spot: the event's `data`, computed
        without awaiting anything. None when an event must go through graphql-core (no
        plan, or a step that may await). The runner raises where a plan would bail: the
        caller hands that event to the usual path, which answers with graphql-core."""
        if not self._compiles(False):
            return None
        plan = self._plan()
        if plan is None or not plan.synchronous:
            return None
        # The subscription's own executor answers all of its events, what a per-event copy
        # would hold reset for each (root value, resolve infos, converted arguments). It is
        # kept for the subscription's life anyway; a copy of it held 1.5 KiB per subscriber.
        # graphql-core's per-event copies (events that take its path) reset the same state.
        ex = self

        def run(event: Any) -> dict[str, Any]:
            ex.root_value = event
            ex._prepared = {}
            ex._converted = {}
            ex.resolved = []
            try:
                data = plan.run(event, ex)
            finally:
                # Between events a subscriber holds nothing of the last one (its message,
                # resolve infos, resolver calls): with thousands open, that adds up.
                ex.root_value = None
                ex._prepared.clear()
                ex._converted.clear()
                ex.resolved.clear()
            if ex.is_awaitable(data):  # pragma: no cover - excluded by plan.synchronous
                raise Bail
            return data  # type: ignore[no-any-return]

        return run

    def keep_for_events(self) -> None:
        """Once only `event_runner`'s runner uses this executor (a parked subscription),
        graphql-core's memos of execution plans for @defer go: a plan never reads them,
        and they were 1.6 KiB of each open subscription."""
        for name in ("_initial_execution_plans", "_deferred_execution_plans"):
            self.__dict__.pop(name, None)

    @property
    def strawberry_schema(self) -> Any:
        return getattr(self.schema, "_strawberry_schema", None)

    def resolver_kwargs(self, step: FieldStep) -> dict[str, Any]:
        """A direct call's keyword arguments, converted as Strawberry would, with `info`."""
        found = self._converted.get(id(step))
        if found is None:
            definition = step.definition
            strawberry_schema = self.strawberry_schema
            if definition is None or strawberry_schema is None:
                raise Bail
            raw_info, args = self.prepared(step)
            config = strawberry_schema.config
            info = config.info_class(_raw_info=raw_info, _field=definition)
            found = convert_arguments(
                args,
                definition.arguments,
                scalar_registry=strawberry_schema.schema_converter.scalar_registry,
                config=config,
                info=info,
            )
            resolver = definition.base_resolver
            if resolver is not None and resolver.info_parameter is not None:
                found[resolver.info_parameter.name] = info
            self._converted[id(step)] = found
        return found

    def prepared(self, step: FieldStep) -> tuple[Any, dict[str, Any]]:
        """The resolve info and arguments of a field: the same for every object it is
        resolved on in this request, so built once."""
        found = self._prepared.get(id(step))
        if found is None:
            field_def = step.field_def
            if field_def is None:
                raise Bail
            info = self.build_resolve_info(
                field_def, step.nodes, step.parent_type, Path(None, step.key, step.parent_type.name)
            )
            node = step.nodes[0]
            args = (
                get_argument_values(field_def, node, self.variable_values)
                if field_def.args or node.arguments
                else {}
            )
            found = self._prepared[id(step)] = (info, args)
        return found


def plan_ahead(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> bool:
    """Builds and keeps the plan of one of a document's operations before any request asks
    for it (trusted documents, at start-up: schema/persisted/). Whether it has one. The
    operation's variables are left out: a plan never reads them (the directives that would
    are never planned), and a required one would otherwise stop the executor being built."""
    definitions = tuple(
        replace(definition, variable_definitions=())
        if isinstance(definition, OperationDefinitionNode)
        else definition
        for definition in document.definitions
    )
    # In a context of its own: building a subscription's executor marks the current task
    # as about to subscribe (`subscribing()`).
    executor = contextvars.copy_context().run(
        CompiledExecutor.build,
        schema,
        DocumentNode(definitions=definitions, loc=document.loc),
        operation_name=operation_name,
    )
    if not isinstance(executor, CompiledExecutor) or not executor._compiles(False):
        return False
    return executor._plan() is not None
