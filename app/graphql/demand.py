"""The demand a merchant can see: items ranked by waiting requests, requests per day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry

from app.graphql.permissions import field_requiring
from app.graphql.types import PageInfo
from app.permissions import Permission
from app.services.demand_query import (
    DayStats,
    DemandPage,
    DemandQuery,
    ItemDemand,
    count_demand,
    demand_page,
    prepare_demand_query,
    request_stats,
)

READ_REQUESTS = Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS


@strawberry.type(
    description="One catalog item (every options of it together) and its requests per "
    "status. Waiting means not emailed yet: RECEIVED, PROCESSING or FAILED (a FAILED "
    "request is retried by the next report)."
)
class BackInStockItemDemand:
    app_id: str
    catalog_item_id: str
    received_count: int
    processing_count: int
    notification_sent_count: int
    failed_count: int
    waiting_count: int = strawberry.field(
        description="receivedCount + processingCount + failedCount."
    )
    oldest_waiting_date: datetime | None = strawberry.field(
        description="Creation date of the oldest waiting request; null when none waits."
    )
    newest_waiting_date: datetime | None = strawberry.field(
        description="Creation date of the newest waiting request; null when none waits."
    )

    @classmethod
    def from_record(cls, row: ItemDemand) -> BackInStockItemDemand:
        return cls(**row._asdict())


@strawberry.type
class BackInStockItemDemandEdge:
    cursor: str
    node: BackInStockItemDemand


@strawberry.type
class BackInStockItemDemandConnection:
    edges: list[BackInStockItemDemandEdge]
    page_info: PageInfo
    query: strawberry.Private[DemandQuery]

    @strawberry.field
    def nodes(self) -> list[BackInStockItemDemand]:
        return [edge.node for edge in self.edges]

    @strawberry.field(
        description="Items with waiting requests (counted only when asked)."
    )
    async def total_count(self, info: strawberry.Info) -> int:
        return await count_demand(info.context.store, self.query)

    @classmethod
    def from_page(
        cls, page: DemandPage, query: DemandQuery
    ) -> BackInStockItemDemandConnection:
        return cls(
            edges=[
                BackInStockItemDemandEdge(
                    cursor=cursor, node=BackInStockItemDemand.from_record(row)
                )
                for row, cursor in zip(page.rows, page.cursors, strict=True)
            ],
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.cursors[0] if page.cursors else None,
                end_cursor=page.cursors[-1] if page.cursors else None,
            ),
            query=query,
        )


@strawberry.type(description="Requests created, notified and failed on one UTC day.")
class BackInStockRequestDayStats:
    day: date
    created_count: int
    notified_count: int = strawberry.field(
        description="Requests that became NOTIFICATION_SENT that day (emailed by the "
        "service, or marked sent by hand)."
    )
    failed_count: int = strawberry.field(
        description="Requests that became FAILED that day (delivery gave up)."
    )

    @classmethod
    def from_record(cls, row: DayStats) -> BackInStockRequestDayStats:
        return cls(**row._asdict())


@strawberry.type
class BackInStockRequestStats:
    days: list[BackInStockRequestDayStats] = strawberry.field(
        description="Every day of the range, oldest first, zeros included."
    )

    @strawberry.field(description="Requests created over the range.")
    def created_count(self) -> int:
        return sum(day.created_count for day in self.days)

    @strawberry.field(description="Requests notified over the range.")
    def notified_count(self) -> int:
        return sum(day.notified_count for day in self.days)

    @strawberry.field(description="Requests failed over the range.")
    def failed_count(self) -> int:
        return sum(day.failed_count for day in self.days)


@strawberry.type
class DemandQueries:
    @field_requiring(
        READ_REQUESTS,
        "Catalog items ranked by waiting requests (RECEIVED, PROCESSING or FAILED), "
        "most first, ties by appId then catalogItemId (descending); for one app when "
        "`appId` is given. A Relay connection: `first` defaults to 50, at most 100.",
    )
    async def back_in_stock_demand(
        self,
        info: strawberry.Info,
        app_id: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> BackInStockItemDemandConnection:
        query = prepare_demand_query(app_id=app_id, first=first, after=after)
        page = await demand_page(info.context.store, query)
        return BackInStockItemDemandConnection.from_page(page, query)

    @field_requiring(
        READ_REQUESTS,
        "Per UTC day from the day of `from` to the day of `to` (at most 366 days), the "
        "requests created, notified and failed; for one app when `appId` is given.",
    )
    async def back_in_stock_request_stats(
        self,
        info: strawberry.Info,
        app_id: str | None = None,
        *,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> BackInStockRequestStats:
        days = await request_stats(
            info.context.store, app_id=app_id, start=from_, end=to
        )
        return BackInStockRequestStats(
            days=[BackInStockRequestDayStats.from_record(day) for day in days]
        )
