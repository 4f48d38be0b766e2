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
from app import fast_paths
from app.graphql.mutations import Mutation
from app.graphql.queries import Query
from app.graphql.webhooks import WebhookMutation, WebhookQuery
from graphql import GraphQLError

DOCUMENT_CACHE_SIZE = 1024
# Each area's root fields, merged into the schema's Query and Mutation.
ROOT_QUERY = merge_types("Query", (Query, WebhookQuery))
ROOT_MUTATION = merge_types("Mutation", (Mutation, WebhookMutation))


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
    fast_paths.use_input_plans(settings.fast_paths)
    execution_context = (
        fast_paths.execution_context_for() if settings.fast_paths else None
    )
    schema = BackInStockSchema(
        query=ROOT_QUERY,
        mutation=ROOT_MUTATION,
        execution_context_class=execution_context,
        extensions=[documents.extension],
    )
    if execution_context is not None and schema.config.default_resolver is getattr:
        execution_context.plans = fast_paths.leaf_plans(
            fast_paths.graphql_core_schema(schema)
        )
    return schema


def schema_sdl() -> str:
    """The text of schema.graphql."""
    return build_schema().as_str() + "\n"
