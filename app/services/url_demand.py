"""The requests per itemUrl and app (item_url_demand), kept as demand.py keeps them per
item: a create's upsert, and each change's moves between classes.

Statements built once per dialect (their values come as parameters). A row whose
requests are all deleted is forgotten, as an item's is.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    literal_column,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from app.models import ItemUrlDemand, table_of
from app.storage import Transaction

URLS = table_of(ItemUrlDemand)
# Its counters: each status's, and of those autoNotified true's and false's (named as
# demand_statements.CLASS_COUNTS names them, which imports this module).
_COUNTERS = [column.name for column in URLS.c if column.name.endswith("_count")]
_STATUS_COUNTERS = [name for name in _COUNTERS if "_auto_" not in name]


class Change(Protocol):
    """What a change adds to each counter (demand._CountsChange)."""

    counts: dict[str, int]


def _created_upsert(dialect: str, after: Any | None = None) -> Any:
    """A new RECEIVED request counted for its itemUrl, given as `b_item_url` (RETURNING:
    a reusable statement). Given `after` (a CTE of one row), the row is selected from it
    when `b_item_url` is not NULL, so PostgreSQL writes that CTE's row first."""
    values: dict[str, Any] = {
        "app_id": bindparam("b_app_id", type_=URLS.c.app_id.type),
        "item_url": bindparam("b_item_url", type_=URLS.c.item_url.type),
        "item_url_folded": bindparam(
            "b_item_url_folded", type_=URLS.c.item_url_folded.type
        ),
        "received_count": literal_column("1"),
    }
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    if after is None:
        statement = insert(URLS).values(values)
    else:
        typed = [
            type_coerce(value, URLS.c[name].type).label(name)
            for name, value in values.items()
        ]
        given = bindparam("b_item_url", type_=URLS.c.item_url.type).is_not(None)
        statement = insert(URLS).from_select(
            list(values), select(*typed).select_from(after).where(given)
        )
    old = URLS.c
    return statement.on_conflict_do_update(
        index_elements=["item_url", "app_id"],
        set_={"received_count": old.received_count + 1},
    ).returning(old.received_count)


CREATED_UPSERT = {name: _created_upsert(name) for name in ("sqlite", "postgresql")}


def created_upsert_after(after: Any) -> Any:
    """PostgreSQL's create upsert, its row selected from `after` (see _created_upsert)."""
    return _created_upsert("postgresql", after)


_THIS_URL = and_(
    URLS.c.app_id == bindparam("b_app_id"),
    URLS.c.item_url == bindparam("b_item_url"),
)
_COUNTS_UPDATE = (
    update(URLS)
    .where(_THIS_URL)
    .values({column: URLS.c[column] + bindparam(f"b_{column}") for column in _COUNTERS})
)
_ALL_COUNTS: ColumnElement[int] = functools.reduce(
    operator.add, (URLS.c[column] for column in _STATUS_COUNTERS)
)
_FORGET_EMPTY = delete(URLS).where(_THIS_URL, _ALL_COUNTS == 0)


def count_urls(
    tx: Transaction, urls: Mapping[tuple[str, str], Change], *, removed: bool
) -> None:
    """Write each (app, itemUrl)'s change, in key order (the order every change locks
    them in); when requests were deleted (`removed`), forget rows left with none."""
    if not urls:
        return
    ordered = sorted(urls)
    changes = [
        {
            "b_app_id": app_id,
            "b_item_url": item_url,
            **{
                f"b_{column}": n
                for column, n in urls[(app_id, item_url)].counts.items()
            },
        }
        for app_id, item_url in ordered
    ]
    tx.execute(_COUNTS_UPDATE, changes)
    if removed:
        keys = [{"b_app_id": app, "b_item_url": url} for app, url in ordered]
        tx.execute(_FORGET_EMPTY, keys)
