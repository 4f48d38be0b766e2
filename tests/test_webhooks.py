"""Webhooks as a new user meets them: an endpoint on loopback receives signed events,
verified with the `standardwebhooks` package as a receiver would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from starlette.applications import Starlette

from app.config import Settings
from app.main import create_app
from tests.conftest import GraphQLClient, shared_schema
from tests.delivery import eventually
from tests.documents import (
    DELETE_REQUEST,
    MARK_AS_SENT,
    create,
    start_collecting,
)
from tests.receiver import Receiver
from tests.webhooks import (
    CREATED,
    DELETE_ENDPOINT,
    DELETED,
    UPDATED,
    add_endpoint,
    endpoints,
    webhook_settings,
)

FULL_REQUEST = """
query Get($id: ID!) {
  backInStockNotificationRequest(id: $id) {
    id email contactId status autoNotified confirmed createdDate itemUrl
    catalogReference { appId catalogItemId options }
    itemDetails { name price image }
    deliveryAttempts lastDeliveryError
  }
}
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return webhook_settings(settings)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    started.start()
    yield started
    started.stop()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings, schema=shared_schema(settings))
    async with application.router.lifespan_context(application):
        yield application


async def test_an_endpoint_receives_signed_created_updated_and_deleted_events(
    gql: GraphQLClient, admin_key: str, receiver: Receiver
):
    # given
    await start_collecting(gql, admin_key)
    await add_endpoint(gql, admin_key, receiver)

    # when
    request = await create(gql, options={"size": 42})
    full = await gql(FULL_REQUEST, {"id": request["id"]}, key=admin_key)
    await gql(MARK_AS_SENT, {"id": request["id"]}, key=admin_key)
    await gql(DELETE_REQUEST, {"id": request["id"]}, key=admin_key)

    # then
    await eventually(lambda: len(receiver.accepted()) == 3)
    created, marked, deleted = receiver.accepted()
    assert all(d.verified_with == receiver.secrets[0] for d in receiver.all())
    assert [d.payload["type"] for d in (created, marked, deleted)] == [
        CREATED,
        UPDATED,
        DELETED,
    ]
    assert (
        created.payload["data"]["entity"] == full.data["backInStockNotificationRequest"]
    )
    assert marked.payload["data"]["entity"]["status"] == "NOTIFICATION_SENT"
    assert marked.payload["data"]["entity"]["autoNotified"] is False
    assert "entity" not in deleted.payload["data"]
    metadata = [d.payload["data"]["metadata"] for d in (created, marked, deleted)]
    assert [m["entityEventSequence"] for m in metadata] == [1, 2, 3]
    assert {m["entityId"] for m in metadata} == {request["id"]}
    assert [m["id"] for m in metadata] == [d.webhook_id for d in receiver.accepted()]
    assert len({m["id"] for m in metadata}) == 3


async def test_a_failed_delivery_is_retried_with_the_same_webhook_id(
    gql: GraphQLClient, admin_key: str, receiver: Receiver
):
    await start_collecting(gql, admin_key)
    await add_endpoint(gql, admin_key, receiver)
    answers = iter([500, 503])
    receiver.answer = lambda delivery: next(answers, 200)

    await create(gql)

    await eventually(lambda: len(receiver.accepted()) == 1)
    statuses = [d.status for d in receiver.all()]
    assert statuses == [500, 503, 200]
    assert len({d.webhook_id for d in receiver.all()}) == 1
    assert len({d.body for d in receiver.all()}) == 1


async def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    gql: GraphQLClient, admin_key: str, receiver: Receiver
):
    await start_collecting(gql, admin_key)
    await add_endpoint(gql, admin_key, receiver)
    answers = iter([302])
    receiver.answer = lambda delivery: next(answers, 200)

    await create(gql)

    await eventually(lambda: len(receiver.accepted()) == 1)
    assert [d.status for d in receiver.all()] == [302, 200]


async def test_event_types_not_asked_for_are_not_delivered(
    gql: GraphQLClient, admin_key: str, receiver: Receiver
):
    await start_collecting(gql, admin_key)
    await add_endpoint(gql, admin_key, receiver, event_types=[DELETED])
    everything = Receiver()
    everything.start()
    try:
        await add_endpoint(gql, admin_key, everything)
        request = await create(gql)
        await gql(MARK_AS_SENT, {"id": request["id"]}, key=admin_key)
        await gql(DELETE_REQUEST, {"id": request["id"]}, key=admin_key)

        await eventually(lambda: len(everything.accepted()) == 3)
        await eventually(lambda: len(receiver.accepted()) == 1)
    finally:
        everything.stop()
    assert [d.payload["type"] for d in receiver.all()] == [DELETED]


async def test_nothing_is_sent_after_the_endpoint_is_deleted(
    gql: GraphQLClient, admin_key: str, receiver: Receiver
):
    await start_collecting(gql, admin_key)
    endpoint = await add_endpoint(gql, admin_key, receiver)
    await create(gql, email="first@example.com")
    await eventually(lambda: len(receiver.accepted()) == 1)

    deleted = await gql(DELETE_ENDPOINT, {"id": endpoint["id"]}, key=admin_key)
    assert deleted.data == {"deleteWebhookEndpoint": endpoint["id"]}
    sentinel = Receiver()
    sentinel.start()
    try:
        await add_endpoint(gql, admin_key, sentinel)
        await create(gql, email="second@example.com")
        await eventually(lambda: len(sentinel.accepted()) == 1)
    finally:
        sentinel.stop()

    assert len(receiver.all()) == 1
    assert await endpoints(gql, admin_key) != []
    assert endpoint["id"] not in [e["id"] for e in await endpoints(gql, admin_key)]


async def test_an_endpoint_answering_410_is_disabled(
    gql: GraphQLClient, admin_key: str, receiver: Receiver
):
    await start_collecting(gql, admin_key)
    await add_endpoint(gql, admin_key, receiver)
    receiver.answer = lambda delivery: 410

    await create(gql, email="first@example.com")
    await eventually(lambda: len(receiver.all()) == 1)
    await eventually(
        lambda: _first_endpoint(gql, admin_key, lambda e: e["enabled"] is False)
    )
    await create(gql, email="second@example.com")

    (endpoint,) = await endpoints(gql, admin_key)
    assert endpoint["disabledReason"] == "the endpoint answered 410 Gone"
    assert endpoint["pendingCount"] == 0
    assert len(receiver.all()) == 1


async def _first_endpoint(gql: GraphQLClient, key: str, condition) -> bool:  # type: ignore[no-untyped-def]
    found = await endpoints(gql, key)
    return bool(found) and condition(found[0])


async def test_an_endpoint_shows_its_delivery_diagnostics(
    gql: GraphQLClient, admin_key: str, receiver: Receiver
):
    await start_collecting(gql, admin_key)
    await add_endpoint(gql, admin_key, receiver)
    receiver.answer = lambda delivery: 500

    await create(gql)
    await eventually(lambda: len(receiver.all()) >= 2)
    (failing,) = await endpoints(gql, admin_key)
    receiver.answer = lambda delivery: 200
    await eventually(lambda: len(receiver.accepted()) == 1)
    await eventually(
        lambda: _first_endpoint(gql, admin_key, lambda e: e["pendingCount"] == 0)
    )
    (recovered,) = await endpoints(gql, admin_key)

    assert failing["lastError"] == "HTTP 500"
    assert failing["failingSince"] is not None
    assert failing["lastSuccessDate"] is None
    assert failing["pendingCount"] == 1
    assert recovered["failingSince"] is None
    assert recovered["lastSuccessDate"] is not None
    assert recovered["enabled"] is True
