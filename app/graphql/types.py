"""Output types, each built from a service's record with `from_record()`."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON
from strawberry.types.nodes import SelectedField, Selection

from app.graphql.permissions import check_permission, field_requiring
from app.models import RequestStatus
from app.permissions import Permission
from app.services.request_query import (
    Page,
    RequestQuery,
    count_requests,
    query_requests,
)
from app.services.request_view import RequestRecord
from app.services.rules import CatalogReference as DomainCatalogReference
from app.services.rules import parse_id
from app.services.settings import CollectionStateRecord

READ_REQUESTS = Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS
_STATUSES = {status.value: status for status in RequestStatus}  # faster than the call

BackInStockNotificationRequestStatus = strawberry.enum(
    RequestStatus, name="BackInStockNotificationRequestStatus"
)


@strawberry.type
class CatalogReference:
    app_id: str
    catalog_item_id: str
    options: JSON | None

    @classmethod
    def from_domain(cls, reference: DomainCatalogReference) -> CatalogReference:
        return cls(
            app_id=reference.app_id,
            catalog_item_id=reference.catalog_item_id,
            options=JSON(reference.options),
        )


@strawberry.type(description="The item details given when the request was created.")
class BackInStockItemDetails:
    name: str
    price: str = strawberry.field(description='Decimal string, as given, e.g. "19.99".')
    image: str | None


@strawberry.interface(
    description="An object with a globally unique id: Relay refetches it with `node(id:)`."
)
class Node:
    id: strawberry.ID


@strawberry.federation.type(keys=["id"])
class BackInStockNotificationRequest(Node):
    catalog_reference: CatalogReference
    email: str
    contact_id: strawberry.ID
    status: BackInStockNotificationRequestStatus  # type: ignore[valid-type]
    auto_notified: bool | None = strawberry.field(
        description=(
            "Null until a notification was sent; true when sent by the service, "
            "false when marked sent by hand."
        )
    )
    created_date: datetime
    item_url: str | None
    item_details: BackInStockItemDetails
    confirmed: bool = strawberry.field(
        description=(
            "False while the shopper has not confirmed the email address "
            "(REQUIRE_EMAIL_CONFIRMATION): such a request is never notified."
        )
    )
    attempts: strawberry.Private[int]
    delivery_error: strawberry.Private[str | None]

    @field_requiring(
        READ_REQUESTS, "Delivery attempts made for the latest report of this request."
    )
    def delivery_attempts(self) -> int:
        return self.attempts

    @field_requiring(
        READ_REQUESTS, "Why the latest failed delivery attempt failed, or null."
    )
    def last_delivery_error(self) -> str | None:
        return self.delivery_error

    @classmethod
    def from_record(cls, row: RequestRecord) -> BackInStockNotificationRequest:
        return cls(
            id=strawberry.ID(row.id),
            catalog_reference=CatalogReference(
                app_id=row.app_id,
                catalog_item_id=row.catalog_item_id,
                options=JSON(row.options),
            ),
            email=row.email,
            contact_id=strawberry.ID(row.contact_id),
            status=_STATUSES[row.status],
            auto_notified=row.auto_notified,
            created_date=row.created_date,
            item_url=row.item_url,
            item_details=BackInStockItemDetails(
                name=row.item_name, price=row.item_price, image=row.item_image
            ),
            confirmed=row.confirmed,
            attempts=row.delivery_attempts,
            delivery_error=row.last_delivery_error,
        )

    @classmethod
    async def resolve_reference(
        cls, info: strawberry.Info, id: strawberry.ID
    ) -> BackInStockNotificationRequest | None:
        # `_entities` bypasses root-field permissions, so the entity checks its own.
        check_permission(info, Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS)
        row = await info.context.request_loader.load(parse_id(str(id)))
        return cls.from_record(row) if row is not None else None


@strawberry.type
class BackInStockNotificationRequestsCount:
    catalog_reference: CatalogReference
    count: int


@strawberry.type
class BackInStockCollectionState:
    app_id: str
    collecting_requests: bool


@strawberry.type
class BackInStockSettings:
    collection_states: list[BackInStockCollectionState]

    @classmethod
    def from_records(cls, states: list[CollectionStateRecord]) -> BackInStockSettings:
        return cls(
            collection_states=[
                BackInStockCollectionState(
                    app_id=state.app_id, collecting_requests=state.collecting_requests
                )
                for state in states
            ]
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class BackInStockNotificationRequestEdge:
    cursor: str
    node: BackInStockNotificationRequest


@strawberry.type
class BackInStockNotificationRequestConnection:
    edges: list[BackInStockNotificationRequestEdge]
    page_info: PageInfo
    query: strawberry.Private[RequestQuery]

    @strawberry.field
    def nodes(self) -> list[BackInStockNotificationRequest]:
        return [edge.node for edge in self.edges]

    @strawberry.field(
        description="Every request the filter matches (counted only when asked)."
    )
    async def total_count(self, info: strawberry.Info) -> int:
        return await count_requests(info.context.store, self.query)

    @classmethod
    def from_page(
        cls, page: Page, query: RequestQuery
    ) -> BackInStockNotificationRequestConnection:
        edges = [
            BackInStockNotificationRequestEdge(
                cursor=cursor, node=BackInStockNotificationRequest.from_record(row)
            )
            for row, cursor in zip(page.rows, page.cursors, strict=True)
        ]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.cursors[0] if page.cursors else None,
                end_cursor=page.cursors[-1] if page.cursors else None,
            ),
            query=query,
        )


_TOTAL_ONLY = frozenset({"totalCount", "__typename"})


def _only_total(selections: list[Selection]) -> bool:
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name not in _TOTAL_ONLY:
                return False
        elif not _only_total(selection.selections):  # a fragment
            return False
    return True


async def read_page(info: strawberry.Info, query: RequestQuery) -> Page:
    """The connection's page: none is read when it is asked for `totalCount` alone."""
    if all(_only_total(field.selections) for field in info.selected_fields):
        after = query.after is not None
        return Page([], [], has_next_page=False, has_previous_page=after)
    return await query_requests(info.context.store, query)


@strawberry.type
class ReportItemsBackInStockResult:
    queued_count: int = strawberry.field(
        description=(
            "How many requests this call moved to PROCESSING "
            "(each gets exactly one notification)."
        )
    )
    remaining_count: int = strawberry.field(
        description=(
            "How many of the selected requests still wait to be reported (RECEIVED or "
            "FAILED) after this call: 0 without availableQuantity."
        )
    )
