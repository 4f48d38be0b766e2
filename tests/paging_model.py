"""A model of the request connection: rows put straight into the database, and the
contract's query semantics in plain Python (the oracle the paging tests compare with).

The oracle reads the API's own filter and sort input (camelCase, as a client sends it)
and knows nothing of how the service compiles them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import delete, insert
from starlette.applications import Starlette

from app.auth import create_api_key
from app.config import Settings
from app.main import create_app
from app.models import Notification, NotificationRequest
from app.permissions import Permission
from app.services.demand_rebuild import rebuild_item_demand
from app.storage import Store, Transaction
from tests.conftest import GraphQLClient, shared_schema

SENT = "NOTIFICATION_SENT"
STORED_STATUSES = ("RECEIVED", "FAILED", SENT)
STATUSES = ("RECEIVED", "PROCESSING", SENT, "FAILED")
SORT_FIELDS = (
    "ID",
    "CONTACT_ID",
    "STATUS",
    "AUTO_NOTIFIED",
    "CREATED_DATE",
    "ITEM_URL",
)

PAGE = """
query Page($filter: BackInStockNotificationRequestFilter,
           $sort: [BackInStockNotificationRequestSort!], $first: Int, $after: String) {
  backInStockNotificationRequests(filter: $filter, sort: $sort, first: $first, after: $after) {
    totalCount
    edges { cursor node { id email contactId status autoNotified createdDate itemUrl
                          catalogReference { appId catalogItemId } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


@dataclass(frozen=True)
class Row:
    """One stored request; `queued` puts a notification in the queue for it."""

    id: uuid.UUID
    email: str
    contact_id: uuid.UUID
    stored_status: str
    queued: bool
    auto_notified: bool | None
    created_date: datetime
    item_url: str | None
    app_id: str
    catalog_item_id: str

    @property
    def status(self) -> str:
        # Queued and not sent reads as PROCESSING (app.services.request_view).
        return (
            "PROCESSING"
            if self.queued and self.stored_status != SENT
            else (self.stored_status)
        )

    def node(self) -> dict[str, Any]:
        """The node the API shows for this row."""
        return {
            "id": str(self.id),
            "email": self.email,
            "contactId": str(self.contact_id),
            "status": self.status,
            "autoNotified": self.auto_notified,
            "createdDate": self.created_date.astimezone(UTC).isoformat(),
            "itemUrl": self.item_url,
            "catalogReference": {
                "appId": self.app_id,
                "catalogItemId": self.catalog_item_id,
            },
        }


# ----------------------------------------------------------------------------- storing


@asynccontextmanager
async def serving(
    app_settings: Settings,
) -> AsyncIterator[tuple[Starlette, GraphQLClient, str]]:
    """The app started with `app_settings`, a client of it, and a key holding every
    permission (for tests that start apps of their own)."""
    app = create_app(app_settings, schema=shared_schema(app_settings))
    async with app.router.lifespan_context(app):
        _, key = await create_api_key(
            app.state.store, name="model", permissions=frozenset(Permission)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1"
        ) as http:
            yield app, GraphQLClient(http), key


@contextmanager
def serving_in(
    runner: asyncio.Runner, app_settings: Settings
) -> Iterator[tuple[Starlette, GraphQLClient, str]]:
    """`serving` for a sync test driving its own loop with `runner` (Hypothesis's
    @given functions are sync)."""
    serve = serving(app_settings)
    served = runner.run(serve.__aenter__())
    try:
        yield served
    finally:
        runner.run(serve.__aexit__(None, None, None))


async def store_rows(store: Store, rows: Sequence[Row]) -> None:
    """Put the rows (and their queued notifications) in, in one transaction, and count
    them in the counters the service keeps (app/services/demand.py)."""
    now = datetime(2030, 1, 1, tzinfo=UTC)
    requests = [
        {
            "id": row.id,
            "app_id": row.app_id,
            "catalog_item_id": row.catalog_item_id,
            "options": None,
            # Unique per row: the open-request index never sees two alike.
            "catalog_reference_key": f"{index:064d}",
            "email": row.email,
            "contact_id": row.contact_id,
            "status": row.stored_status,
            "open_request": None if row.stored_status == SENT else True,
            "auto_notified": row.auto_notified,
            "created_date": row.created_date,
            "item_url": row.item_url,
            "item_name": "item",
            "item_price": "1",
            "item_image": None,
            "delivery_round": 0,
            "delivery_attempts": 0,
            "last_delivery_error": None,
        }
        for index, row in enumerate(rows)
    ]
    queued = [
        {
            "request_id": row.id,
            "request_created_date": row.created_date,
            "report_id": 1,
            "round": 1,
            "attempts": 0,
            "available_at": now,
            "lease_owner": None,
            "last_error": None,
            "created_date": now,
        }
        for row in rows
        if row.queued
    ]

    def body(tx: Transaction) -> None:
        if requests:
            tx.execute(insert(NotificationRequest.__table__), requests)
        if queued:
            tx.execute(insert(Notification.__table__), queued)
        rebuild_item_demand(tx)

    await store.write(body)


async def wipe(store: Store) -> None:
    def body(tx: Transaction) -> None:
        tx.execute(delete(Notification.__table__))
        tx.execute(delete(NotificationRequest.__table__))
        rebuild_item_demand(tx)

    await store.write(body)


# ------------------------------------------------------------------------------ filters

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# Each filter field: how a row's value is read and how a filter value is normalised.
_ID_FIELDS = {"id", "contactId"}


def _row_value(row: Row, name: str) -> Any:
    return {
        "id": row.id,
        "contactId": row.contact_id,
        "status": row.status,
        "autoNotified": row.auto_notified,
        "createdDate": row.created_date,
        "itemUrl": row.item_url,
        "email": row.email,
        "appId": row.app_id,
        "catalogItemId": row.catalog_item_id,
    }[name]


def _normalised(name: str, value: Any) -> Any:
    if name in _ID_FIELDS:
        return uuid.UUID(value)
    if name == "email":
        return value.strip().lower()
    if name == "createdDate":
        instant = datetime.fromisoformat(value)
        return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    return value


def _starts_with(name: str, value: Any, prefix: str) -> bool:
    """Case-insensitive; for text the README's rule: A-Z only (lower() under "C")."""
    if name == "email":
        return value.startswith(prefix.strip().lower())
    text = str(value) if name in _ID_FIELDS else value
    return text.translate(_ASCII_LOWER).startswith(prefix.translate(_ASCII_LOWER))


def _leaf(name: str, value: Any, operators: dict[str, Any]) -> bool:
    """Every operator of one field object, AND-ed; null equals nothing."""
    for op, raw in operators.items():
        if op == "exists":
            holds = (value is not None) == raw
        elif op == "startsWith":
            holds = value is not None and _starts_with(name, value, raw)
        elif op in ("in", "nin"):
            inside = value is not None and value in {_normalised(name, v) for v in raw}
            holds = inside if op == "in" else not inside
        else:
            wanted = _normalised(name, raw)
            if op == "ne":
                holds = value is None or value != wanted
            elif value is None:
                holds = False
            else:
                holds = {
                    "eq": value == wanted,
                    "gt": value > wanted,
                    "gte": value >= wanted,
                    "lt": value < wanted,
                    "lte": value <= wanted,
                }[op]
        if not holds:
            return False
    return True


def matches(row: Row, request_filter: dict[str, Any] | None) -> bool:
    """The contract's filter semantics, on the API's filter input."""
    for name, operand in (request_filter or {}).items():
        if name == "and":
            holds = all(matches(row, part) for part in operand)
        elif name == "or":
            holds = any(matches(row, part) for part in operand)
        elif name == "not":
            holds = not matches(row, operand)
        elif name == "catalogReference":
            holds = all(
                _leaf(sub, _row_value(row, sub), ops) for sub, ops in operand.items()
            )
        else:
            holds = _leaf(name, _row_value(row, name), operand)
        if not holds:
            return False
    return True


# -------------------------------------------------------------------------------- order

_SORT_VALUES = {
    "ID": lambda row: str(row.id),
    "CONTACT_ID": lambda row: str(row.contact_id),
    "STATUS": lambda row: row.status,
    "AUTO_NOTIFIED": lambda row: row.auto_notified,
    "CREATED_DATE": lambda row: row.created_date,
    "ITEM_URL": lambda row: row.item_url,
}


def total_order(sort: Sequence[dict[str, str]] | None) -> list[tuple[str, str]]:
    """The contract's order: the fields given (a repeated field counts once, nothing
    after ID counts), then the id in the direction of the last sort field."""
    keys: list[tuple[str, str]] = []
    for item in sort or [{"field": "CREATED_DATE", "order": "DESC"}]:
        field, order = item["field"], item.get("order", "ASC")
        if field not in [k for k, _ in keys]:
            keys.append((field, order))
        if field == "ID":
            break
    if keys[-1][0] != "ID":
        keys.append(("ID", keys[-1][1]))
    return keys


def ordered(rows: Iterable[Row], sort: Sequence[dict[str, str]] | None) -> list[Row]:
    """Rows in the contract's order: null ranks lowest, false before true, statuses and
    text by code point, dates by instant."""
    result = list(rows)
    # Stable sorts, the last key first, each in its own direction.
    for field, order in reversed(total_order(sort)):
        result.sort(key=_rank(field), reverse=order == "DESC")
    return result


def _rank(field: str) -> Any:
    value_of = _SORT_VALUES[field]

    def rank(row: Row) -> tuple[Any, ...]:
        value = value_of(row)
        return (0,) if value is None else (1, value)

    return rank


def expected(
    rows: Iterable[Row],
    request_filter: dict[str, Any] | None,
    sort: Sequence[dict[str, str]] | None,
) -> list[Row]:
    return ordered((row for row in rows if matches(row, request_filter)), sort)


# ------------------------------------------------------------------------------ walking


async def walk(
    gql: Any,
    key: str,
    sizes: Sequence[int],
    request_filter: dict[str, Any] | None = None,
    sort: Sequence[dict[str, str]] | None = None,
    after: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every page by cursor (from `after`), `sizes[i % len(sizes)]` rows each: (the
    nodes in the order listed, each page's connection without its edges)."""
    nodes: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    while True:
        variables = {
            "filter": request_filter,
            "sort": sort,
            "first": sizes[len(pages) % len(sizes)],
            "after": after,
        }
        result = await gql(PAGE, variables, key=key)
        assert result.errors == [], (result.errors, variables)
        connection = result.data["backInStockNotificationRequests"]
        edges = connection.pop("edges")
        connection["cursors"] = [edge["cursor"] for edge in edges]
        nodes += [edge["node"] for edge in edges]
        pages.append(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes, pages
        assert edges, f"an empty page says more follow: {variables}"
        after = connection["pageInfo"]["endCursor"]
        assert len(pages) <= 10_000, "the walk does not end"


def check_pages(pages: Sequence[dict[str, Any]], total: int) -> None:
    """Page info as the contract says, on every page of a walk."""
    for index, page in enumerate(pages):
        info, cursors = page["pageInfo"], page["cursors"]
        assert page["totalCount"] == total
        assert info["hasPreviousPage"] is (index > 0)
        assert info["startCursor"] == (cursors[0] if cursors else None)
        assert info["endCursor"] == (cursors[-1] if cursors else None)
