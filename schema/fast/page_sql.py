"""Hot pages answered by PostgreSQL as one JSON document: an agent's listings page and the
Message Center.

The listings page (listings -> lockbox -> grants -> grantee) is what agents' apps open
with, the Message Center what every app opens with, and both are mostly rows copied into
JSON. Fetched row by row and completed in Python they cost a model instance, a Strawberry
object and a dict per row; PostgreSQL builds the same JSON from the same rows in one
statement (json_build_object/json_agg), far faster, and the response keeps it as it comes.

`compile_field` turns a field of `ROOTS` and the selection below it into one statement,
when every field selected is mapped to columns (`TYPES`, in schema/fast/page_columns.py); anything
else (a field with its own resolver, an interface, a directive, a permission class) leaves
the field to its resolvers. At run
time the statement is taken only when the rules the resolvers apply let it through (the
account's own rows; `first` in range; a valid cursor; no search, status or unread filter);
otherwise the resolvers answer, with their errors. The statement reproduces what the
resolvers return (global ids, keyset cursors, ISO 8601 times, grant statuses from the
clock); tests/test_projection.py runs pages both ways and compares them.

PostgreSQL only: SQLite has no base64 and formats times differently, and its answers are
already within the benchmark's target."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import GraphQLField, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLOutputType
from graphql.execution.collect_fields import FieldDetails, collect_subfields
from graphql.execution.values import get_argument_values
from graphql.language import FieldNode
from tortoise import connections

from schema.base import MAX_FIRST, decode_cursor
from schema.fast.page_columns import (
    ROOTS,
    TYPES,
    Bound,
    Embedded,
    Leaf,
    Many,
    Mapping,
    Page,
    Params,
    ToOne,
    cursor,
)

if TYPE_CHECKING:
    from schema.fast.plans import Compiler

# json_build_object takes at most 100 arguments, a key and a value per field.
MAX_KEYS = 50


class Unmapped(Exception):
    """A selection this module does not answer: the resolvers do."""


@dataclass
class Statement:
    """One compiled field: the statement, its parameters, and its connections' arguments
    (the first is the field's own)."""

    sql: str
    params: Params
    pages: list[tuple[GraphQLField, FieldNode, tuple[str, ...]]]
    allowed: Callable[[Any, Any], bool]

    def answer(self, source: Any, ex: Any, args: dict[str, Any]) -> Awaitable[Any] | None:
        """The field's completed value, or None when the resolvers must answer (`ex` is the
        request's CompiledExecutor, `args` the field's own arguments)."""
        if _dialect() != "postgres" or not self.allowed(source, ex.context_value):
            return None
        pages = []
        for index, (page_field, node, filters) in enumerate(self.pages):
            page_args = (
                args if index == 0 else get_argument_values(page_field, node, ex.variable_values)
            )
            page = _page(page_args, filters)
            if page is None:
                return None
            pages.append(page)
        bound = Bound(source, pages)
        return _run(self.sql, [read(bound) for read in self.params.readers])


@dataclass
class Builder:
    compiler: Compiler
    params: Params = field(default_factory=Params)
    pages: list[tuple[GraphQLField, FieldNode, tuple[str, ...]]] = field(default_factory=list)
    aliases: int = 0

    def alias(self) -> str:
        self.aliases += 1
        return f"kb{self.aliases}"

    def subfields(
        self, object_type: GraphQLObjectType, details: list[FieldDetails]
    ) -> dict[str, list[FieldDetails]]:
        ex = self.compiler.ex
        grouped, deferred, forbidden = collect_subfields(
            ex.schema, ex.fragments, ex.variable_values, ex.operation, object_type, details
        )
        if deferred or forbidden:
            raise Unmapped
        return grouped

    def object_json(
        self, object_type: GraphQLObjectType, details: list[FieldDetails], row: str
    ) -> str:
        mapped = TYPES.get(object_type.name)
        if mapped is None:
            raise Unmapped
        pairs = []
        for key, field_details in self.subfields(object_type, details).items():
            name = field_details[0].node.name.value
            if name == "__typename":
                value = f"'{object_type.name}'"
            else:
                mapping = mapped.get(name)
                field_def = object_type.fields[name]
                if mapping is None:
                    raise Unmapped
                value = self.value(mapping, field_def, field_details, row)
            pairs.append(f"'{key}', {value}")
        if len(pairs) > MAX_KEYS:
            raise Unmapped
        return f"json_build_object({', '.join(pairs)})"

    def value(
        self, mapping: Mapping, field_def: GraphQLField, details: list[FieldDetails], row: str
    ) -> str:
        _unguarded(field_def)
        if isinstance(mapping, Leaf):
            if any(detail.node.arguments for detail in details):
                raise Unmapped
            return mapping.render(row, self.params)
        target = _object_type(field_def.type)
        if isinstance(mapping, Embedded):
            return self.object_json(target, details, row)
        if isinstance(mapping, ToOne):
            inner = self.alias()
            body = self.object_json(target, details, inner)
            where = mapping.on(row, inner)
            return f'(SELECT {body} FROM "{mapping.table}" {inner} WHERE {where})'  # noqa: S608
        return self.connection(mapping, field_def, target, details, row)

    def connection(
        self,
        many: Many,
        field_def: GraphQLField,
        connection_type: GraphQLObjectType,
        details: list[FieldDetails],
        outer: str,
    ) -> str:
        index = len(self.pages)
        self.pages.append((field_def, details[0].node, many.filters))
        limit = self.params.add(("limit", index), lambda b: b.pages[index].limit, "int")
        fetched = self.params.add(("fetch", index), lambda b: b.pages[index].limit + 1, "int")
        before = self.params.add(("before", index), lambda b: b.pages[index].before_id, "int")
        row = self.alias()
        shown = f"FILTER (WHERE {row}.kb_rn <= {limit})"
        parts = []
        for key, field_details in self.subfields(connection_type, details).items():
            name = field_details[0].node.name.value
            if name != "__typename":
                _unguarded(connection_type.fields[name])
            if name == "__typename":
                value = f"'{connection_type.name}'"
            elif name == "edges":
                edge_type = _object_type(connection_type.fields["edges"].type, listed=True)
                edge = self.edge_json(edge_type, field_details, row)
                value = f"COALESCE(json_agg({edge} ORDER BY {row}.\"id\" DESC) {shown}, '[]')"
            elif name == "pageInfo":
                page_type = _object_type(connection_type.fields["pageInfo"].type)
                value = self.page_info(page_type, field_details, row, shown, limit, before)
            elif name == "totalCount":
                counted = self.alias()
                where = many.on(outer, counted, self.params)
                value = f'(SELECT count(*) FROM "{many.table}" {counted} WHERE {where})'  # noqa: S608
            else:
                raise Unmapped
            parts.append(f"'{key}', {value}")
        where = many.on(outer, row, self.params)
        rows = (
            f'SELECT {row}.*, row_number() OVER (ORDER BY {row}."id" DESC) AS kb_rn '  # noqa: S608
            f'FROM "{many.table}" {row} WHERE {where} '
            f'AND ({before} IS NULL OR {row}."id" < {before}) '
            f'ORDER BY {row}."id" DESC LIMIT {fetched}'
        )
        return f"(SELECT json_build_object({', '.join(parts)}) FROM ({rows}) {row})"  # noqa: S608

    def edge_json(self, edge_type: GraphQLObjectType, details: list[FieldDetails], row: str) -> str:
        pairs = []
        for key, field_details in self.subfields(edge_type, details).items():
            name = field_details[0].node.name.value
            if name == "__typename":
                value = f"'{edge_type.name}'"
            elif name == "cursor":
                value = cursor(f'{row}."id"')
            elif name == "node":
                node_type = _object_type(edge_type.fields["node"].type)
                value = self.object_json(node_type, field_details, row)
            else:
                raise Unmapped
            pairs.append(f"'{key}', {value}")
        return f"json_build_object({', '.join(pairs)})"

    def page_info(
        self,
        page_type: GraphQLObjectType,
        details: list[FieldDetails],
        row: str,
        shown: str,
        limit: str,
        before: str,
    ) -> str:
        values = {
            "__typename": f"'{page_type.name}'",
            "hasNextPage": f"count(*) > {limit}",
            "hasPreviousPage": f"{before} IS NOT NULL",
            "startCursor": cursor(f'max({row}."id") {shown}'),
            "endCursor": cursor(f'min({row}."id") {shown}'),
        }
        pairs = []
        for key, field_details in self.subfields(page_type, details).items():
            value = values.get(field_details[0].node.name.value)
            if value is None:
                raise Unmapped
            pairs.append(f"'{key}', {value}")
        return f"json_build_object({', '.join(pairs)})"


def _unguarded(field_def: GraphQLField) -> None:
    """A statement skips Strawberry's per-field machinery: a field that has permission
    classes or field extensions must have them run, by its resolver."""
    definition = field_def.extensions.get("strawberry-definition")
    if definition is not None and (definition.permission_classes or definition.extensions):
        raise Unmapped


def _object_type(output: GraphQLOutputType, listed: bool = False) -> GraphQLObjectType:
    """The object type of a field (of its items, for a list such as `edges`)."""
    while isinstance(output, GraphQLNonNull) or (listed and isinstance(output, GraphQLList)):
        output = output.of_type
    if not isinstance(output, GraphQLObjectType):
        raise Unmapped
    return output


def compile_field(
    compiler: Compiler,
    parent: GraphQLObjectType,
    field_def: GraphQLField,
    details: list[FieldDetails],
) -> Callable[[Any, Any, dict[str, Any]], Awaitable[Any] | None] | None:
    """The field's answer as one statement, if this module maps all of its selection."""
    root = ROOTS.get((parent.name, details[0].node.name.value))
    if root is None or _dialect() != "postgres":
        return None
    many, allowed = root
    builder = Builder(compiler)
    try:
        _unguarded(field_def)
        target = _object_type(field_def.type)
        sql = f"SELECT ({builder.connection(many, field_def, target, details, '')})::text"
    except Unmapped:
        return None
    return Statement(sql, builder.params, builder.pages, allowed).answer


def _dialect() -> str | None:
    try:
        return str(connections.get("default").capabilities.dialect)
    except Exception:  # noqa: BLE001  (no database configured: nothing to compile for)
        return None


def _page(args: dict[str, Any], filters: tuple[str, ...]) -> Page | None:
    """The resolvers' check_first and decode_cursor, or None where they would refuse (or
    filter, which the statement does not): the resolvers then answer."""
    for name in filters:
        value = args.get(name)
        # Absent, false, empty or blank: no filter, as the resolvers read them.
        if value and not (isinstance(value, str) and not value.strip()):
            return None
    first = args.get("first")
    limit = 20 if first is None else first
    if not isinstance(limit, int) or not 0 <= limit <= MAX_FIRST:
        return None
    try:
        before_id = decode_cursor(args.get("after"))
    except Exception:  # noqa: BLE001  (an invalid cursor: the resolver says so)
        return None
    return Page(limit, before_id)


async def _run(sql: str, values: list[Any]) -> Any:
    _, rows = await connections.get("default").execute_query(sql, values)
    return json.loads(rows[0][0])
