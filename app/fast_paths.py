"""Every use of a library's private internals, in one place, behind `FAST_PATHS`.

The service is fast partly because three libraries are driven below their public APIs:

- SQLAlchemy: statements compiled once and run on a raw sqlite3 cursor or asyncpg pool
  (`StatementCompiler`), without SQLAlchemy's per-execution machinery.
- graphql-core and Strawberry: an execution context that resolves plain leaf fields in one
  step and leaves no reference cycles (`LeafFieldExecutionContext`).
- Strawberry: input types built by a plan made once (`built_once`), and two checks of
  its HTTP view made cheap (`use_http_shortcuts`).

Each was measured (bench/RESULTS.md) and each is tested against the public path it
replaces: the whole suite runs with `FAST_PATHS=false` too (.ci/run), where none of this
module is used. The pins in pyproject.toml name the minor releases these were written
against; an upgrade of SQLAlchemy, graphql-core or Strawberry must re-run both suites.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, TypeVar

from graphql import (
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    is_leaf_type,
)
from graphql.pyutils import Undefined
from sqlalchemy.engine import Dialect
from sqlalchemy.util import LRUCache
from strawberry.relay import GlobalID
from strawberry.resolvers import is_default_resolver
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryOptional,
    StrawberryType,
    has_object_definition,
)

T = TypeVar("T")


# ------------------------------------------------------------------------------ SQLAlchemy


class StatementCompiler:
    """Core statements turned into SQL and positional arguments for a raw DB-API cursor.

    The columns' own bind processors convert the values, so the driver receives what
    SQLAlchemy would send it, without SQLAlchemy's per-execution machinery (about 0.2 ms
    a statement: as much as SQLite's own work for an insert that maintains a dozen
    indexes). Private: `_compile_w_cache`, `_process_parameters_for_postcompile`,
    `_bind_processors`.
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._compiled: dict[Any, Any] = {}  # by reusable statement
        # Statements built per call, by the shape SQLAlchemy's cache key names.
        self._shaped: LRUCache[Any, Any] = LRUCache(256)
        # The SQL and arguments of a built statement run again (one kept for a query that
        # comes again: app/services/built_statements.py), for as long as it lives.
        self._prepared: weakref.WeakKeyDictionary[Any, tuple[str, list[Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def _compiled_once(self, statement: Any) -> Any:
        compiled = self._compiled.get(statement)
        if compiled is None:
            if len(self._compiled) > 256:
                self._compiled.clear()
            compiled = self._compiled[statement] = statement.compile(
                dialect=self.dialect
            )
        return compiled

    def prepare(
        self, statement: Any, values: dict[str, Any] | None
    ) -> tuple[str, list[Any]]:
        """The SQL and its positional arguments.

        With `values`, `statement` is a reusable one (bind parameters, no expanding IN
        lists) and is compiled once. An INSERT is compiled with all its columns, so `values`
        must give every one (defaults are not applied here): a missing one is an error,
        never a silent NULL. Without `values`, `statement` was built for this call (a page:
        its filter's values are in it), and is compiled once per shape, as SQLAlchemy's
        own execution does: the cache key names the shape and carries the values; the
        same statement object run again reuses its SQL and arguments (not to be changed).
        """
        if values is None:
            prepared = self._prepared.get(statement)
            if prepared is None:
                prepared = self._prepared[statement] = self._prepare(statement, None)
            return prepared
        return self._prepare(statement, values)

    def _prepare(
        self, statement: Any, values: dict[str, Any] | None
    ) -> tuple[str, list[Any]]:
        if values is not None:
            compiled = self._compiled_once(statement)
            params = compiled.construct_params(values)
            names: Sequence[str] = compiled.positiontup or ()
            expanded: dict[str, Any] = {}
            sql = compiled.string
        else:
            compiled, extracted, *_ = statement._compile_w_cache(
                self.dialect,
                compiled_cache=self._shaped,
                column_keys=[],
                for_executemany=False,
                schema_translate_map=None,
            )
            state = compiled._process_parameters_for_postcompile(
                compiled.construct_params(
                    extracted_parameters=extracted,
                    escape_names=False,
                    _no_postcompile=True,
                )
            )
            params, names, expanded, sql = (
                state.parameters,
                state.positiontup or (),
                state.processors,  # those of the values an IN list expanded into
                state.statement,
            )
        binds = compiled._bind_processors  # the columns' own bind conversions
        arguments = []
        for name in names:
            process = expanded.get(name) or binds.get(name)
            value = params[name]
            arguments.append(process(value) if process is not None else value)
        return sql, arguments


# ----------------------------------------------------------------- Strawberry input types

Convert = Callable[[Any, Any], Any]
_PLANNED: list[Any] = []  # every input type declared with @built_once


def _converter(type_: Any) -> Convert | None:
    """How to turn an input value of `type_` into its Python value; None: as it is.

    Scalars and enums arrive from graphql-core already parsed. Anything this does not know
    goes through Strawberry's own conversion.
    """
    if isinstance(type_, StrawberryOptional):
        return _converter(type_.of_type)
    if isinstance(type_, StrawberryList):
        item = _converter(type_.of_type)
        if item is None:
            return lambda value, context: list(value)
        return lambda value, context: [
            None if element is None else item(element, context) for element in value
        ]
    if has_object_definition(type_) and type_.__strawberry_definition__.from_input:
        build = type_.__strawberry_definition__.from_input
        return lambda value, context: build(type_, value, context)
    if (
        isinstance(type_, StrawberryType)
        or type_ is GlobalID
        or has_object_definition(type_)
    ):
        return lambda value, context: context.convert(value, type_)
    return None


def _input_plan(definition: Any) -> Callable[[Any, Mapping[str, Any], Any], Any]:
    """A `from_input` hook building the type by a plan made on first use (when every type
    the fields refer to is known)."""
    plan: list[tuple[str, str, Convert | None]] = []
    required = [
        field.python_name
        for field in definition.fields
        if field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    ]

    def build(type_: Any, value: Mapping[str, Any], context: Any) -> Any:
        if not plan:
            names = context.config.name_converter
            plan.extend(
                (
                    names.from_field(field),
                    field.python_name,
                    _converter(field.resolve_type(type_definition=definition)),
                )
                for field in definition.fields
            )
        arguments: dict[str, Any] = dict.fromkeys(required)
        for name, python_name, convert in plan:
            if name in value:
                given = value[name]
                arguments[python_name] = (
                    given
                    if convert is None or given is None
                    else convert(given, context)
                )
        return type_(**arguments)

    return build


def built_once(cls: type[T]) -> type[T]:
    """Mark an input type to be built by a plan made once (see `use_input_plans`).

    Strawberry's own conversion derives every field's GraphQL name and type again for each
    value: a tenth of a create's time. Private: the definition's `from_input` hook.
    """
    _PLANNED.append(cls)
    return cls


def use_input_plans(enabled: bool) -> None:
    """Install (or remove) the plans of every @built_once input type."""
    for cls in _PLANNED:
        definition = cls.__strawberry_definition__
        definition.from_input = _input_plan(definition) if enabled else None


# ------------------------------------------------------ graphql-core and Strawberry execution


class LeafPlan(NamedTuple):
    """How to resolve one plain leaf field: the attribute, and the type's coercion."""

    attribute: str
    coerce: Callable[[Any], Any]
    nullable: bool


# By (object type name, field name); None for a field without a plan.
LeafPlans = dict[tuple[str, str], LeafPlan]


def leaf_plans(schema: GraphQLSchema) -> LeafPlans:
    """A plan for every field that Strawberry resolves by reading an attribute (no resolver,
    no field extension) and whose type is a scalar or an enum."""
    plans: LeafPlans = {}
    for type_name, graphql_type in schema.type_map.items():
        if type_name.startswith("__") or not isinstance(
            graphql_type, GraphQLObjectType
        ):
            continue
        for field_name, field in graphql_type.fields.items():
            definition = field.extensions.get("strawberry-definition")
            if definition is None or not is_default_resolver(field.resolve):
                continue
            nullable = not isinstance(field.type, GraphQLNonNull)
            named = field.type if nullable else field.type.of_type
            if is_leaf_type(named):
                plans[type_name, field_name] = LeafPlan(
                    definition.python_name, named.coerce_output_value, nullable
                )
    return plans


class LeafFieldExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, acyclic and with plain leaf fields in one step.

    - No reference cycles. graphql-core's execution context holds helpers bound to itself,
      so every request's execution state (about 80 objects) waited for the cyclic garbage
      collector, whose pauses were the latency tails (see app.gc_tuning). Helpers that
      reach the context through a weak reference break the cycle. Private:
      `async_helpers`.
    - Plain leaf fields in one step. A page of 100 requests is 1,400 plain leaf fields;
      for each, graphql-core builds a resolve info of 16 values, calls Strawberry's default
      resolver through three more calls, then coerces the value: three quarters of a
      page's time. A field with a plan reads the attribute and coerces it directly;
      whatever the plan does not cover for certain (null for a non-null field, an error
      value, an awaitable, a value the type refuses, a resolve middleware) takes
      graphql-core's path, so results and errors are the same (tests/test_execution.py).
      Private: `execute_field`.
    """

    # Set on the subclass made for each schema (see `execution_context_for`).
    plans: ClassVar[LeafPlans] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        context = weakref.ref(self)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=lambda values: context().gather_async_work(values),  # type: ignore[union-attr]
            track=lambda values: context().track_async_work(values),  # type: ignore[union-attr]
        )
        # A resolve middleware (an extension's resolve hook) must see every field.
        manager = self.middleware_manager
        self._plans = self.plans if manager is None or not manager.middlewares else {}

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plans.get(
            (parent_type.name, field_details_list[0].node.name.value)
        )
        if plan is not None:
            value = getattr(source, plan.attribute, Undefined)
            if value is None:
                if plan.nullable:
                    return None
            elif not (
                value is Undefined
                or isinstance(value, Exception)
                or self.is_awaitable(value)
            ):
                try:
                    coerced = plan.coerce(value)
                except Exception:  # noqa: BLE001 - graphql-core's path reports it
                    coerced = None
                if coerced is not None and coerced is not Undefined:
                    return coerced
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )


def execution_context_for() -> type[LeafFieldExecutionContext]:
    """A context class of one schema's own, to hold the plans made from it."""
    return type(
        "BackInStockExecutionContext", (LeafFieldExecutionContext,), {"plans": {}}
    )


def graphql_core_schema(schema: Any) -> GraphQLSchema:
    """The graphql-core schema of a Strawberry schema. Private: `Schema._schema`."""
    return schema._schema  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- Strawberry's HTTP view

_VIEW_GLOBALS = ("parse_content_type", "SubscriptionExecutionResult")
_ORIGINAL_VIEW_GLOBALS: dict[str, Any] = {}


@functools.lru_cache(maxsize=64)
def _content_type_parts(content_type: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    mime_type, params = _ORIGINAL_VIEW_GLOBALS["parse_content_type"](content_type)
    return mime_type, tuple(params.items())


def _parse_content_type(content_type: str) -> tuple[str, dict[str, str]]:
    """Strawberry's parse, once per header value (clients send the same few)."""
    mime_type, params = _content_type_parts(content_type)
    return mime_type, dict(params)


def use_http_shortcuts(enabled: bool) -> None:
    """Two checks Strawberry's view makes on every request, made cheap (or restored).

    - The Content-Type header is parsed by building an `email.message.Message`: here once
      per distinct value.
    - Whether a result streams is an `isinstance` of a runtime-checkable Protocol, which
      inspects the result's attributes each time: here of `AsyncIterator`, whose check
      (the same two methods) is cached per type.

    Together about 5 % of a get by id. Private: the module globals of
    `strawberry.http.async_base_view`.
    """
    from strawberry.http import async_base_view as view

    if not _ORIGINAL_VIEW_GLOBALS:
        _ORIGINAL_VIEW_GLOBALS.update(
            {name: getattr(view, name) for name in _VIEW_GLOBALS}
        )
    shortcuts = {
        "parse_content_type": _parse_content_type,
        "SubscriptionExecutionResult": collections.abc.AsyncIterator,
    }
    for name in _VIEW_GLOBALS:
        setattr(
            view, name, shortcuts[name] if enabled else _ORIGINAL_VIEW_GLOBALS[name]
        )
