"""The GraphQL documents the tests send, and small helpers to send them.

Every document of the service's API that a test file uses is a module-level constant here,
named after what it asks; add new ones at the end of the file. (Documents of a toy schema
built inside a test stay in that test file.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.conftest import GraphQLClient

APP_ID = "stores"
ITEM = {"name": "Blue shoe", "price": "24.50", "image": "https://img.example/shoe.png"}


def reference(
    item_id: str = "shoe-1", options: Any = None, app_id: str = APP_ID
) -> dict[str, Any]:
    ref: dict[str, Any] = {"appId": app_id, "catalogItemId": item_id}
    if options is not None:
        ref["options"] = options
    return ref


def new_request(
    email: str = "shopper@example.com",
    item_id: str = "shoe-1",
    options: Any = None,
    item_url: str | None = "https://shop.example/shoe-1",
    app_id: str = APP_ID,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "catalogReference": reference(item_id, options, app_id),
        "email": email,
    }
    if item_url is not None:
        request["itemUrl"] = item_url
    return {"request": request, "itemDetails": dict(ITEM)}


async def start_collecting(gql: GraphQLClient, key: str, app_id: str = APP_ID) -> None:
    result = await gql(START_COLLECTING, {"appId": app_id}, key=key)
    assert result.errors == [], result.errors


async def create(
    gql: GraphQLClient, key: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Create a request as a visitor (or with `key`) and return it."""
    result = await gql(CREATE_REQUEST, new_request(**kwargs), key=key)
    assert result.errors == [], result.errors
    created: dict[str, Any] = result.data["createBackInStockNotificationRequest"]
    return created


# --------------------------------------------------------------------------- documents

REQUEST_FIELDS = """
    id email contactId status autoNotified createdDate itemUrl
    catalogReference { appId catalogItemId options }
    itemDetails { name price image }
"""

CREATE_REQUEST = f"""
mutation Create($request: BackInStockNotificationRequestInput!,
                $itemDetails: BackInStockItemDetailsInput!) {{
  createBackInStockNotificationRequest(request: $request, itemDetails: $itemDetails) {{
    {REQUEST_FIELDS}
  }}
}}
"""

GET_REQUEST = f"""
query Get($id: ID!) {{ backInStockNotificationRequest(id: $id) {{ {REQUEST_FIELDS} }} }}
"""

# Delivery diagnostics need READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS.
DELIVERY_FIELDS = "id email status autoNotified deliveryAttempts lastDeliveryError"

CREATE_ASKING_DELIVERY = f"""
mutation Create($request: BackInStockNotificationRequestInput!,
                $itemDetails: BackInStockItemDetailsInput!) {{
  createBackInStockNotificationRequest(request: $request, itemDetails: $itemDetails) {{
    {DELIVERY_FIELDS}
  }}
}}
"""

GET_DELIVERY = f"""
query Get($id: ID!) {{ backInStockNotificationRequest(id: $id) {{ {DELIVERY_FIELDS} }} }}
"""

DELETE_REQUEST = """
mutation Delete($id: ID!) { deleteBackInStockNotificationRequest(id: $id) }
"""

MARK_AS_SENT = """
mutation Mark($id: ID!) { markAsNotificationSent(id: $id) { id status autoNotified } }
"""

QUERY_REQUESTS = """
query List($filter: BackInStockNotificationRequestFilter,
           $sort: [BackInStockNotificationRequestSort!], $first: Int, $after: String) {
  backInStockNotificationRequests(filter: $filter, sort: $sort, first: $first, after: $after) {
    totalCount
    edges { cursor node { id email status autoNotified itemUrl createdDate contactId } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

COUNT_BY_REFERENCES = """
query Count($refs: [CatalogReferenceInput!]!) {
  backInStockNotificationRequestsCountByCatalogReferences(catalogReferences: $refs) {
    catalogReference { appId catalogItemId options }
    count
  }
}
"""

REPORT = """
mutation Report($itemDetails: BackInStockItemDetailsInput!,
                $options: ReportItemsBackInStockOptions) {
  reportItemsBackInStock(itemDetails: $itemDetails, options: $options) { queuedCount }
}
"""

SETTINGS = """
query { backInStockSettings { collectionStates { appId collectingRequests } } }
"""

START_COLLECTING = """
mutation Start($appId: String!) {
  startCollectingRequests(appId: $appId) { collectionStates { appId collectingRequests } }
}
"""

STOP_COLLECTING = """
mutation Stop($appId: String!) {
  stopCollectingRequests(appId: $appId) { collectionStates { appId collectingRequests } }
}
"""

RELAY_NODE = """
query Node($id: ID!) {
  node(id: $id) { id ... on BackInStockNotificationRequest { email status } }
}
"""

SETTINGS_AND_REQUEST_COUNT = """
query {
  backInStockSettings { collectionStates { appId } }
  backInStockNotificationRequests { totalCount }
}
"""

PAGE_OF_REQUESTS = """
query Page($filter: BackInStockNotificationRequestFilter,
           $sort: [BackInStockNotificationRequestSort!], $first: Int, $after: String) {
  backInStockNotificationRequests(filter: $filter, sort: $sort, first: $first, after: $after) {
    edges { node { id email status autoNotified itemUrl createdDate contactId
                   catalogReference { appId catalogItemId } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
