"""How many objects a query may ask for: the depth, alias and token limits bound a document's
size, not its answer's. Pages nest (a listing's grants, each grant's listing, its grants...),
and each page multiplies what is under it: a 6 KB document within those limits built a
quarter of a million objects, blocking every other request for seconds.

A document's cost is the most objects its answer can hold: each field of an object type counts
once for each object it can return, times what is selected under it. A page counts its
`first` (the literal, the variable's value in this request, or the argument's default); the
`edges` of a page add no more than that; any other list counts `UNBOUNDED_LIST`. Fragments
count where they are spread. Worked out once per document (a tree of multipliers), and then
per request with its variables, on the pipeline's path and on the admitted one alike."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
)
from strawberry.extensions import SchemaExtension

# A page of 50 listings with 20 grants each, their lockboxes and grantees, costs about 4,000.
MAX_COST = 20_000
UNBOUNDED_LIST = 10
MAX_PLANS = 256


@dataclass
class _Node:
    """A field's multiplier (a number, or a variable's name with its fallback) and what is
    selected under it."""

    times: int = 1
    variable: str | None = None
    children: list[_Node] = field(default_factory=list)

    def cost(self, variables: Mapping[str, Any]) -> int:
        times = self.times
        if self.variable is not None:
            given = variables.get(self.variable)
            if isinstance(given, int) and not isinstance(given, bool):
                times = max(given, 0)
        under = sum(child.cost(variables) for child in self.children)
        return times * (1 + under)


def _fields_of(type_: Any) -> Mapping[str, Any]:
    fields = getattr(type_, "fields", None)
    return fields if isinstance(fields, Mapping) else {}


class _Planner:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.defaults: dict[str, int] = {}

    def selections(
        self, selection_set: SelectionSetNode | None, parent: Any, seen: frozenset[str]
    ) -> Iterator[_Node]:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                node = self.field(selection, parent, seen)
                if node is not None:
                    yield node
            elif isinstance(selection, InlineFragmentNode):
                inner = parent
                if selection.type_condition is not None:
                    inner = self.schema.get_type(selection.type_condition.name.value) or parent
                yield from self.selections(selection.selection_set, inner, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue  # unknown, or a cycle: validation refuses the document anyway
                inner = self.schema.get_type(fragment.type_condition.name.value) or parent
                yield from self.selections(fragment.selection_set, inner, seen | {name})

    def field(self, node: FieldNode, parent: Any, seen: frozenset[str]) -> _Node | None:
        definition = _fields_of(get_named_type(parent)).get(node.name.value)
        if definition is None:
            return None  # __typename, or a field validation refuses
        returned = definition.type
        if is_leaf_type(get_named_type(returned)):
            return None
        plan = _Node()
        if "first" in definition.args:
            plan.times = _int(definition.args["first"].default_value, UNBOUNDED_LIST)
            for argument in node.arguments or ():
                if argument.name.value != "first":
                    continue
                if isinstance(argument.value, IntValueNode):
                    plan.times = int(argument.value.value)
                elif isinstance(argument.value, VariableNode):
                    plan.variable = argument.value.name.value
                    plan.times = self.defaults.get(plan.variable, plan.times)
        elif _is_list(returned):
            in_page = isinstance(parent, GraphQLObjectType) and parent.name.endswith("Connection")
            plan.times = 1 if in_page else UNBOUNDED_LIST
        plan.children = list(self.selections(node.selection_set, get_named_type(returned), seen))
        return plan


def _int(value: Any, otherwise: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else otherwise


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def plan(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> _Node:
    """The cost tree of the operation `operation_name` names (or the document's only one)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    root = _Node(times=0)  # the operation itself is not an object
    if len(operations) != 1:
        return root  # no operation to run: graphql-core says so
    operation = operations[0]
    planner = _Planner(schema, document)
    for definition in operation.variable_definitions or ():
        default = definition.default_value
        if isinstance(default, IntValueNode):
            planner.defaults[definition.variable.name.value] = int(default.value)
    root_type = schema.get_root_type(operation.operation)
    root.children = list(planner.selections(operation.selection_set, root_type, frozenset()))
    return root


class Plans:
    """The cost trees of recent documents, by text and operation name."""

    def __init__(self) -> None:
        self._plans: OrderedDict[tuple[str, str | None], _Node] = OrderedDict()

    def cost(
        self,
        schema: GraphQLSchema,
        query: str,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> int:
        key = (query, operation_name)
        tree = self._plans.get(key)
        if tree is None:
            tree = self._plans[key] = plan(schema, document, operation_name)
            if len(self._plans) > MAX_PLANS:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        root_cost = sum(child.cost(variables or {}) for child in tree.children)
        return root_cost


PLANS = Plans()


def over_limit(
    schema: GraphQLSchema,
    query: str,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> GraphQLError | None:
    """The error to answer with when this request's answer could hold too many objects."""
    cost = PLANS.cost(schema, query, document, operation_name, variables)
    if cost <= MAX_COST:
        return None
    return GraphQLError(
        f"This query could return up to {cost} objects, more than {MAX_COST}: ask for smaller"
        " pages, or fewer pages inside pages.",
        extensions={"code": "INVALID_INPUT"},
    )


class LimitCost(SchemaExtension):
    """Refuses a valid request whose answer could hold more than MAX_COST objects, before it
    runs (the admitted path asks `over_limit` itself: schema/schema.py)."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # After ValidationCache's hook, which has already validated (an empty list: valid).
        if not context.pre_execution_errors and document is not None and context.query:
            error = over_limit(
                self.execution_context.schema._schema,
                context.query,
                document,
                context.operation_name,
                context.variables,
            )
            if error is not None:
                context.pre_execution_errors = [error]
        yield
