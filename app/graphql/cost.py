"""A query cost budget: the rows a request's pages and counts may touch, checked before any runs.

Each field that reads the database costs the rows it may read: a page its `first` (50 by
default), `totalCount` TOTAL_COUNT_COST (it may scan every match), a count by catalog
references COUNT_PER_REFERENCE per reference (as does a catalog item's count), an entity
or a request by id one row. A field's cost is multiplied by the sizes of the lists it is
inside (the rows of a page for what is selected on each row, the representations of
`_entities` for each entity's pages and counts), aliases and fragment spreads count every
time they appear.
A document's cost is worked out once, as a sum of terms weight x sizes, where a size is a
literal or a variable (read per request, so `first: $first` costs what the variables say).

A request over its budget (MAX_QUERY_COST with an API key, MAX_ANONYMOUS_QUERY_COST
without) is refused with QUERY_TOO_COMPLEX, its cost and budget in `extensions`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
)

from app.fast_paths import graphql_core_schema

if TYPE_CHECKING:
    from app.graphql.documents import ParsedDocument

TOTAL_COUNT_COST = 1000
COUNT_PER_REFERENCE = 20
REPORT_COST = 1000
ADDRESS_COST = 100
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
CONNECTION = "BackInStockNotificationRequestConnection"


@dataclass(frozen=True)
class Size:
    """How many items a field asks for: an argument's value (a literal or a variable),
    or the length of a list argument; `default` when absent, at most `maximum`."""

    argument: str
    literal: int | None = None
    variable: str | None = None
    default: int = 1
    maximum: int | None = None
    length: bool = False

    def of(self, variables: Mapping[str, Any]) -> int:
        value: Any = self.literal
        if self.variable is not None:
            value = variables.get(self.variable)
            if self.length:
                value = len(value) if isinstance(value, list) else None
        if not isinstance(value, int) or isinstance(value, bool):
            value = self.default
        counted = max(int(value), 1)  # even an empty page runs its query
        return counted if self.maximum is None else min(counted, self.maximum)


# The rows of the page being selected on, replaced by the page's own size on the way up.
PAGE = Size("page")


@dataclass(frozen=True)
class FieldCost:
    weight: int
    size: Size | None = None  # the field's cost and its selections' are per item
    page: bool = False  # a connection: only its rows (edges, nodes) are per item


# By (type, field). Fields not named cost nothing (they read what their parent read).
FIELD_COSTS: dict[tuple[str, str], FieldCost] = {
    ("Query", "backInStockNotificationRequests"): FieldCost(
        1, Size("first", default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE), page=True
    ),
    (CONNECTION, "totalCount"): FieldCost(TOTAL_COUNT_COST),
    ("Query", "backInStockNotificationRequestsCountByCatalogReferences"): FieldCost(
        COUNT_PER_REFERENCE, Size("catalogReferences", length=True)
    ),
    ("Query", "_entities"): FieldCost(1, Size("representations", length=True)),
    ("Query", "backInStockNotificationRequest"): FieldCost(1),
    ("Query", "node"): FieldCost(1),
    ("Query", "backInStockSettings"): FieldCost(1),
    ("Query", "catalogItem"): FieldCost(0),  # reads nothing; its fields do
    ("CatalogItem", "backInStockNotificationRequests"): FieldCost(
        1, Size("first", default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE), page=True
    ),
    ("CatalogItem", "backInStockNotificationRequestsCount"): FieldCost(
        COUNT_PER_REFERENCE
    ),
    ("CatalogItem", "backInStockCollectingRequests"): FieldCost(1),
    ("Mutation", "createBackInStockNotificationRequest"): FieldCost(1),
    ("Mutation", "deleteBackInStockNotificationRequest"): FieldCost(1),
    ("Mutation", "markAsNotificationSent"): FieldCost(1),
    ("Mutation", "reportItemsBackInStock"): FieldCost(REPORT_COST),
    ("Mutation", "startCollectingRequests"): FieldCost(1),
    ("Mutation", "stopCollectingRequests"): FieldCost(1),
    # Every request of one address (a shopper's few, a long history at most).
    ("Query", "exportBackInStockDataByEmail"): FieldCost(ADDRESS_COST),
    ("Mutation", "eraseBackInStockDataByEmail"): FieldCost(ADDRESS_COST),
}
# Lists whose items are the rows of the page they are on.
PAGE_ITEMS = {(CONNECTION, "edges"), (CONNECTION, "nodes")}

# A cost as a sum of terms: the product of the sizes (in a canonical order) -> weight.
Terms = dict[tuple[Size, ...], int]


def _add(total: Terms, terms: Terms, times: tuple[Size, ...] = ()) -> None:
    for sizes, weight in terms.items():
        if not weight:
            continue
        key = tuple(sorted((*sizes, *times), key=repr))
        total[key] = total.get(key, 0) + weight


def _replace_page(terms: Terms, page: Size) -> Terms:
    replaced: Terms = {}
    for sizes, weight in terms.items():
        _add(
            replaced, {tuple(page if size is PAGE else size for size in sizes): weight}
        )
    return replaced


def _sized(size: Size, node: FieldNode, defaults: Mapping[str, int]) -> Size:
    """`size` as this field asks for it: its literal, or the variable that says it."""
    value: ValueNode | None = next(
        (a.value for a in node.arguments or () if a.name.value == size.argument), None
    )
    if isinstance(value, VariableNode):
        name = value.name.value
        return Size(
            size.argument,
            variable=name,
            default=defaults.get(name, size.default),
            maximum=size.maximum,
            length=size.length,
        )
    if isinstance(value, IntValueNode):
        return Size(size.argument, literal=int(value.value), maximum=size.maximum)
    if isinstance(value, ListValueNode):
        return Size(size.argument, literal=len(value.values), maximum=size.maximum)
    return Size(size.argument, literal=None, default=size.default, maximum=size.maximum)


class _Planner:
    """Works out one operation's terms; each fragment once (spreads reuse its terms)."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d
            for d in document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }
        self.fragment_terms: dict[str, Terms] = {}
        self.defaults: dict[str, int] = {}

    def operation(self, operation: OperationDefinitionNode) -> Terms:
        self.defaults = {
            d.variable.name.value: self._default(d.default_value)
            for d in operation.variable_definitions or ()
            if d.default_value is not None
        }
        self.fragment_terms = {}  # sizes may name this operation's variable defaults
        root = self.schema.get_root_type(operation.operation)
        return self.selections(operation.selection_set, root) if root else {}

    @staticmethod
    def _default(value: ValueNode) -> int:
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, ListValueNode):
            return len(value.values)
        return 1

    def selections(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType
    ) -> Terms:
        total: Terms = {}
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                _add(total, self.field(selection, parent))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = (
                    self.schema.get_type(condition.name.value) if condition else parent
                )
                _add(total, self.selections(selection.selection_set, inner or parent))
            elif isinstance(selection, FragmentSpreadNode):
                _add(total, self.fragment(selection.name.value))
        return total

    def fragment(self, name: str) -> Terms:
        if name not in self.fragment_terms:
            self.fragment_terms[name] = {}  # validation refuses cycles; this ends any
            definition = self.fragments.get(name)
            if definition is not None:
                condition = self.schema.get_type(definition.type_condition.name.value)
                if condition is not None:
                    self.fragment_terms[name] = self.selections(
                        definition.selection_set, condition
                    )
        return self.fragment_terms[name]

    def field(self, node: FieldNode, parent: GraphQLNamedType) -> Terms:
        name = node.name.value
        definition = getattr(parent, "fields", {}).get(name)
        if name.startswith("__") or definition is None:
            return {}  # introspection reads no rows
        cost = FIELD_COSTS.get((parent.name, name), FieldCost(0))
        terms: Terms = {}
        if node.selection_set is not None:
            inner = self.selections(node.selection_set, get_named_type(definition.type))
            _add(terms, inner, (PAGE,) if (parent.name, name) in PAGE_ITEMS else ())
        if cost.size is None:
            _add(terms, {(): cost.weight})
            return terms
        size = _sized(cost.size, node, self.defaults)
        total: Terms = {}
        if cost.page:  # one page: its rows cost `first`, as does what each row selects
            _add(total, _replace_page(terms, size))
            _add(total, {(size,): cost.weight})
        else:  # a list: the field and what it selects, once per item
            _add(total, terms, (size,))
            _add(total, {(size,): cost.weight})
        return total


@dataclass(frozen=True)
class CostPlan:
    """A document's cost per operation name (None: its only operation)."""

    operations: dict[str | None, Terms]

    def cost(self, operation_name: str | None, variables: Mapping[str, Any]) -> int:
        if operation_name in self.operations:
            terms = [self.operations[operation_name]]
        else:  # unnamed or unknown: execution refuses the ambiguous; count the worst
            terms = list(self.operations.values())
        return max(
            (
                sum(
                    weight * math.prod(size.of(variables) for size in sizes)
                    for sizes, weight in operation.items()
                )
                for operation in terms
            ),
            default=0,
        )


def plan_cost(schema: GraphQLSchema, document: DocumentNode) -> CostPlan:
    planner = _Planner(schema, document)
    operations = [
        d for d in document.definitions if isinstance(d, OperationDefinitionNode)
    ]
    plans: dict[str | None, Terms] = {}
    for operation in operations:
        name = operation.name.value if operation.name else None
        plans[name] = planner.operation(operation)
    if len(operations) == 1:
        plans[None] = next(iter(plans.values()))
    return CostPlan(plans)


@dataclass(frozen=True)
class QueryBudgets:
    """The rows one request may touch: with an API key, and without one."""

    keyed: int
    anonymous: int

    def for_caller(self, context: Any) -> int:
        principal = getattr(context, "principal", None)
        keyed = (
            principal is not None
            and principal.api_key_id is not None
            and principal.authentication_error is None
        )
        return self.keyed if keyed else self.anonymous


# Costs are exact integers, as large as a document's fragments multiply them; what is
# reported is capped where JSON numbers stay exact for every client.
MAX_REPORTED_COST = 2**53 - 1


def too_complex(cost: int, budget: int) -> GraphQLError:
    cost = min(cost, MAX_REPORTED_COST)
    return GraphQLError(
        f"The query's cost ({cost}) exceeds the budget of {budget}: ask for fewer rows "
        "(a smaller `first`, fewer aliases, totalCount or references) per request.",
        extensions={"code": "QUERY_TOO_COMPLEX", "cost": cost, "budget": budget},
    )


class QueryCostCheck:
    """Refuses, before execution, a valid document whose cost is over the caller's budget.

    A check the document extension runs (app.graphql.documents), not an extension of its
    own: Strawberry sets up every extension's hooks on every request, which cost more than
    the check. The plan is made once per cached document.
    """

    def __init__(self, budgets: QueryBudgets) -> None:
        self.budgets = budgets

    def __call__(self, context: Any, parsed: ParsedDocument) -> GraphQLError | None:
        budget = self.budgets.for_caller(context.context)
        try:
            plan = parsed.derived_from(plan_cost, graphql_core_schema(context.schema))
            cost = plan.cost(context.operation_name, context.variables or {})
        except RecursionError:  # the limits keep documents shallower than this
            cost = budget + 1
        return too_complex(cost, budget) if cost > budget else None
