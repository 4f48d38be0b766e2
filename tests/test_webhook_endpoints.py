"""Managing webhook endpoints: who may, what URLs and types are accepted, rotating the
secret, redelivering."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette

from app.config import Settings
from app.main import create_app
from app.permissions import Permission
from tests.conftest import GraphQLClient, mint_key, shared_schema
from tests.delivery import eventually
from tests.documents import create, start_collecting
from tests.receiver import Receiver
from tests.webhooks import (
    CREATE_ENDPOINT,
    CREATED,
    DELETE_ENDPOINT,
    LIST_ENDPOINTS,
    REDELIVER,
    ROTATE_SECRET,
    add_endpoint,
    webhook_settings,
)


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


@pytest.fixture
async def guarded(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """A client of an app with the default guard: private targets refused."""
    import httpx

    guarded_settings = settings.model_copy(
        update={"webhook_allow_private_targets": False}
    )
    application = create_app(guarded_settings, schema=shared_schema(guarded_settings))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            client = GraphQLClient(http)
            client.key = await mint_key(application)  # type: ignore[attr-defined]
            yield client


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "http://localhost/hooks",
        "http://10.1.2.3/hooks",
        "http://192.168.0.10/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://100.64.0.1/hooks",
        "http://0.0.0.0/hooks",
    ],
)
async def test_private_targets_are_refused_by_default(guarded: GraphQLClient, url: str):
    result = await guarded(CREATE_ENDPOINT, {"url": url}, key=guarded.key)  # type: ignore[attr-defined]

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["url"]
    listed = await guarded(LIST_ENDPOINTS, key=guarded.key)  # type: ignore[attr-defined]
    assert listed.data == {"webhookEndpoints": []}


async def test_a_public_target_is_accepted(guarded: GraphQLClient):
    # An address literal: nothing is resolved, nothing is sent.
    url = "https://93.184.216.34/hooks"

    result = await guarded(CREATE_ENDPOINT, {"url": url}, key=guarded.key)  # type: ignore[attr-defined]

    assert result.errors == []
    endpoint = result.data["createWebhookEndpoint"]["endpoint"]
    assert endpoint["url"] == url
    assert endpoint["enabled"] is True
    assert endpoint["eventTypes"] is None


@pytest.mark.parametrize(
    ("variables", "violations"),
    [
        ({"url": "ftp://example.com/x"}, ["url"]),
        ({"url": "not a url"}, ["url"]),
        (
            {"url": "https://93.184.216.34/", "eventTypes": ["created"]},
            ["eventTypes[0]"],
        ),
        ({"url": "https://93.184.216.34/", "eventTypes": []}, ["eventTypes"]),
    ],
)
async def test_bad_endpoints_are_invalid_arguments(
    gql: GraphQLClient, admin_key: str, variables, violations
):
    result = await gql(CREATE_ENDPOINT, variables, key=admin_key)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == violations


@pytest.mark.parametrize(
    "document",
    [
        LIST_ENDPOINTS,
        CREATE_ENDPOINT,
        DELETE_ENDPOINT,
        ROTATE_SECRET,
        REDELIVER,
    ],
)
async def test_endpoints_need_the_modify_settings_permission(
    gql: GraphQLClient, app: Starlette, document: str
):
    reader = await mint_key(
        app,
        Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS,
        Permission.MODIFY_BACK_IN_STOCK_NOTIFICATION_REQUESTS,
    )
    variables = {
        "url": "https://93.184.216.34/",
        "id": "0190f3a8-0000-7000-8000-000000000000",
        "since": "2026-01-01T00:00:00Z",
    }

    as_visitor = await gql(document, variables)
    as_reader = await gql(document, variables, key=reader)

    assert as_visitor.codes == ["FORBIDDEN"]
    assert as_reader.codes == ["FORBIDDEN"]
    assert as_visitor.data is None


async def test_the_secret_is_shown_only_at_create_and_rotate(
    gql: GraphQLClient, admin_key: str, receiver: Receiver
):
    result = await gql(CREATE_ENDPOINT, {"url": receiver.url}, key=admin_key)
    secret = result.data["createWebhookEndpoint"]["secret"]
    endpoint_id = result.data["createWebhookEndpoint"]["endpoint"]["id"]

    rotated = await gql(ROTATE_SECRET, {"id": endpoint_id}, key=admin_key)

    new_secret = rotated.data["rotateWebhookEndpointSecret"]["secret"]
    assert secret.startswith("whsec_")
    assert new_secret.startswith("whsec_")
    assert secret != new_secret
    import base64

    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    listed = await gql(LIST_ENDPOINTS, key=admin_key)
    assert secret not in str(listed.body)
    assert new_secret not in str(listed.body)


async def test_after_a_rotation_both_secrets_sign_for_a_while(
    gql: GraphQLClient, admin_key: str, receiver: Receiver
):
    await start_collecting(gql, admin_key)
    endpoint = await add_endpoint(gql, admin_key, receiver)
    rotated = await gql(ROTATE_SECRET, {"id": endpoint["id"]}, key=admin_key)
    old_secret = receiver.secrets[0]
    new_only = Receiver()
    new_only.secrets = [rotated.data["rotateWebhookEndpointSecret"]["secret"]]

    await create(gql)

    await eventually(lambda: len(receiver.accepted()) == 1)
    (delivery,) = receiver.accepted()
    assert delivery.verified_with == old_secret
    assert new_only._verify(delivery.headers, delivery.body) == new_only.secrets[0]
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2


async def test_unknown_endpoints_are_not_found(gql: GraphQLClient, admin_key: str):
    missing = "0190f3a8-0000-7000-8000-000000000000"

    deleted = await gql(DELETE_ENDPOINT, {"id": missing}, key=admin_key)
    rotated = await gql(ROTATE_SECRET, {"id": missing}, key=admin_key)
    again = await gql(
        REDELIVER, {"id": missing, "since": "2026-01-01T00:00:00Z"}, key=admin_key
    )

    assert (
        deleted.codes == rotated.codes == again.codes == ["WEBHOOK_ENDPOINT_NOT_FOUND"]
    )


async def test_redelivery_sends_kept_events_again_with_their_ids(
    gql: GraphQLClient, admin_key: str, receiver: Receiver
):
    await start_collecting(gql, admin_key)
    endpoint = await add_endpoint(gql, admin_key, receiver)
    await create(gql, email="one@example.com")
    await create(gql, email="two@example.com")
    await eventually(lambda: len(receiver.accepted()) == 2)
    await eventually(lambda: _nothing_pending(gql, admin_key))
    first_ids = [d.webhook_id for d in receiver.accepted()]
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()

    result = await gql(REDELIVER, {"id": endpoint["id"], "since": since}, key=admin_key)

    assert result.data["redeliverWebhookEvents"]["queuedCount"] == 2
    await eventually(lambda: len(receiver.accepted()) == 4)
    again = receiver.accepted()[2:]
    assert sorted(d.webhook_id for d in again) == sorted(first_ids)
    assert {d.payload["type"] for d in again} == {CREATED}


async def _nothing_pending(gql: GraphQLClient, key: str) -> bool:
    listed = await gql(LIST_ENDPOINTS, key=key)
    return all(e["pendingCount"] == 0 for e in listed.data["webhookEndpoints"])
