"""How the API executes a GraphQL document: graphql-core's executor with short paths.

Every short path here gives the response graphql-core would, and hands
anything it is not sure of (a null, a value that does not serialize, a
directive) to graphql-core's own path, so that errors and their locations
stay graphql-core's.
"""

from __future__ import annotations

from typing import Any, cast

from graphql import (
    DocumentNode,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    Undefined,
    get_named_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution import values as _values
from graphql.execution.get_variable_signature import get_variable_signature
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graph.pacing import step_aside


def _bounded_depth(kind: GraphQLInputType, inside: frozenset[int] = frozenset()) -> int | None:
    """How many lists and input objects deep a value of ``kind`` can go; None if unbounded.

    Unbounded: an input object that can hold itself, at any remove.
    """
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    if isinstance(kind, GraphQLList):
        inner = _bounded_depth(kind.of_type, inside)
        return None if inner is None else inner + 1
    if isinstance(kind, GraphQLInputObjectType):
        if id(kind) in inside:
            return None
        deepest = 0
        for field in kind.fields.values():
            inner = _bounded_depth(field.type, inside | {id(kind)})
            if inner is None:
                return None
            deepest = max(deepest, inner)
        return deepest + 1
    return 0


def _walk_only_unbounded_types() -> None:
    """Let graphql-core walk a variable's value for excess nesting only where it can be excessive.

    Before it coerces a variable, graphql-core walks the whole value to see
    whether it nests deeper than its limit (a guard against recursion in
    coercion). Only the nesting the type follows counts, so a type that
    cannot hold itself cannot nest past its own depth: for a batch of 500
    events the walk was 3 ms holding the interpreter, the longest stretch
    of a write with no point to step aside. Types that can hold themselves
    are still walked.
    """
    walk = getattr(_values, "input_is_nested_too_deeply", None)
    limit = getattr(_values, "MAX_NESTING_DEPTH", None)
    if walk is None or limit is None:
        return

    # A type's depth never changes; a variable's wrapping types are made anew
    # for each request, so it is known by its printed form and its named type.
    depths: dict[tuple[str, Any], int | None] = {}

    def nested_too_deeply(value: Any, kind: GraphQLInputType) -> bool:
        known = (str(kind), get_named_type(kind))
        if known not in depths:
            depths[known] = _bounded_depth(kind)
        depth = depths[known]
        if depth is not None and depth <= limit:
            return False
        return bool(walk(value, kind))

    _values.input_is_nested_too_deeply = nested_too_deeply


_walk_only_unbounded_types()


class Execution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution, with short paths for flat inputs and plain leaf fields.

    A hundred resolutions are two hundred such fields; for each, the full path
    builds a ResolveInfo, asks whether the value is awaitable and dispatches
    on the type before it calls the very ``serialize`` used here. Null values,
    values that do not serialize, and any schema with resolver middleware take
    the full path, so errors and their paths are graphql-core's own.
    """

    @classmethod
    def build(  # type: ignore[override]
        cls,
        schema: GraphQLSchema,
        document: DocumentNode,
        root_value: Any = None,
        context_value: Any = None,
        raw_variable_values: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Build as graphql-core does, with lists of flat input objects coerced here.

        ``resolveIdentifiers`` takes a hundred ``{type, value}`` objects;
        graphql-core coerces each through five levels of its generic
        recursion, a sixth of the whole request. A list of input objects
        whose fields are all strings is checked and copied here in one loop;
        graphql-core is given an empty list in its place, so that every
        other variable, and every error, is still its own. A value that is
        not plainly valid goes to graphql-core as it came.
        """
        given = raw_variable_values or {}
        flat = _coerce_flat_lists(schema, document, operation_name, given)
        raw = {**given, **dict.fromkeys(flat, ())} if flat else given
        built = super().build(
            schema, document, root_value, context_value, raw, operation_name, *args, **kwargs
        )
        if flat and not isinstance(built, list):
            values = built.variable_values
            for name, coerced in flat.items():
                values.coerced[name] = coerced
                values.sources[name] = values.sources[name]._replace(
                    value=raw_variable_values[name]
                )
        return built

    def _wrapped_resolvers(self) -> bool:
        """Whether resolver middleware runs: then every field takes the full path."""
        return bool(self.middleware_manager and self.middleware_manager.middlewares)

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        field = parent_type.fields.get(field_details_list[0].node.name.value)
        leaf: GraphQLLeafType | None = getattr(field and field.resolve, "leaf", None)
        if leaf is not None and not self._wrapped_resolvers():
            value = getattr(source, field.resolve.attribute)
            if value is not None:
                try:
                    serialized = leaf.serialize(value)
                except Exception:  # the full path reports it as it should
                    serialized = None
                if serialized is not None and serialized is not Undefined:
                    return serialized
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        """Each object completed is a point where a write may step aside (``graph.pacing``).

        A batch's response is hundreds of results made in one go; reads need
        not wait for all of them. On the event loop, where reads run, the
        point does nothing.
        """
        step_aside()
        return super().execute_fields(
            parent_type, source_value, path, grouped_field_set, position_context
        )

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        """An object whose selection is plain data (see ``_Plan``), made in one go."""
        plan = self._plan(return_type, field_details_list)
        if plan is not None:
            row = _complete(plan, result)
            if row is not None:
                return row
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def complete_iterable_value(
        self,
        item_type: GraphQLOutputType,
        field_details_list: Any,
        info: Any,
        path: Any,
        items: Any,
        position_context: Any,
    ) -> Any:
        """A list of objects whose selection is plain data (see ``_Plan``), made row by row."""
        nullable = not is_non_null_type(item_type)
        object_type = item_type if nullable else cast(GraphQLNonNull, item_type).of_type
        plan = (
            self._plan(object_type, field_details_list)
            if is_object_type(object_type)
            and self.get_stream_usage(field_details_list, path) is None
            else None
        )
        if plan is not None:
            items = items if isinstance(items, list | tuple) else list(items)
            rows = _complete_items(plan, nullable, items)
            if rows is not None:
                return rows
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    def _plan(self, object_type: GraphQLObjectType, field_details_list: Any) -> _Plan | None:
        """How to complete ``object_type`` under this selection with no resolver, or None.

        Kept per selection (graphql-core's collected fields are kept the same
        way): a list's items, and every list of the same field, share one.
        """
        plans = self.__dict__.setdefault("_plans", {})
        key = (object_type, id(field_details_list))
        if key not in plans:
            plans[key] = (field_details_list, self._make_plan(object_type, field_details_list))
        plan: _Plan | None = plans[key][1]
        return plan

    def _make_plan(self, object_type: GraphQLObjectType, field_details_list: Any) -> _Plan | None:
        if object_type.is_type_of is not None or self._wrapped_resolvers():
            return None
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(
            object_type, field_details_list
        )
        if new_defer_usages:
            return None
        columns: list[_Column] = []
        for response_name, details in grouped_field_set.items():
            name = details[0].node.name.value
            if name == "__typename":
                columns.append((response_name, _TYPENAME, "", None, False))
                continue
            field = object_type.fields.get(name)
            attribute: str | None = getattr(field and field.resolve, "attribute", None)
            if field is None or attribute is None:
                return None  # a resolver of its own
            non_null = is_non_null_type(field.type)
            kind = cast(GraphQLNonNull, field.type).of_type if non_null else field.type
            if is_leaf_type(kind):
                columns.append((response_name, _LEAF, attribute, kind, non_null))
                continue
            if any(d.node.directives for d in details):
                return None  # @stream on a list, say: graphql-core's to handle
            if is_object_type(kind):
                plan = self._plan(kind, details)
                if plan is None:
                    return None
                columns.append((response_name, _OBJECT, attribute, plan, non_null))
                continue
            if not is_list_type(kind):
                return None  # an interface or a union
            item = kind.of_type
            items_nullable = not is_non_null_type(item)
            item = item if items_nullable else item.of_type
            if is_leaf_type(item):
                columns.append(
                    (response_name, _LEAVES, attribute, (item, items_nullable), non_null)
                )
            elif is_object_type(item) and (plan := self._plan(item, details)) is not None:
                columns.append(
                    (response_name, _OBJECTS, attribute, (plan, items_nullable), non_null)
                )
            else:
                return None
        return _Plan(object_type.name, columns)

    def build_response(self, data: dict[str, Any] | None) -> Any:
        """The response, and the execution let go of as soon as the request is done.

        graphql-core's execution holds bound methods of itself (its async
        helpers), a reference cycle only the cyclic garbage collector frees.
        With 50 clients every request's execution, its variables, loaders and
        the HTTP request they name (64 objects) piled up in the oldest
        generation, for full collections of up to 100 ms. Nothing reads the
        helpers or the coerced variables once the response is built, so
        dropping both leaves no cycle: the execution goes when its request does.
        """
        response = super().build_response(data)
        self.variable_values = None  # type: ignore[assignment]
        self.async_helpers = None  # type: ignore[assignment]
        return response


_TYPENAME, _LEAF, _OBJECT, _LEAVES, _OBJECTS = range(5)
# (response key, kind, attribute, what completes the value, non-null)
_Column = tuple[str, int, str, Any, bool]


class _Plan:
    """How to complete an object whose selected fields are all plain data.

    Plain data: ``__typename``, or a field with no resolver of its own (an
    attribute) holding a leaf, a list of leaves, or an object or a list of
    objects that are plain data in turn. A hundred resolutions, a profile's
    identifiers: per object graphql-core collects its fields, makes a path
    per field and asks of each value whether it is awaitable, to end with
    the same dict of serialized attributes this builds. Anything that is
    not that simple (a null where the schema says non-null, a value that
    does not serialize, an iterable that is not a list) sends the whole
    object or list down the full path, so that errors and their paths are
    graphql-core's own.
    """

    __slots__ = ("columns", "type_name")

    def __init__(self, type_name: str, columns: list[_Column]) -> None:
        self.type_name = type_name
        self.columns = columns


def _complete_items(plan: _Plan, nullable: bool, items: list[Any] | tuple[Any, ...]) -> Any:
    """The list completed, or None where an item needs graphql-core's full path."""
    rows: list[Any] = []
    append = rows.append
    for index, item in enumerate(items):
        if index % 64 == 63:
            step_aside()
        if item is None:
            if not nullable:
                return None
            append(None)
            continue
        row = _complete(plan, item)
        if row is None:
            return None
        append(row)
    return rows


def _complete(plan: _Plan, source: Any) -> dict[str, Any] | None:
    row: dict[str, Any] = {}
    for key, kind, attribute, spec, non_null in plan.columns:
        if kind == _TYPENAME:
            row[key] = plan.type_name
            continue
        value = getattr(source, attribute)
        if value is None:
            if non_null:
                return None
            row[key] = None
        elif kind == _LEAF:
            serialized = _serialized(spec, value)
            if serialized is None:
                return None
            row[key] = serialized
        elif kind == _OBJECT:
            completed = _complete(spec, value)
            if completed is None:
                return None
            row[key] = completed
        else:
            if not isinstance(value, list | tuple):
                return None
            completing, items_nullable = spec
            out: list[Any] = []
            for item in value:
                if item is None:
                    if not items_nullable:
                        return None
                    out.append(None)
                    continue
                done = (
                    _serialized(completing, item)
                    if kind == _LEAVES
                    else _complete(completing, item)
                )
                if done is None:
                    return None
                out.append(done)
            row[key] = out
    return row


def _serialized(leaf: GraphQLLeafType, value: Any) -> Any:
    """``value`` serialized, or None where it does not (the full path says why)."""
    try:
        serialized = leaf.serialize(value)
    except Exception:
        return None
    return None if serialized is Undefined else serialized


def _coerce_flat_lists(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    raw: dict[str, Any],
) -> dict[str, list[Any]]:
    """The operation's list-of-flat-input-object variables that coerce plainly, coerced."""
    operation = _operation(document, operation_name)
    if operation is None or not raw:
        return {}
    coerced: dict[str, list[Any]] = {}
    for definition in operation.variable_definitions or ():
        value = raw.get(definition.variable.name.value)
        if type(value) is not list:
            continue
        signature = get_variable_signature(schema, definition)
        shape = None if isinstance(signature, Exception) else _flat_list_shape(signature.type)
        if shape is None:
            continue
        items = _flat_items(value, *shape)
        if items is not None:
            coerced[signature.name] = items
    return coerced


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


_FlatFields = tuple[tuple[str, bool], ...]  # (name, required) of each field, in schema order


def _flat_list_shape(kind: GraphQLInputType) -> tuple[bool, _FlatFields] | None:
    """For ``[T]``/``[T!]`` (nullable or not) of a flat input object T: (items nullable, fields).

    Flat: every field a ``String`` or ``String!`` with no default, no other
    name in Python, and the type building plain dicts (no ``out_type`` of
    its own), so that coercing it is checking each value is a string.
    """
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    if not isinstance(kind, GraphQLList):
        return None
    item = kind.of_type
    nullable = not isinstance(item, GraphQLNonNull)
    item = item if nullable else item.of_type
    if (
        not isinstance(item, GraphQLInputObjectType)
        or item.is_one_of
        or item.out_type is not GraphQLInputObjectType.out_type
    ):
        return None
    fields: list[tuple[str, bool]] = []
    for name, field in item.fields.items():
        required = isinstance(field.type, GraphQLNonNull)
        scalar = field.type.of_type if required else field.type
        if scalar is not GraphQLString or field.default_value is not Undefined or field.out_name:
            return None
        fields.append((name, required))
    return nullable, tuple(fields)


def _flat_items(values: list[Any], nullable: bool, fields: _FlatFields) -> list[Any] | None:
    """The items as graphql-core would coerce them, or None if any is not plainly valid."""
    items: list[Any] = []
    append = items.append
    for value in values:
        if value is None:
            if not nullable:
                return None
            append(None)
            continue
        if type(value) is not dict:
            return None
        item: dict[str, Any] = {}
        for name, required in fields:
            field = value.get(name, Undefined)
            if field is Undefined:
                if required:
                    return None
                continue
            if field is None:
                if required:
                    return None
            elif type(field) is not str:
                return None
            item[name] = field
        if len(item) != len(value):  # a name the type does not have
            return None
        append(item)
    return items
