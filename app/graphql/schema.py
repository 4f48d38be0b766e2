"""The schema: domain Query and Mutation merged, federation, limits and caches.

The printed schema depends on the configuration in one way: the fields visitors may not
use carry `@requiresScopes` for a Router (app.graphql.permissions), so each schema is
built for its ANONYMOUS_PERMISSIONS (and REQUIRES_SCOPES); schema.graphql is the default
configuration's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import aclosing
from typing import Any

from graphql import GraphQLError
from strawberry import Info
from strawberry.federation import Schema
from strawberry.federation.schema import FederationAny
from strawberry.scalars import JSON
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField
from strawberry.types.graphql import OperationType

from app import fast_paths
from app.config import Settings
from app.graphql.catalog_items import CatalogItemQuery
from app.graphql.cost import QueryBudgets, QueryCostCheck
from app.graphql.demand import DemandQueries
from app.graphql.documents import DocumentCache
from app.graphql.entities import check_representations
from app.graphql.errors import coded_and_logged
from app.graphql.limits import document_limits
from app.graphql.mutations import Mutation
from app.graphql.permissions import router_scoped, with_router_scopes
from app.graphql.privacy import PrivacyMutation, PrivacyQuery
from app.graphql.queries import Query
from app.graphql.scalars import SafeJSON
from app.graphql.subscriptions import Subscription
from app.graphql.webhooks import WebhookMutation, WebhookQuery
from app.permissions import Permission

# The root types: each domain area's fields.
RootQuery = merge_types(
    "Query", (Query, DemandQueries, CatalogItemQuery, PrivacyQuery, WebhookQuery)
)
RootMutation = merge_types("Mutation", (Mutation, PrivacyMutation, WebhookMutation))

DOCUMENT_CACHE_SIZE = 1024


class BackInStockSchema(Schema):
    """The federation schema whose every error carries the contract's code."""

    def __init__(
        self, *args: Any, scoped_permissions: Collection[Permission], **kwargs: Any
    ) -> None:
        # The permissions whose fields this schema publishes with @requiresScopes.
        self.scoped_permissions = frozenset(scoped_permissions)
        # Its document cache (set by build_schema), for its accounting.
        self.documents: DocumentCache | None = None
        super().__init__(*args, **kwargs)

    def get_fields(
        self, type_definition: StrawberryObjectDefinition
    ) -> list[StrawberryField]:
        # Strawberry's hook for a schema's own view of each type's fields.
        return [
            with_router_scopes(field, self.scoped_permissions)
            for field in type_definition.fields
        ]

    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """Federation's `_entities`, refusing malformed or too many representations."""
        earlier = info.context.entity_representations
        check_representations(representations, earlier)
        info.context.entity_representations = earlier + len(representations)
        return super().entities_resolver(info, representations)

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        # Subscriptions run on the WebSocket (`subscribe`): executed once, over HTTP,
        # their event stream would be resolved as a value. Refused instead.
        allowed = kwargs.get("allowed_operation_types")
        kwargs["allowed_operation_types"] = ONCE_OPERATIONS.intersection(
            ONCE_OPERATIONS if allowed is None else allowed
        )
        # Here rather than in an extension: parse errors skip extension hooks.
        result = await super().execute(*args, **kwargs)
        if result.errors:
            result.errors = coded_and_logged(result.errors)
        return result

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        # Subscriptions' results (and their errors) come this way, not through execute.
        return _with_coded_errors(await super().stream(*args, **kwargs))

    def process_errors(
        self,
        errors: list[GraphQLError],
        execution_context: ExecutionContext | None = None,
    ) -> None:
        """Nothing here: execute() logs each error once, knowing its code."""


async def _with_coded_errors(results: Any) -> AsyncIterator[Any]:
    async with aclosing(results):
        async for result in results:
            if isinstance(result, ExecutionResult) and result.errors:
                result.errors = coded_and_logged(result.errors)
            yield result


# What runs over HTTP: one result per operation.
ONCE_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})


def build_schema(settings: Settings | None = None) -> BackInStockSchema:
    """The schema of a configuration: its limits, and its visitors' permissions, which
    decide the fields that carry `@requiresScopes`."""
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
    fast_paths.use_http_shortcuts(settings.fast_paths)
    execution_context = (
        fast_paths.execution_context_for() if settings.fast_paths else None
    )
    schema = BackInStockSchema(
        query=RootQuery,
        mutation=RootMutation,
        subscription=Subscription,
        scoped_permissions=router_scoped(
            settings.anonymous_permission_set, requires_scopes=settings.requires_scopes
        ),
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


def schema_sdl(settings: Settings | None = None) -> str:
    """The printed schema of a configuration; by default that of the default
    configuration, whatever the environment says: the text of schema.graphql."""
    settings = settings or Settings(
        _env_file=None, anonymous_permissions=None, requires_scopes=True
    )
    return build_schema(settings).as_str() + "\n"
