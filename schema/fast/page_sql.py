"""Hot pages answered by the database as one JSON document: an agent's listings page and
the Message Center.

The listings page (listings -> lockbox -> grants -> grantee) is what agents' apps open
with, the Message Center what every app opens with, and both are mostly rows copied into
JSON. Fetched row by row and completed in Python they cost a model instance, a Strawberry
object and a dict per row; the database builds the same JSON from the same rows in one
statement (PostgreSQL's json_build_object/json_agg, SQLite's json_object/json_group_array;
page_dialects.py), far faster.

`compile_field` turns a field of `ROOTS` and the selection below it into one statement,
when every field selected is mapped to columns (`TYPES`, in schema/fast/page_columns.py); anything
else (a field with its own resolver, an interface, a directive, a permission class) leaves
the field to its resolvers. At run
time the statement is taken only when the rules the resolvers apply let it through (the
account's own rows; `first` in range; a valid cursor; no search, status or unread filter);
otherwise the resolvers answer, with their errors. The statement reproduces what the
resolvers return (global ids, keyset cursors, ISO 8601 times, grant statuses from the
clock); tests/test_projection.py runs pages both ways and compares them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import GraphQLField, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLOutputType
from graphql.execution.collect_fields import FieldDetails, collect_subfields
from graphql.execution.values import get_argument_values
from graphql.language import FieldNode
from tortoise import connections

from schema.base import MAX_FIRST, decode_cursor
from schema.fast.json_fragments import Fragment
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
)
from schema.fast.page_dialects import DIALECTS, Dialect

if TYPE_CHECKING:
    from schema.fast.plans import Compiler

# json_build_object takes at most 100 arguments (SQLite's json_object 127), a key and a
# value per field.
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
        if not self.allowed(source, ex.context_value):
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
    params: Params
    pages: list[tuple[GraphQLField, FieldNode, tuple[str, ...]]] = field(default_factory=list)
    aliases: int = 0

    @property
    def dialect(self) -> Dialect:
        return self.params.dialect

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
        return self.dialect.json_object(pairs)

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
            one = f'SELECT {body} FROM "{mapping.table}" {inner} WHERE {where}'  # noqa: S608
            return self.dialect.nested(one)
        return self.dialect.nested(self.connection(mapping, field_def, target, details, row))

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
        row = self.alias()
        parts = []
        reads_rows = False  # whether anything selected comes from the page's rows
        for key, field_details in self.subfields(connection_type, details).items():
            name = field_details[0].node.name.value
            if name != "__typename":
                _unguarded(connection_type.fields[name])
            if name == "__typename":
                value = f"'{connection_type.name}'"
            elif name == "edges":
                edge_type = _object_type(connection_type.fields["edges"].type, listed=True)
                edge = self.edge_json(edge_type, field_details, row)
                value = self.dialect.json_array(edge, f'{row}."id" DESC')
                reads_rows = True
            elif name == "pageInfo":
                page_type = _object_type(connection_type.fields["pageInfo"].type)
                value, cursors = self.page_info(page_type, field_details, many, outer, row, index)
                reads_rows = reads_rows or cursors
            elif name == "totalCount":
                counted = self.alias()
                where = many.on(outer, counted, self.params)
                value = f'(SELECT count(*) FROM "{many.table}" {counted} WHERE {where})'  # noqa: S608
            else:
                raise Unmapped
            parts.append(f"'{key}', {value}")
        body = self.dialect.json_object(parts)
        if not reads_rows:
            # Nothing aggregates the rows then: read from them, the query would answer
            # once per row (or not at all), where one object is wanted.
            return f"SELECT {body}"
        page = self.page_rows(many, outer, row, index)
        rows = f"SELECT {row}.* FROM {page} LIMIT {self.dialect.limit(limit)}"  # noqa: S608
        return f"SELECT {body} FROM ({rows}) {row}"  # noqa: S608

    def page_rows(self, many: Many, outer: str, row: str, index: int) -> str:
        """The rows of a page from its keyset position on, newest first (LIMIT to add)."""
        before = self.params.add(("before", index), lambda b: b.pages[index].before_id, "int")
        where = many.on(outer, row, self.params)
        return (
            f'"{many.table}" {row} WHERE {where} '
            f'AND ({before} IS NULL OR {row}."id" < {before}) ORDER BY {row}."id" DESC'
        )

    def edge_json(self, edge_type: GraphQLObjectType, details: list[FieldDetails], row: str) -> str:
        pairs = []
        for key, field_details in self.subfields(edge_type, details).items():
            name = field_details[0].node.name.value
            if name == "__typename":
                value = f"'{edge_type.name}'"
            elif name == "cursor":
                value = self.dialect.cursor(f'{row}."id"')
            elif name == "node":
                node_type = _object_type(edge_type.fields["node"].type)
                value = self.object_json(node_type, field_details, row)
            else:
                raise Unmapped
            pairs.append(f"'{key}', {value}")
        return self.dialect.json_object(pairs)

    def page_info(
        self,
        page_type: GraphQLObjectType,
        details: list[FieldDetails],
        many: Many,
        outer: str,
        row: str,
        index: int,
    ) -> tuple[str, bool]:
        """pageInfo's object, and whether it reads the page's rows (its cursors do)."""
        dialect, params = self.dialect, self.params
        pairs = []
        cursors = False
        for key, field_details in self.subfields(page_type, details).items():
            name = field_details[0].node.name.value
            if name == "__typename":
                value = f"'{page_type.name}'"
            elif name == "hasNextPage":
                # One row past the page is enough to know: counted apart from the page's rows.
                limit = params.add(("limit", index), lambda b: b.pages[index].limit, "int")
                fetched = params.add(("fetch", index), lambda b: b.pages[index].limit + 1, "int")
                ahead = self.alias()
                page = self.page_rows(many, outer, ahead, index)
                rows = f"SELECT 1 FROM {page} LIMIT {dialect.limit(fetched)}"  # noqa: S608
                counted = f"(SELECT count(*) FROM ({rows}) {ahead})"  # noqa: S608
                value = dialect.boolean(f"{counted} > {limit}")
            elif name == "hasPreviousPage":
                before = params.add(("before", index), lambda b: b.pages[index].before_id, "int")
                value = dialect.boolean(f"{before} IS NOT NULL")
            elif name in ("startCursor", "endCursor"):
                newest = name == "startCursor"
                value = dialect.cursor(f'{"max" if newest else "min"}({row}."id")')
                cursors = True
            else:
                raise Unmapped
            pairs.append(f"'{key}', {value}")
        return dialect.json_object(pairs), cursors


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
    dialect = _dialect()
    if root is None or dialect is None:
        return None
    many, allowed = root
    builder = Builder(compiler, Params(dialect))
    try:
        _unguarded(field_def)
        target = _object_type(field_def.type)
        sql = dialect.document(builder.connection(many, field_def, target, details, ""))
    except Unmapped:
        return None
    return Statement(sql, builder.params, builder.pages, allowed).answer


def _dialect() -> Dialect | None:
    try:
        name = str(connections.get("default").capabilities.dialect)
    except Exception:  # noqa: BLE001  (no database configured: nothing to compile for)
        return None
    return DIALECTS.get(name)


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


async def _run(sql: str, values: list[Any]) -> Fragment:
    client = connections.get("default")
    dialect = DIALECTS[str(client.capabilities.dialect)]
    rows = dialect.read_now(client, sql, values)
    if rows is None:
        await dialect.prepare(client)
        _, rows = await client.execute_query(sql, values)
    return Fragment(rows[0][0])
