"""Subscriptions over graphql-transport-ws at /graphql, on a real server and socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from websockets.exceptions import InvalidStatus

from app.config import Settings
from app.permissions import Permission
from tests.conftest import GraphQLClient, mint_key
from tests.documents import DELETE_REQUEST, MARK_AS_SENT, create, start_collecting
from tests.subscriptions import EVENTS, listening, served, ws_client


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "cors_allow_origins": "https://shop.example",
            "max_subscriptions_per_connection": 2,
        }
    )


@pytest.fixture
async def url(app: Starlette) -> AsyncIterator[str]:
    async with served(app) as base:
        yield f"ws://{base}/graphql"


async def test_a_subscriber_with_a_key_sees_created_updated_and_deleted_live(
    app: Starlette, url: str, gql: GraphQLClient, admin_key: str
):
    await start_collecting(gql, admin_key)
    async with ws_client(url) as client:
        assert await client.init({"Authorization": f"Bearer {admin_key}"}) == {
            "type": "connection_ack"
        }
        await client.subscribe("1")
        await listening(app)

        request = await create(gql)
        created = await client.next_event()
        await gql(MARK_AS_SENT, {"id": request["id"]}, key=admin_key)
        marked = await client.next_event()
        await gql(DELETE_REQUEST, {"id": request["id"]}, key=admin_key)
        deleted = await client.next_event()

    assert created["type"] == "CREATED"
    assert created["requestId"] == request["id"]
    assert created["request"]["email"] == "shopper@example.com"
    assert created["request"]["status"] == "RECEIVED"
    assert created["entityEventSequence"] == 1
    assert marked["type"] == "UPDATED"
    assert marked["request"]["status"] == "NOTIFICATION_SENT"
    assert (deleted["type"], deleted["request"]) == ("DELETED", None)
    assert deleted["entityEventSequence"] == 3


async def test_apollo_routers_token_form_is_accepted(
    app: Starlette, url: str, gql: GraphQLClient, admin_key: str
):
    await start_collecting(gql, admin_key)
    async with ws_client(url) as client:
        await client.init({"token": admin_key})
        await client.subscribe("1")
        await listening(app)

        request = await create(gql)

        assert (await client.next_event())["requestId"] == request["id"]


async def test_a_visitor_is_forbidden_at_subscribe(url: str):
    async with ws_client(url) as client:
        await client.init()
        await client.subscribe("1")

        message = await client.receive()

    assert message["type"] == "error"
    assert [e["extensions"]["code"] for e in message["payload"]] == ["FORBIDDEN"]


async def test_a_key_without_the_read_permission_is_forbidden(url: str, app: Starlette):
    creator = await mint_key(app, Permission.CREATE_BACK_IN_STOCK_NOTIFICATION_REQUESTS)
    async with ws_client(url) as client:
        await client.init({"Authorization": f"Bearer {creator}"})
        await client.subscribe("1")

        message = await client.receive()

    assert [e["extensions"]["code"] for e in message["payload"]] == ["FORBIDDEN"]


async def test_an_unknown_key_is_unauthenticated(url: str):
    async with ws_client(url) as client:
        await client.init({"Authorization": "Bearer bis_not-a-key"})
        await client.subscribe("1")

        message = await client.receive()

    assert [e["extensions"]["code"] for e in message["payload"]] == ["UNAUTHENTICATED"]


async def test_a_page_of_another_origin_cannot_connect(url: str):
    with pytest.raises(InvalidStatus) as refused:
        async with ws_client(url, origin="https://evil.example"):
            pass

    assert refused.value.response.status_code == 403


async def test_a_page_of_an_allowed_origin_can_connect(url: str, admin_key: str):
    async with ws_client(url, origin="https://shop.example") as client:
        assert (await client.init({"token": admin_key}))["type"] == "connection_ack"


async def test_subscriptions_per_connection_are_capped(url: str, admin_key: str):
    async with ws_client(url) as client:
        await client.init({"token": admin_key})
        await client.subscribe("1")
        await client.subscribe("2")
        await client.subscribe("3")

        message = await client.receive()

    assert message["type"] == "error"
    assert message["id"] == "3"
    assert message["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"


async def test_a_filter_picks_the_events_of_matching_requests(
    app: Starlette, url: str, gql: GraphQLClient, admin_key: str
):
    await start_collecting(gql, admin_key)
    async with ws_client(url) as client:
        await client.init({"token": admin_key})
        await client.subscribe(
            "1", EVENTS, {"filter": {"email": {"startsWith": "Wanted"}}}
        )
        await listening(app)

        await create(gql, email="other@example.com")
        wanted = await create(gql, email="wanted@example.com")
        await gql(DELETE_REQUEST, {"id": wanted["id"]}, key=admin_key)

        created = await client.next_event()
        deleted = await client.next_event()
        assert await client.nothing_for(0.3)

    assert (created["type"], created["requestId"]) == ("CREATED", wanted["id"])
    assert (deleted["type"], deleted["requestId"]) == ("DELETED", wanted["id"])


async def test_a_bad_filter_is_an_invalid_argument(url: str, admin_key: str):
    async with ws_client(url) as client:
        await client.init({"token": admin_key})
        await client.subscribe("1", EVENTS, {"filter": {"id": {"eq": "not-a-uuid"}}})

        message = await client.receive()

    assert [e["extensions"]["code"] for e in message["payload"]] == ["INVALID_ARGUMENT"]


async def test_a_subscription_ends_soon_after_its_key_is_revoked(
    app: Starlette, gql: GraphQLClient
):
    from app.auth import create_api_key, revoke_api_key

    app.state.authenticator.cache_seconds = 0
    app.state.settings.__dict__["api_key_cache_seconds"] = 0
    record, key = await create_api_key(
        app.state.store, name="short-lived", permissions=frozenset(Permission)
    )
    async with served(app) as base, ws_client(f"ws://{base}/graphql") as client:
        await client.init({"token": key})
        await client.subscribe("1")
        await revoke_api_key(app.state.store, id=record.id)

        message = await client.receive(seconds=5)

    assert message["type"] == "next"
    codes = [e["extensions"]["code"] for e in message["payload"]["errors"]]
    assert codes == ["UNAUTHENTICATED"]


async def test_a_mutation_over_the_websocket_is_refused(url: str, admin_key: str):
    # Queries and mutations go over HTTP, where every limit applies.
    async with ws_client(url) as client:
        await client.init({"token": admin_key})
        await client.subscribe(
            "1",
            'mutation { startCollectingRequests(appId: "x") { collectionStates { appId } } }',
        )

        message = await client.receive()

    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "BAD_REQUEST"
