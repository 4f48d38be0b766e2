"""Each change's moves between classes of the requests per itemUrl and app
(item_url_demand), written as demand.py writes the items' (a create's upsert:
demand_statements.py). A row whose requests are all deleted is forgotten, as an item's is.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from typing import Protocol

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    update,
)

from app.models import ItemUrlDemand, table_of
from app.services.demand_statements import CLASS_COUNTS, STATUS_COUNTS
from app.storage import Transaction

URLS = table_of(ItemUrlDemand)


class Change(Protocol):
    """What a change adds to each counter (demand._CountsChange)."""

    counts: dict[str, int]


_THIS_URL = and_(
    URLS.c.app_id == bindparam("b_app_id"),
    URLS.c.item_url == bindparam("b_item_url"),
)
_COUNTS_UPDATE = (
    update(URLS)
    .where(_THIS_URL)
    .values(
        {column: URLS.c[column] + bindparam(f"b_{column}") for column in CLASS_COUNTS}
    )
)
_ALL_COUNTS: ColumnElement[int] = functools.reduce(
    operator.add, (URLS.c[column] for column in STATUS_COUNTS.values())
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
