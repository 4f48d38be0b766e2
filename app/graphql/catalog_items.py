"""CatalogItem: the demand on a product, an entity other subgraphs reference by its key.

Owned here and keyed like a catalog reference without its options, so a products
subgraph can ask how many shoppers wait for its product. Resolving a reference reads
nothing: each field loads what it needs through the context's loaders, so every item of
one `_entities` call shares one query per field (the request connection excepted: one
query per item). `_entities` skips root fields' checks, so each field checks its own.
"""

from __future__ import annotations

import strawberry

from app.graphql.inputs import (
    BackInStockNotificationRequestFilter,
    BackInStockNotificationRequestSort,
    filter_to_domain,
    sort_to_domain,
)
from app.graphql.permissions import field_requiring
from app.graphql.types import BackInStockNotificationRequestConnection, read_page
from app.permissions import Permission
from app.services.catalog_items import (
    CatalogItemKey,
    check_catalog_item,
    restricted_to_item,
)
from app.services.request_query import RequestQuery, prepare_query
from app.services.rules import Violations

READ_REQUESTS = Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS
READ_SETTINGS = Permission.READ_BACK_IN_STOCK_NOTIFICATION_SETTINGS


def _item_requests_query(
    info: strawberry.Info,
    key: CatalogItemKey,
    filter: BackInStockNotificationRequestFilter | None,
    sort: list[BackInStockNotificationRequestSort] | None,
    first: int | None,
    after: str | None,
) -> RequestQuery:
    """The root connection's query (same checks, cursors and order), narrowed to the item."""
    query = prepare_query(
        keys=info.context.keys,
        filter=filter_to_domain(filter),
        sort=sort_to_domain(sort),
        first=first,
        after=after,
    )
    return restricted_to_item(query, key)


@strawberry.federation.type(
    keys=["appId catalogItemId"],
    description=(
        "A catalog item (a product, any options) and the back-in-stock demand on it. "
        "An entity: other subgraphs reference it by `appId` and `catalogItemId`."
    ),
)
class CatalogItem:
    app_id: str
    catalog_item_id: str

    @classmethod
    def for_key(cls, app_id: str, catalog_item_id: str) -> CatalogItem:
        """The item; INVALID_ARGUMENT for keys no catalog reference could have."""
        violations = Violations()
        key = check_catalog_item(app_id, catalog_item_id, violations)
        violations.raise_if_any()
        return cls(app_id=key.app_id, catalog_item_id=key.catalog_item_id)

    @classmethod
    def resolve_reference(cls, appId: str, catalogItemId: str) -> CatalogItem:
        # Named as a gateway sends the key fields: Strawberry passes them by name.
        return cls.for_key(appId, catalogItemId)

    @property
    def key(self) -> CatalogItemKey:
        return CatalogItemKey(self.app_id, self.catalog_item_id)

    @field_requiring(
        READ_REQUESTS,
        "How many requests for this item (any options) still wait: RECEIVED or "
        "PROCESSING.",
    )
    async def back_in_stock_notification_requests_count(
        self, info: strawberry.Info
    ) -> int:
        count: int = await info.context.waiting_count_loader.load(self.key)
        return count

    @field_requiring(
        READ_REQUESTS,
        "This item's notification requests (any options and status) matching "
        "`filter`, as `Query.backInStockNotificationRequests` gives them (same order, "
        "cursors and limits).",
    )
    async def back_in_stock_notification_requests(
        self,
        info: strawberry.Info,
        filter: BackInStockNotificationRequestFilter | None = None,
        sort: list[BackInStockNotificationRequestSort] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> BackInStockNotificationRequestConnection:
        query = _item_requests_query(info, self.key, filter, sort, first, after)
        page = await read_page(info, query)
        return BackInStockNotificationRequestConnection.from_page(page, query)

    @field_requiring(
        READ_SETTINGS,
        "Whether the service accepts new requests for this item: its app's "
        "collection state (false for an app never started).",
    )
    async def back_in_stock_collecting_requests(self, info: strawberry.Info) -> bool:
        collecting: bool = await info.context.collecting_loader.load(self.app_id)
        return collecting


@strawberry.type
class CatalogItemQuery:
    @field_requiring(
        READ_SETTINGS,
        "The catalog item with this key, as a gateway would resolve it: every item "
        "exists (with no requests, its counts are zero). Each of its fields needs its "
        "own permission.",
    )
    def catalog_item(self, app_id: str, catalog_item_id: str) -> CatalogItem:
        return CatalogItem.for_key(app_id, catalog_item_id)
