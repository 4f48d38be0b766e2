"""The filter evaluated in Python (subscriptions, app/services/filter_match.py) picks the
same requests as the filter in SQL (the request query), on both databases.

Each filter is a subscription; after a run of changes, the requests whose latest event
reached a subscription must be exactly those the query with that filter returns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette

from app.config import Settings
from tests.conftest import GraphQLClient
from tests.delivery import report
from tests.documents import MARK_AS_SENT, QUERY_REQUESTS, create, start_collecting
from tests.subscriptions import EVENTS, Client, listening, served, ws_client

FILTERS: list[dict[str, Any]] = [
    {},
    {"email": {"eq": " Shopper1@Example.com "}},
    {"email": {"startsWith": "SHOP"}},
    {"email": {"gt": "m", "lte": "shopper3@example.com"}},
    {"itemUrl": {"exists": False}},
    {"itemUrl": {"ne": "https://shop.example/a"}},
    {"itemUrl": {"nin": ["https://shop.example/a", "https://shop.example/B"]}},
    {"itemUrl": {"startsWith": "HTTPS://SHOP.EXAMPLE/b"}},
    {"not": {"itemUrl": {"eq": "https://shop.example/a"}}},
    {"status": {"eq": "PROCESSING"}},
    {"status": {"in": ["RECEIVED", "NOTIFICATION_SENT"]}},
    {"status": {"nin": ["PROCESSING"]}, "autoNotified": {"eq": False}},
    {"status": {"ne": "RECEIVED"}},
    {"autoNotified": {"ne": False}},
    {"autoNotified": {"exists": True}},
    {"catalogReference": {"catalogItemId": {"startsWith": "sHoE"}}},
    {
        "catalogReference": {
            "appId": {"in": ["stores", "other"]},
            "catalogItemId": {"lt": "shoe-2"},
        }
    },
    {"or": [{"email": {"startsWith": "a"}}, {"status": {"eq": "PROCESSING"}}]},
    {"and": []},
    {"or": []},
    {"not": {"or": [{"email": {"eq": "x@y.z"}}, {"itemUrl": {"exists": False}}]}},
    {"and": [{"not": {"status": {"eq": "PROCESSING"}}}, {"email": {"lt": "shopper"}}]},
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_subscriptions_per_connection": 100})


@pytest.fixture
async def url(app: Starlette) -> AsyncIterator[str]:
    async with served(app) as base:
        yield f"ws://{base}/graphql"


async def _changes(gql: GraphQLClient, key: str) -> list[dict[str, Any]]:
    """Requests of every kind: items, urls (some none), statuses, sent by hand or not."""
    made = []
    for index, (email, item, url) in enumerate(
        [
            ("shopper0@example.com", "shoe-1", "https://shop.example/a"),
            ("Shopper1@example.com", "shoe-1", None),
            ("shopper2@example.com", "shoe-2", "https://shop.example/B"),
            ("shopper3@example.com", "shoe-3", "https://shop.example/b/3"),
            ("alice@example.com", "boot-1", None),
            ("zed@example.com", "shoe-1", "https://shop.example/a"),
            ("amy@example.com", "shoe-3", "https://shop.example/c"),
        ]
    ):
        made.append(await create(gql, email=email, item_id=item, item_url=url))
        if index in (2, 5):
            await gql(MARK_AS_SENT, {"id": made[-1]["id"]}, key=key)
    await report(gql, key)  # shoe-1: shopper0 and Shopper1 become PROCESSING
    return made


async def _collect(client: Client, seconds: float) -> dict[str, list[dict[str, Any]]]:
    """Every event that arrives until the connection is quiet, by subscription id."""
    events: dict[str, list[dict[str, Any]]] = {}
    while True:
        try:
            message = await client.receive(seconds=seconds)
        except TimeoutError:
            return events
        assert message["type"] == "next", message
        event = message["payload"]["data"]["backInStockNotificationRequestEvents"]
        events.setdefault(message["id"], []).append(event)


async def test_the_python_filter_picks_what_the_sql_filter_picks(
    app: Starlette, url: str, gql: GraphQLClient, admin_key: str
):
    # given: one subscription per filter
    await start_collecting(gql, admin_key)
    async with ws_client(url) as client:
        await client.init({"token": admin_key})
        for index, spec in enumerate(FILTERS):
            await client.subscribe(str(index), EVENTS, {"filter": spec})
        await listening(app, len(FILTERS))

        # when
        await _changes(gql, admin_key)
        events = await _collect(client, 1.0)

    # then: each request's latest event reached exactly the matching subscriptions
    latest = {e["requestId"]: e["entityEventSequence"] for e in events["0"]}
    for index, spec in enumerate(FILTERS):
        result = await gql(
            QUERY_REQUESTS, {"filter": spec, "first": 100}, key=admin_key
        )
        assert result.errors == [], result.errors
        in_sql = {
            edge["node"]["id"]
            for edge in result.data["backInStockNotificationRequests"]["edges"]
        }
        in_python = {
            e["requestId"]
            for e in events.get(str(index), [])
            if latest[e["requestId"]] == e["entityEventSequence"]
        }
        assert in_python == in_sql, spec
    assert len(latest) == 7
