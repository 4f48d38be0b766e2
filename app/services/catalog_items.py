"""Demand on catalog items: how many shoppers still wait for an item, in batches.

A catalog item is `(app_id, catalog_item_id)`, whatever the options: the product other
services know, where a catalog reference names one variant of it. A request waits while
it is RECEIVED or PROCESSING (PROCESSING is read from the queue: see request_view).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, func, or_, select

from app.models import CollectionState, NotificationRequest, RequestStatus, table_of
from app.services.request_filters import (
    Condition,
    FilterField,
    Operator,
    RequestFilter,
)
from app.services.request_query import RequestQuery
from app.services.request_view import REQUEST_VIEW, status_in
from app.services.rules import (
    MAX_APP_ID_LENGTH,
    MAX_CATALOG_ITEM_ID_LENGTH,
    Violations,
    check_length,
)
from app.storage import Store

_REQUESTS = table_of(NotificationRequest)
_STATES = table_of(CollectionState)
WAITING_STATUSES = frozenset(
    {RequestStatus.RECEIVED.value, RequestStatus.PROCESSING.value}
)


class CatalogItemKey(NamedTuple):
    app_id: str
    catalog_item_id: str


def check_catalog_item(
    app_id: str, catalog_item_id: str, violations: Violations
) -> CatalogItemKey:
    """The item's key, with the lengths a catalog reference allows and no NUL character
    (which PostgreSQL cannot store, so no request could name it: check_length's rule)."""
    check_length(app_id, "app_id", 1, MAX_APP_ID_LENGTH, violations)
    check_length(
        catalog_item_id, "catalog_item_id", 1, MAX_CATALOG_ITEM_ID_LENGTH, violations
    )
    return CatalogItemKey(app_id, catalog_item_id)


def of_item(item: CatalogItemKey) -> ColumnElement[bool]:
    """Requests of the item, any options (served by the (app_id, catalog_item_id) index)."""
    return and_(
        _REQUESTS.c.app_id == item.app_id,
        _REQUESTS.c.catalog_item_id == item.catalog_item_id,
    )


def restricted_to_item(query: RequestQuery, item: CatalogItemKey) -> RequestQuery:
    """A checked request query narrowed to one item's requests.

    AND-ed to the compiled filter rather than to the caller's filter, so violation paths
    stay those of the caller's `filter`. Cursors are bound to the filter and sort, not to
    the item: one continues after its row's sort values on any item, which pages right.
    """
    of_this_item = RequestFilter(
        conditions=(
            Condition(FilterField.APP_ID, Operator.EQ, item.app_id),
            Condition(FilterField.CATALOG_ITEM_ID, Operator.EQ, item.catalog_item_id),
        ),
        and_=None if query.filter is None else (query.filter,),
    )
    built = query.built.narrowed(("item", item.app_id, item.catalog_item_id))
    where = built.get("where", lambda: and_(query.where, of_item(item)))
    return dataclasses.replace(query, where=where, filter=of_this_item, built=built)


def waiting_counts_statement(items: Collection[CatalogItemKey]) -> Any:
    """One SELECT of the waiting requests per item, for items that have any.

    An OR of one `app_id = ? AND catalog_item_id = ?` per item: each is one range of the
    (app_id, catalog_item_id) index on both databases, where SQLite would scan the whole
    index for a row-value `IN (VALUES ...)`.
    """
    return (
        select(_REQUESTS.c.app_id, _REQUESTS.c.catalog_item_id, func.count())
        .select_from(REQUEST_VIEW)
        .where(or_(*map(of_item, sorted(items))), status_in(WAITING_STATUSES))
        .group_by(_REQUESTS.c.app_id, _REQUESTS.c.catalog_item_id)
    )


async def count_waiting_requests(
    store: Store, *, items: Sequence[CatalogItemKey]
) -> list[int]:
    """How many requests of each item (any options) wait, in the given order, zeros
    included: one SELECT for all of them."""
    if not items:
        return []
    rows = await store.rows(waiting_counts_statement(set(items)))
    counts = {CatalogItemKey(app_id, item_id): count for app_id, item_id, count in rows}
    return [counts.get(item, 0) for item in items]


async def are_collecting(store: Store, *, app_ids: Sequence[str]) -> list[bool]:
    """Whether each app accepts new requests, in the given order (an app never started
    does not): one SELECT for all of them."""
    if not app_ids:
        return []
    rows = await store.rows(
        select(_STATES.c.app_id, _STATES.c.collecting_requests).where(
            _STATES.c.app_id.in_(sorted(set(app_ids)))
        )
    )
    collecting = {app_id: bool(state) for app_id, state in rows}
    return [collecting.get(app_id, False) for app_id in app_ids]
