"""Webhook delivery under trouble: a receiver that is down, endpoints that keep failing,
two dispatchers at once. Every event arrives once, each request's in order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

import pytest
from starlette.applications import Starlette

from app.config import Settings
from app.main import create_app
from app.notify.dispatcher import Dispatcher
from app.storage import open_store
from tests.conftest import GraphQLClient, shared_schema
from tests.delivery import create_requests, eventually, report
from tests.documents import MARK_AS_SENT, create, start_collecting
from tests.receiver import Delivery, Receiver
from tests.webhooks import CREATED, UPDATED, add_endpoint, endpoints, webhook_settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return webhook_settings(settings)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings, schema=shared_schema(settings))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    started.start()
    yield started
    started.stop()


def assert_once_and_in_order(deliveries: list[Delivery]) -> None:
    ids = [d.webhook_id for d in deliveries]
    assert len(ids) == len(set(ids)), "an event arrived twice"
    by_request: dict[str, list[int]] = defaultdict(list)
    for delivery in deliveries:
        by_request[delivery.request_id].append(delivery.sequence)
    for sequences in by_request.values():
        assert sequences == list(range(1, len(sequences) + 1))


async def test_a_receiver_down_then_up_gets_every_event_once_and_in_order(
    gql: GraphQLClient, admin_key: str, receiver: Receiver
):
    # given: the receiver is down while requests are created, reported and emailed
    await start_collecting(gql, admin_key)
    await add_endpoint(gql, admin_key, receiver)
    receiver.stop()
    await create_requests(gql, 12)
    assert await report(gql, admin_key) == 12
    await eventually(
        lambda: _endpoint(gql, admin_key, lambda e: e["lastError"] is not None)
    )

    # when
    receiver.start()

    # then: 12 created, 12 reported (PROCESSING), 12 emailed (NOTIFICATION_SENT)
    await eventually(lambda: len(receiver.accepted()) == 36)
    accepted = receiver.accepted()
    assert_once_and_in_order(accepted)
    assert sorted(d.type for d in accepted) == ["created"] * 12 + ["updated"] * 24
    statuses = [d.payload["data"]["entity"]["status"] for d in accepted]
    assert sorted(set(statuses)) == ["NOTIFICATION_SENT", "PROCESSING", "RECEIVED"]
    await eventually(
        lambda: _endpoint(gql, admin_key, lambda e: e["pendingCount"] == 0)
    )


async def _endpoint(gql: GraphQLClient, key: str, condition) -> bool:  # type: ignore[no-untyped-def]
    found = await endpoints(gql, key)
    return bool(found) and condition(found[0])


async def test_an_event_given_up_lets_the_next_one_of_its_request_go(
    gql: GraphQLClient, admin_key: str, app: Starlette, receiver: Receiver
):
    app.state.settings.__dict__["webhook_retry_for_seconds"] = 0.3
    await start_collecting(gql, admin_key)
    await add_endpoint(gql, admin_key, receiver)
    receiver.answer = lambda d: 500 if d.payload["type"] == CREATED else 200

    request = await create(gql)
    await gql(MARK_AS_SENT, {"id": request["id"]}, key=admin_key)

    await eventually(lambda: len(receiver.accepted()) == 1)
    (marked,) = receiver.accepted()
    assert marked.payload["type"] == UPDATED
    assert all(d.payload["type"] == CREATED for d in receiver.all()[:-1])
    assert len(receiver.all()) >= 2


async def test_an_endpoint_failing_for_too_long_is_disabled(
    gql: GraphQLClient, admin_key: str, app: Starlette, receiver: Receiver
):
    app.state.settings.__dict__["webhook_disable_after_seconds"] = 0.3
    await start_collecting(gql, admin_key)
    await add_endpoint(gql, admin_key, receiver)
    receiver.answer = lambda d: 503

    await create(gql)

    await eventually(lambda: _endpoint(gql, admin_key, lambda e: not e["enabled"]))
    (endpoint,) = await endpoints(gql, admin_key)
    assert endpoint["disabledReason"].startswith("failing for more than")
    assert endpoint["pendingCount"] == 0
    tried = len(receiver.all())
    await create(gql, email="later@example.com")
    assert len(receiver.all()) == tried


async def test_two_dispatchers_deliver_each_event_once(
    gql: GraphQLClient, admin_key: str, settings: Settings, receiver: Receiver
):
    # given: a second dispatcher with a store of its own, next to the app's
    store = open_store(settings)
    second = Dispatcher(store, settings.model_copy(update={"webhook_batch_size": 5}))
    await second.start()
    try:
        await start_collecting(gql, admin_key)
        await add_endpoint(gql, admin_key, receiver)
        receiver.delay = 0.005

        # when
        await create_requests(gql, 30)
        assert await report(gql, admin_key) == 30

        # then: created, PROCESSING, NOTIFICATION_SENT for each
        await eventually(lambda: len(receiver.accepted()) == 90)
    finally:
        await second.stop()
        await store.dispose()
    assert_once_and_in_order(receiver.accepted())


async def test_a_target_turned_private_is_refused_at_delivery(
    gql: GraphQLClient, admin_key: str, app: Starlette, receiver: Receiver
):
    # The address is checked again before each delivery, after resolving the name.
    await start_collecting(gql, admin_key)
    await add_endpoint(gql, admin_key, receiver)
    app.state.settings.__dict__["webhook_allow_private_targets"] = False

    await create(gql)

    await eventually(lambda: _endpoint(gql, admin_key, lambda e: e["lastError"]))
    (endpoint,) = await endpoints(gql, admin_key)
    assert endpoint["lastError"].startswith("refused: 127.0.0.1 resolves to 127.0.0.1")
    assert receiver.all() == []
