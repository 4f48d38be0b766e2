"""The schema: domain Query and Mutation merged, federation, limits and caches."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from strawberry.federation import Schema
from strawberry.federation.schema import FederationAny
from strawberry.federation.schema_directives import Key
from strawberry.scalars import JSON
from strawberry.types import ExecutionContext, ExecutionResult, Info

from app import fast_paths
from app.config import Settings
from app.graphql.cost import QueryBudgets, QueryCostCheck
from app.graphql.documents import DocumentCache
from app.graphql.errors import coded_and_logged
from app.graphql.limits import document_limits
from app.graphql.mutations import Mutation
from app.graphql.queries import Query
from app.graphql.scalars import SafeJSON
from app.services.errors import FieldViolation, InvalidArgument
from graphql import GraphQLError

DOCUMENT_CACHE_SIZE = 1024


class BackInStockSchema(Schema):
    """The federation schema whose every error carries the contract's code."""

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        # Here rather than in an extension: parse errors skip extension hooks.
        result = await super().execute(*args, **kwargs)
        if result.errors:
            result.errors = coded_and_logged(result.errors)
        return result

    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """Strawberry's, for the representations that name an entity by its key; any
        other is that entity's INVALID_ARGUMENT (Strawberry's would fail on it)."""
        results: list[Any] = []
        for index, representation in enumerate(representations):
            problem = self._representation_problem(representation)
            if problem is None:
                results.extend(super().entities_resolver(info, [representation]))
            else:
                field = f"representations[{index}]"
                results.append(InvalidArgument([FieldViolation(field, problem)]))
        return results

    @cached_property
    def _entity_keys(self) -> dict[str, frozenset[str]]:
        """The key fields of each entity type, by type name (simple `@key`s only)."""
        keys: dict[str, frozenset[str]] = {}
        for name, type_ in self.schema_converter.type_map.items():
            for directive in getattr(type_.definition, "directives", None) or ():
                if isinstance(directive, Key):
                    keys[name] = frozenset(str(directive.fields).split())
        return keys

    def _representation_problem(self, representation: object) -> str | None:
        if not isinstance(representation, dict):
            return "must be an object with __typename and the entity's key"
        keys = self._entity_keys.get(representation.get("__typename"))  # type: ignore[arg-type]
        if keys is None:
            known = ", ".join(sorted(self._entity_keys))
            return f"__typename must name an entity of this subgraph ({known})"
        given = set(representation) - {"__typename"}
        if given != keys or not all(isinstance(representation[k], str) for k in keys):
            return (
                f"must carry exactly the key fields {', '.join(sorted(keys))} as text"
            )
        return None

    def process_errors(
        self,
        errors: list[GraphQLError],
        execution_context: ExecutionContext | None = None,
    ) -> None:
        """Nothing here: execute() logs each error once, knowing its code."""


def build_schema(settings: Settings | None = None) -> BackInStockSchema:
    """The schema; `settings` only sets limits, never the printed SDL."""
    settings = settings or Settings()
    budgets = QueryBudgets(
        keyed=settings.max_query_cost, anonymous=settings.max_anonymous_query_cost
    )
    documents = DocumentCache(
        max_tokens=settings.max_tokens,
        max_document_bytes=settings.max_document_bytes,
        rules=[document_limits(settings.max_query_depth, settings.max_aliases)],
        max_entries=DOCUMENT_CACHE_SIZE,
        max_bytes=settings.document_cache_bytes,
        checks=[QueryCostCheck(budgets)],
    )
    fast_paths.use_input_plans(settings.fast_paths)
    execution_context = (
        fast_paths.execution_context_for() if settings.fast_paths else None
    )
    schema = BackInStockSchema(
        query=Query,
        mutation=Mutation,
        execution_context_class=execution_context,
        extensions=[documents.extension],
        scalar_overrides={JSON: SafeJSON},
    )
    schema.documents = documents  # its accounting, for tests and operators
    if execution_context is not None and schema.config.default_resolver is getattr:
        execution_context.plans = fast_paths.leaf_plans(
            fast_paths.graphql_core_schema(schema)
        )
    return schema


def schema_sdl() -> str:
    """The text of schema.graphql."""
    return build_schema().as_str() + "\n"
