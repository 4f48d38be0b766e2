"""Query fields: a few lines each, parse, call a service, map the result."""

from __future__ import annotations

import strawberry

from app.graphql.inputs import (
    BackInStockNotificationRequestFilter,
    BackInStockNotificationRequestSort,
    CatalogReferenceInput,
    filter_to_domain,
    sort_to_domain,
)
from app.graphql.permissions import field_requiring
from app.graphql.types import (
    BackInStockNotificationRequest,
    BackInStockNotificationRequestConnection,
    BackInStockNotificationRequestsCount,
    BackInStockSettings,
    CatalogReference,
    Node,
    read_page,
)
from app.permissions import Permission
from app.services import requests as request_service
from app.services import settings as settings_service
from app.services.request_query import prepare_query

READ_REQUESTS = Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS
READ_SETTINGS = Permission.READ_BACK_IN_STOCK_NOTIFICATION_SETTINGS


async def _request_by_id(
    info: strawberry.Info, id: strawberry.ID
) -> BackInStockNotificationRequest | None:
    found = await request_service.get_request(info.context.store, id=id)
    return BackInStockNotificationRequest.from_record(found) if found else None


@strawberry.type
class Query:
    @field_requiring(READ_REQUESTS, "The notification request with this id, or null.")
    async def back_in_stock_notification_request(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> BackInStockNotificationRequest | None:
        return await _request_by_id(info, id)

    @field_requiring(
        READ_REQUESTS,
        "The object with this id, or null: Relay's refetch entry point. Every "
        "notification request is a Node.",
    )
    async def node(self, info: strawberry.Info, id: strawberry.ID) -> Node | None:
        # Every Node is a request, so this is the request lookup under Relay's name.
        return await _request_by_id(info, id)

    @field_requiring(
        READ_REQUESTS,
        "Notification requests matching `filter`, in `sort` order (default: newest "
        "first), as a Relay connection. `first` defaults to 50, at most 100.",
    )
    async def back_in_stock_notification_requests(
        self,
        info: strawberry.Info,
        filter: BackInStockNotificationRequestFilter | None = None,
        sort: list[BackInStockNotificationRequestSort] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> BackInStockNotificationRequestConnection:
        query = prepare_query(
            keys=info.context.keys,
            filter=filter_to_domain(filter),
            sort=sort_to_domain(sort),
            first=first,
            after=after,
        )
        page = await read_page(info, query)
        return BackInStockNotificationRequestConnection.from_page(page, query)

    @field_requiring(
        READ_REQUESTS,
        "How many requests (any status) each of 1 to 100 catalog references has, "
        "in the given order.",
    )
    async def back_in_stock_notification_requests_count_by_catalog_references(
        self, info: strawberry.Info, catalog_references: list[CatalogReferenceInput]
    ) -> list[BackInStockNotificationRequestsCount]:
        references = [reference.to_domain() for reference in catalog_references]
        counts = await request_service.count_by_catalog_references(
            info.context.store, references=references
        )
        return [
            BackInStockNotificationRequestsCount(
                catalog_reference=CatalogReference.from_domain(reference), count=count
            )
            for reference, count in counts
        ]

    @field_requiring(
        READ_SETTINGS, "The collection state of every app ever started or stopped."
    )
    async def back_in_stock_settings(
        self, info: strawberry.Info
    ) -> BackInStockSettings:
        states = await settings_service.list_collection_states(info.context.store)
        return BackInStockSettings.from_records(states)
