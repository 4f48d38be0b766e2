"""The two reference servers every bench run measures beside the service.

- `bare_app`: a Starlette route returning fixed JSON (the floor: HTTP + ASGI + routing);
- `in_memory_app`: a minimal Strawberry schema with parser and validation caches and orjson,
  resolving one notification request held in memory, or a page of 100 of them, with the same
  fields, names and types as the service.

Both are uvicorn factories: `uvicorn --factory bench.reference_servers:in_memory_app`.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.scalars import JSON

_FIXED = orjson.dumps({"data": {"status": "ok", "service": "reference"}})


async def _fixed_json(_: Request) -> Response:
    return Response(_FIXED, media_type="application/json")


def bare_app() -> Starlette:
    return Starlette(routes=[Route("/graphql", _fixed_json, methods=["GET", "POST"])])


@strawberry.enum(name="BackInStockNotificationRequestStatus")
class Status(enum.Enum):
    RECEIVED = "RECEIVED"
    PROCESSING = "PROCESSING"
    NOTIFICATION_SENT = "NOTIFICATION_SENT"
    FAILED = "FAILED"


@strawberry.type
class CatalogReference:
    app_id: str
    catalog_item_id: str
    options: JSON | None


@strawberry.type
class BackInStockItemDetails:
    name: str
    price: str
    image: str | None


@strawberry.type
class BackInStockNotificationRequest:
    id: strawberry.ID
    catalog_reference: CatalogReference
    email: str
    contact_id: strawberry.ID
    status: Status
    auto_notified: bool | None
    created_date: datetime
    item_url: str | None
    item_details: BackInStockItemDetails


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


def _request(index: int) -> BackInStockNotificationRequest:
    item = str(uuid.UUID(int=index + 1))
    return BackInStockNotificationRequest(
        id=strawberry.ID(str(uuid.uuid4())),
        catalog_reference=CatalogReference(
            app_id="215238eb-22a5-4c36-9e7b-e7c08025e04e",
            catalog_item_id=item,
            options={"variantId": str(uuid.UUID(int=index + 7))} if index % 2 else None,
        ),
        email=f"shopper{index}@example{index % 97}.com",
        contact_id=strawberry.ID(str(uuid.uuid4())),
        status=Status.RECEIVED,
        auto_notified=None,
        created_date=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=index),
        item_url=f"https://shop1.example.com/product/{item}",
        item_details=BackInStockItemDetails(
            name=f"Item {index}",
            price="24.50",
            image=f"https://static.example.com/{index}.jpg",
        ),
    )


_ONE = _request(0)
_PAGE = [_request(index) for index in range(100)]
# About as long as the service's cursors (base64 of the sort values and a fingerprint).
_CURSORS = [
    f"WzEsImZpbmdlcnByaW50IixbeyJ0IjoiMjAyNi0wMS0wMVQwMDowMDow{index:012d}"
    for index in range(100)
]


@strawberry.type
class Query:
    @strawberry.field
    def back_in_stock_notification_request(
        self, id: strawberry.ID
    ) -> BackInStockNotificationRequest | None:
        return _ONE

    @strawberry.field
    def back_in_stock_notification_requests(
        self,
        first: int | None = None,
        after: str | None = None,
        filter: JSON | None = None,
    ) -> BackInStockNotificationRequestConnection:
        page = _PAGE[: 50 if first is None else first]
        return BackInStockNotificationRequestConnection(
            edges=[
                BackInStockNotificationRequestEdge(cursor=cursor, node=node)
                for cursor, node in zip(_CURSORS, page, strict=False)
            ],
            page_info=PageInfo(
                has_next_page=True,
                has_previous_page=after is not None,
                start_cursor=_CURSORS[0],
                end_cursor=_CURSORS[len(page) - 1],
            ),
        )


class _OrjsonGraphQL(GraphQL):
    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def in_memory_app() -> Starlette:
    schema = strawberry.Schema(
        query=Query,
        extensions=[
            lambda: ParserCache(maxsize=1024),
            lambda: ValidationCache(maxsize=1024),
        ],
    )
    app = Starlette()
    app.add_route("/graphql", _OrjsonGraphQL(schema), methods=["GET", "POST"])
    return app


__all__: list[Any] = ["bare_app", "in_memory_app"]
