"""totalCount of filters on the catalog reference, status and autoNotified (read from
counters, app/services/request_totals.py) is what tests/paging_model.py's oracle counts:
for random rows stored around the service (the counters then counted again), and after
random creates, reports, deliveries (sent and failed), marks and deletes through the
API. Random filter trees of those fields, `and` / `or` / `not`, nested; one database per
run, emptied between examples (Hypothesis; profiles as in test_paging_properties.py).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any
from unittest.mock import patch

from hypothesis import given
from hypothesis import settings as profiles
from hypothesis import strategies as st

from app.config import Settings
from app.notify.dispatcher import Dispatcher
from app.services import broad_counts
from app.services.rules import contact_id_for
from tests.conftest import GraphQLClient
from tests.documents import (
    DELETE_REQUEST,
    MARK_AS_SENT,
    REPORT,
    create,
    reference,
    start_collecting,
)
from tests.mailbox import Mailbox
from tests.paging_model import SENT, Row, expected, serving_in, store_rows, wipe
from tests.recount import list_all
from tests.test_paging_properties import PROFILE, field_filter, filters, worlds

TOTAL = """
query Total($filter: BackInStockNotificationRequestFilter) {
  backInStockNotificationRequests(first: 0, filter: $filter) { totalCount }
}
"""
# Besides catalogReference (appId, catalogItemId), which every filter may hold.
COUNTED = ("status", "autoNotified")
LISTED = "id status autoNotified createdDate catalogReference { appId catalogItemId }"
APPS = ["stores", "Pos"]
ITEMS = ["shoe-1", "Shoe-2", "bag"]
ITEM = {"name": "Blue shoe", "price": "24.50"}


async def total_count(gql: GraphQLClient, key: str, spec: Any) -> int:
    result = await gql(TOTAL, {"filter": spec}, key=key)
    assert result.errors == [], (result.errors, spec)
    return int(result.data["backInStockNotificationRequests"]["totalCount"])


async def check_totals(
    gql: GraphQLClient, key: str, rows: list[Row], specs: list[Any]
) -> None:
    for spec in specs:
        assert await total_count(gql, key, spec) == len(expected(rows, spec, None)), (
            spec
        )


def item_filters(rows: list[Row]) -> st.SearchStrategy[dict[str, Any]]:
    """One catalogItemId field filter, alone or with one appId or status field filter:
    what a dashboard sends, and each a plan of its own."""
    item = field_filter("catalogItemId", rows).map(
        lambda ops: {"catalogReference": {"catalogItemId": ops}}
    )
    app = field_filter("appId", rows).map(
        lambda ops: {"catalogReference": {"appId": ops}}
    )
    status = field_filter("status", rows).map(lambda ops: {"status": ops})
    return st.tuples(item, st.none() | app | status).map(
        lambda pair: pair[0] if pair[1] is None else {**pair[0], "and": [pair[1]]}
    )


def counted_filters(rows: list[Row]) -> st.SearchStrategy[list[Any]]:
    one = st.none() | filters(rows, fields=COUNTED) | item_filters(rows)
    return st.lists(one, min_size=1, max_size=4)


def test_total_count_of_stored_rows_is_the_models(settings: Settings) -> None:
    with asyncio.Runner() as runner, serving_in(runner, settings) as (app, gql, key):
        # Cheap examples: five times the profile's (a range bound's first character
        # shared by a stored item took ~100 to come up).
        @profiles(parent=PROFILE, max_examples=5 * PROFILE.max_examples)
        @given(data=st.data(), rows=worlds())
        def total_is_the_models(data: st.DataObject, rows: list[Row]) -> None:
            specs = data.draw(counted_filters(rows), label="filters")
            runner.run(wipe(app.state.store))
            runner.run(store_rows(app.state.store, rows))
            runner.run(check_totals(gql, key, rows, specs))

        total_is_the_models()


def test_total_count_of_any_filter_counted_by_its_complement_is_the_models(
    settings: Settings,
) -> None:
    """Filters on any field, counted as all requests less those they leave out where
    the probes say so (broad_counts._broad_count): both probes' sizes drawn too, and
    which side is counted whole past them, so that each of its ways (the matches, the
    complement, either counted whole) is taken, whichever side decides."""
    with asyncio.Runner() as runner, serving_in(runner, settings) as (app, gql, key):

        @PROFILE
        @given(data=st.data(), rows=worlds())
        def total_is_the_models(data: st.DataObject, rows: list[Row]) -> None:
            # Random trees, and a counted part AND-ed with any filter: then the
            # counters count the first, less what the second leaves out of it.
            counted_and_any = st.tuples(
                filters(rows, fields=COUNTED), filters(rows)
            ).map(lambda pair: {**pair[0], "and": [pair[1]]})
            specs = data.draw(
                st.lists(filters(rows) | counted_and_any, min_size=1, max_size=4),
                label="filters",
            )
            sizes = st.integers(0, len(rows) + 1)
            first_rows = data.draw(sizes, label="first probe")
            second_rows = data.draw(sizes, label="second probe")
            # Past both probes: the matches or the complement counted whole.
            above = data.draw(st.sampled_from([-1.0, 0.5, 2.0]), label="complement")
            runner.run(wipe(app.state.store))
            runner.run(store_rows(app.state.store, rows))
            with (
                patch.object(broad_counts, "PROBE_ROWS", first_rows),
                patch.object(broad_counts, "SECOND_PROBE_ROWS", second_rows),
                patch.object(
                    broad_counts, "PROBE_AT_LEAST", max(first_rows, second_rows)
                ),
                patch.object(broad_counts, "COUNT_COMPLEMENT_ABOVE", above),
            ):
                runner.run(check_totals(gql, key, rows, specs))

        total_is_the_models()


def test_total_count_of_item_url_filters_is_the_models(settings: Settings) -> None:
    """itemUrl conditions, alone or and-ed with a counted part, summed from the counters
    per itemUrl (app/services/url_totals.py), requests without one included where every
    condition holds for them."""
    with asyncio.Runner() as runner, serving_in(runner, settings) as (app, gql, key):
        # Cheap examples: five times the profile's (a prefix in another letter case
        # of a URL's own took that many to come up).
        @profiles(parent=PROFILE, max_examples=5 * PROFILE.max_examples)
        @given(data=st.data(), rows=worlds())
        def total_is_the_models(data: st.DataObject, rows: list[Row]) -> None:
            url = field_filter("itemUrl", rows).map(lambda ops: {"itemUrl": ops})
            counted = st.none() | filters(rows, depth=1, fields=COUNTED)
            one = st.tuples(url, counted).map(
                lambda pair: (
                    pair[0] if pair[1] is None else {**pair[1], "and": [pair[0]]}
                )
            )
            specs = data.draw(st.lists(one, min_size=1, max_size=4), label="filters")
            runner.run(wipe(app.state.store))
            runner.run(store_rows(app.state.store, rows))
            runner.run(check_totals(gql, key, rows, specs))

        total_is_the_models()


# ----------------------------------------------------------------- changes by the API

creates = st.tuples(
    st.just("create"),
    st.sampled_from(APPS),
    st.sampled_from(ITEMS),
    st.integers(0, 5),
    st.sampled_from([None, {"size": 42}]),
)
reports = st.tuples(
    st.just("report"),
    st.sampled_from(APPS),
    st.sampled_from(ITEMS),
    st.sampled_from([None, {"size": 42}]),
    st.none() | st.integers(0, 3),
)
reports_by_id = st.tuples(
    st.just("report ids"), st.lists(st.integers(0, 99), max_size=3)
)
marks = st.tuples(st.just("mark"), st.integers(0, 99))
deletes = st.tuples(st.just("delete"), st.integers(0, 99))
deliveries = st.tuples(st.just("deliver"), st.booleans())
changes = st.lists(
    st.one_of(creates, creates, reports, reports_by_id, marks, deletes, deliveries),
    min_size=1,
    max_size=14,
)


async def apply(
    change: tuple[Any, ...],
    gql: GraphQLClient,
    key: str,
    known: list[str],
    dispatcher: Dispatcher,
    mailbox: Mailbox,
) -> None:
    kind, *args = change
    if kind == "create":
        app_id, item_id, shopper, options = args
        made = await create(
            gql,
            key,
            email=f"s{shopper}@example.com",
            item_id=item_id,
            app_id=app_id,
            options=options,
        )
        known.append(made["id"])
    elif kind in ("report", "report ids"):
        if kind == "report":
            app_id, item_id, options, quantity = args
            chosen: dict[str, Any] = {
                "catalogReference": reference(item_id, options, app_id)
            }
            if quantity is not None:
                chosen["availableQuantity"] = quantity
        else:
            if not known:
                return
            chosen = {"requestIds": [known[i % len(known)] for i in args[0]] or known}
        variables = {"itemDetails": ITEM, "options": chosen}
        result = await gql(REPORT, variables, key=key)
        assert result.errors == [], result.errors
    elif kind in ("mark", "delete") and known:
        document = MARK_AS_SENT if kind == "mark" else DELETE_REQUEST
        await gql(document, {"id": known[args[0] % len(known)]}, key=key)
    elif kind == "deliver":
        (refused,) = args
        mailbox.refusal = "550 5.1.1 no such mailbox" if refused else None
        await dispatcher.drain()


def as_row(node: dict[str, Any]) -> Row:
    """A listed request as the model's row (its status from a stored one and the queue)."""
    processing = node["status"] == "PROCESSING"
    email = f"{node['id']}@example.com"
    return Row(
        id=uuid.UUID(node["id"]),
        email=email,
        contact_id=contact_id_for(email),
        stored_status="RECEIVED" if processing else node["status"],
        queued=processing,
        auto_notified=node["autoNotified"],
        created_date=datetime.fromisoformat(node["createdDate"]),
        item_url=None,
        app_id=node["catalogReference"]["appId"],
        catalog_item_id=node["catalogReference"]["catalogItemId"],
    )


async def changed_then_counted(
    gql: GraphQLClient,
    key: str,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
    data: st.DataObject,
) -> None:
    known: list[str] = []
    for change in data.draw(changes, label="changes"):
        await apply(change, gql, key, known, dispatcher, mailbox)
    rows = [as_row(node) for node in await list_all(gql, key, LISTED)]
    assert all(row.status != SENT or row.auto_notified is not None for row in rows)
    specs = data.draw(counted_filters(rows), label="filters")
    await check_totals(gql, key, rows, specs)


def test_total_count_after_random_changes_is_the_models(
    settings: Settings, mailbox: Mailbox
) -> None:
    # One refused attempt fails a request for good.
    settings = settings.model_copy(
        update={
            "mail_url": mailbox.url,
            "mail_timeout_seconds": 2.0,
            "delivery_max_attempts": 1,
            "delivery_batch_size": 7,
        }
    )
    with asyncio.Runner() as runner, serving_in(runner, settings) as (app, gql, key):
        dispatcher = Dispatcher(app.state.store, settings)
        for app_id in APPS:
            runner.run(start_collecting(gql, key, app_id))
        try:

            @PROFILE
            @given(data=st.data())
            def total_is_the_models(data: st.DataObject) -> None:
                runner.run(wipe(app.state.store))
                runner.run(changed_then_counted(gql, key, dispatcher, mailbox, data))

            total_is_the_models()
        finally:
            runner.run(dispatcher.close())
