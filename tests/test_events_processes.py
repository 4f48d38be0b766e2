"""Events across processes: a subscriber of one server sees what another server did
(PostgreSQL), and a webhook dispatcher killed mid-delivery loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.config import Settings
from app.events.feed import LISTENER_NAME
from tests.conftest import GraphQLClient
from tests.delivery import create_requests, eventually
from tests.documents import CREATE_REQUEST, START_COLLECTING, new_request
from tests.receiver import Receiver
from tests.servers import running_server
from tests.subscriptions import ws_client
from tests.webhooks import add_endpoint

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Loopback receivers allowed; only the worker processes deliver."""
    return settings.model_copy(update={"webhook_allow_private_targets": True})


async def _create_on(base: str, email: str) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{base}/graphql",
            json={"query": CREATE_REQUEST, "variables": new_request(email)},
        )
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]["createBackInStockNotificationRequest"]["id"]


async def _terminate_listeners(database_url: str) -> int:
    url = make_url(database_url).set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        return len(
            await connection.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1",
                LISTENER_NAME,
            )
        )
    finally:
        await connection.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_subscriber_sees_what_another_server_process_did(
    database_url: str, tmp_path: Path
):
    # given: two servers on one database, a subscriber on the first
    with (
        running_server(database_url, tmp_path) as first,
        running_server(database_url, tmp_path) as second,
    ):
        key = first.mint_key()
        async with httpx.AsyncClient() as client:
            await client.post(
                second.graphql,
                json={"query": START_COLLECTING, "variables": {"appId": "stores"}},
                headers={"Authorization": f"Bearer {key}"},
            )
        ws_url = first.graphql.replace("http://", "ws://")
        async with ws_client(ws_url) as subscriber:
            await subscriber.init({"Authorization": f"Bearer {key}"})
            await subscriber.subscribe("1")
            await asyncio.sleep(0.2)

            # when: the second server creates a request
            created = await _create_on(second.base, "one@example.com")
            seen = await subscriber.next_event()

            # and the first server's listening connection is cut, then another comes
            assert await _terminate_listeners(database_url) >= 1
            again = await _create_on(second.base, "two@example.com")
            seen_again = await subscriber.next_event(seconds=20)

    # then
    assert (seen["type"], seen["requestId"]) == ("CREATED", created)
    assert seen["request"]["email"] == "one@example.com"
    assert seen_again["requestId"] == again


def _start_worker(
    settings: Settings, receiver: Receiver, tmp_path: Path, name: str
) -> subprocess.Popen[bytes]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DELIVERY_", "MAIL_", "DATABASE_", "WEBHOOK_"))
    }
    env.update(
        DATABASE_URL=settings.database_url,
        MAIL_URL=settings.mail_url,
        WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
        WEBHOOK_TIMEOUT_SECONDS="2",
        WEBHOOK_RETRY_BASE_SECONDS="0.05",
        WEBHOOK_RETRY_MAX_DELAY_SECONDS="0.2",
        WEBHOOK_BATCH_SIZE="10",
        WEBHOOK_CONNECTIONS="2",
        MAIL_TIMEOUT_SECONDS="1",
        DELIVERY_LEASE_SECONDS="4",
        DELIVERY_POLL_SECONDS="0.1",
        PYTHONPATH=str(ROOT),
    )
    with open(tmp_path / f"{name}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "app", "dispatch"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def test_a_webhook_dispatcher_killed_mid_delivery_loses_nothing(
    gql: GraphQLClient, admin_key: str, settings: Settings, tmp_path: Path
):
    # given: 40 created events and a slow receiver
    receiver = Receiver()
    receiver.start()
    try:
        await gql(START_COLLECTING, {"appId": "stores"}, key=admin_key)
        await add_endpoint(gql, admin_key, receiver)
        receiver.delay = 0.03
        ids = await create_requests(gql, 40)

        # when: the first dispatcher is killed in the middle of its work
        first = _start_worker(settings, receiver, tmp_path, "first")
        try:
            await eventually(lambda: len(receiver.accepted()) >= 5)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        assert len(receiver.accepted()) < 40

        # then: another one delivers the rest once the leases expire
        second = _start_worker(settings, receiver, tmp_path, "second")
        try:
            await eventually(
                lambda: {d.request_id for d in receiver.accepted()} == set(ids),
                limit=60,
            )
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
    finally:
        receiver.stop()
    by_request: dict[str, set[str]] = defaultdict(set)
    for delivery in receiver.accepted():
        by_request[delivery.request_id].add(delivery.webhook_id)
    # A resend after the crash is the same event, recognisable by its webhook-id.
    assert all(len(webhook_ids) == 1 for webhook_ids in by_request.values())
