"""The schema: domain Query and Mutation merged, federation, limits and caches."""

from __future__ import annotations

from typing import Any

from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter
from strawberry.federation import Schema
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult

from app.config import Settings
from app.graphql.documents import DocumentCache
from app.graphql.errors import log_errors, with_codes
from app.graphql.execution import ServiceExecutionContext, leaf_plans
from app.graphql.demand import DemandQueries
from app.graphql.mutations import Mutation
from app.graphql.queries import Query as RequestQueries
from graphql import GraphQLError

DOCUMENT_CACHE_SIZE = 1024
# The root query type: each domain's fields, in this order.
Query = merge_types("Query", (RequestQueries, DemandQueries))


class BackInStockSchema(Schema):
    """The federation schema whose every error carries the contract's code."""

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        # Here rather than in an extension: parse errors skip extension hooks.
        result = await super().execute(*args, **kwargs)
        if result.errors:
            result.errors = with_codes(result.errors)
        return result

    def process_errors(
        self,
        errors: list[GraphQLError],
        execution_context: ExecutionContext | None = None,
    ) -> None:
        log_errors(errors)


def build_schema(settings: Settings | None = None) -> BackInStockSchema:
    """The schema; `settings` only sets limits, never the printed SDL."""
    settings = settings or Settings()
    documents = DocumentCache(
        max_tokens=settings.max_tokens,
        rules=[
            *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
        ],
        size=DOCUMENT_CACHE_SIZE,
    )
    # A context class of this schema's own, to hold the plans made from it.
    execution_context = type(
        "BackInStockExecutionContext", (ServiceExecutionContext,), {"plans": {}}
    )
    schema = BackInStockSchema(
        query=Query,
        mutation=Mutation,
        execution_context_class=execution_context,
        extensions=[documents.extension],
    )
    if schema.config.default_resolver is getattr:  # what the plans do
        execution_context.plans = leaf_plans(schema._schema)
    return schema


def schema_sdl() -> str:
    """The text of schema.graphql."""
    return build_schema().as_str() + "\n"
