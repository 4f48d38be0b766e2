"""How the schema executes a document: Strawberry's execution, made lighter on two counts.

- No reference cycles. graphql-core's execution context holds helpers bound to itself, so
  every request's execution state (about 80 objects) waited for the cyclic garbage
  collector, whose pauses were the latency tails (see app.gc_tuning). Helpers that reach
  the context through a weak reference break the cycle.
- Plain leaf fields in one step. Most fields of a page are plain attributes of a scalar or
  enum type (a page of 100 requests is 1,400 of them). For each, graphql-core builds a
  resolve info of 16 values, calls Strawberry's default resolver through three more calls,
  then walks the type's wrappers to coerce the value: three quarters of a page's time. A
  field with a plan (built once per schema) reads the attribute and coerces it directly;
  whatever the plan does not cover for certain (null for a non-null field, an error value,
  an awaitable, a value the type refuses, a resolve middleware) takes graphql-core's path,
  so results and errors are the same as without it (tests/test_execution.py).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql import (
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    is_leaf_type,
)
from graphql.pyutils import Undefined


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
    plans: ClassVar[LeafPlans] = {}
    for type_name, graphql_type in schema.type_map.items():
        if type_name.startswith("__") or not isinstance(graphql_type, GraphQLObjectType):
            continue
        for field_name, field in graphql_type.fields.items():
            definition = field.extensions.get("strawberry-definition")
            if definition is None or not getattr(field.resolve, "_is_default", False):
                continue
            nullable = not isinstance(field.type, GraphQLNonNull)
            named = field.type if nullable else field.type.of_type
            if is_leaf_type(named):
                plans[type_name, field_name] = LeafPlan(
                    definition.python_name, named.coerce_output_value, nullable
                )
    return plans


class ServiceExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, acyclic and with plain leaf fields in one step."""

    # Set by app.graphql.schema.build_schema on the subclass made for each schema.
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
        plan = self._plans.get((parent_type.name, field_details_list[0].node.name.value))
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
