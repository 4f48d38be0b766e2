"""Several processes on one PostgreSQL database: two `serve` processes behind no balancer,
two `dispatch` workers draining one queue. Real processes on loopback ports."""

from __future__ import annotations

import asyncio
import email
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from app.auth import create_api_key
from app.config import Settings
from app.models import Notification, NotificationRequest, RequestStatus, utc_now
from app.permissions import Permission
from app.services.rules import CatalogReference, catalog_reference_key, contact_id_for
from app.storage import Store, open_store
from tests.conftest import LIMITS_OFF_ENV
from tests.databases import PostgresDatabases
from tests.documents import CREATE_REQUEST, QUERY_REQUESTS, REPORT, START_COLLECTING

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 60


class Processes:
    """`python -m app ...` processes started by one test, stopped when it ends."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(
        self, name: str, *args: str, **env: str
    ) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.directory / f"{name}.log"
        # The limits on visitors' creates are off: these tests send many of them.
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            **LIMITS_OFF_ENV,
            **env,
        }
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "app", *args],
                cwd=self.directory,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.started.append((process, log))
        return process, log

    def stop_all(self) -> list[int]:
        for process, _ in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = []
        for process, _ in self.started:
            try:
                codes.append(process.wait(timeout=30))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        return codes


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_until(
    check: Callable[[], Any], what: str, timeout: float, logs: list[Path]
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    output = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)
    raise AssertionError(f"timed out waiting for {what}\n{output}")


async def mint_admin_key(url: str) -> str:
    store = open_store(Settings(_env_file=None, database_url=url))
    try:
        _, key = await create_api_key(
            store, name="test", permissions=frozenset(Permission)
        )
        return key
    finally:
        await store.dispose()


async def post(
    client: httpx.AsyncClient,
    base: str,
    query: str,
    variables: dict[str, Any],
    key: str | None = None,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = await client.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables},
        headers=headers,
    )
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


@pytest.fixture
def empty_postgres_url(postgres: PostgresDatabases) -> Iterator[str]:
    name = postgres.create_empty()
    yield postgres.url_for(name)
    postgres.release(name)


async def test_identical_creates_sent_to_two_servers_at_once_leave_one_request(
    empty_postgres_url: str, processes: Processes, tmp_path: Path
):
    # given: two servers starting together on one empty database (both migrate it)
    ports = [free_port(), free_port()]
    servers = [
        processes.start(
            f"serve-{port}",
            "serve",
            "--port",
            str(port),
            DATABASE_URL=empty_postgres_url,
            DISPATCH_IN_SERVE="false",
            MAIL_URL=f"file://{tmp_path / 'outbox'}",
        )
        for port in ports
    ]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    logs = [log for _, log in servers]
    async with httpx.AsyncClient(
        timeout=30, limits=httpx.Limits(max_connections=200)
    ) as client:

        async def both_ready() -> bool:
            for base in bases:
                try:
                    if (await client.get(f"{base}/readyz")).status_code != 200:
                        return False
                except httpx.TransportError:
                    return False
            return True

        await wait_until(
            both_ready, "both servers to be ready", START_TIMEOUT_SECONDS, logs
        )
        key = await mint_admin_key(empty_postgres_url)
        await post(client, bases[0], START_COLLECTING, {"appId": "stores"}, key)

        # when: for each of 20 items, 10 identical creates, alternating between servers
        def variables(item: int) -> dict[str, Any]:
            return {
                "request": {
                    "catalogReference": {
                        "appId": "stores",
                        "catalogItemId": f"item-{item}",
                        "options": {"size": 42, "colour": "blue"},
                    },
                    "email": "Shopper@Example.com",
                },
                "itemDetails": {"name": "Shoe", "price": "10"},
            }

        calls = [
            (item, post(client, bases[copy % 2], CREATE_REQUEST, variables(item)))
            for copy in range(10)
            for item in range(20)
        ]
        results = await asyncio.gather(*(call for _, call in calls))

        # then: each item has one request, and every create returned it
        ids_by_item: dict[int, set[str]] = {}
        for (item, _), data in zip(calls, results, strict=True):
            ids_by_item.setdefault(item, set()).add(
                data["createBackInStockNotificationRequest"]["id"]
            )
        assert all(len(ids) == 1 for ids in ids_by_item.values()), ids_by_item
        counted = await post(client, bases[1], QUERY_REQUESTS, {"first": 0}, key)
    assert counted["backInStockNotificationRequests"]["totalCount"] == 20
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
    assert set(processes.stop_all()) <= {0, -signal.SIGTERM}


# ------------------------------------------------------------------------ two dispatchers

QUEUED = 10_000


async def seed_waiting_requests(url: str, count: int) -> CatalogReference:
    """`count` RECEIVED requests for one item, inserted in bulk (the API would be slow)."""
    reference = CatalogReference(
        app_id="stores", catalog_item_id="shoe-1", options=None
    )
    key = catalog_reference_key(reference)
    now = utc_now()
    rows = []
    for index in range(count):
        address = f"shopper{index}@example.com"
        rows.append(
            {
                "id": uuid.uuid4(),
                "app_id": reference.app_id,
                "catalog_item_id": reference.catalog_item_id,
                "options": None,
                "catalog_reference_key": key,
                "email": address,
                "contact_id": contact_id_for(address),
                "status": RequestStatus.RECEIVED.value,
                "auto_notified": None,
                "created_date": now,
                "item_url": None,
                "item_name": "Shoe",
                "item_price": "10",
                "item_image": None,
                "delivery_round": 0,
                "delivery_attempts": 0,
            }
        )
    store = open_store(Settings(_env_file=None, database_url=url))
    try:
        for start in range(0, count, 2000):
            chunk = rows[start : start + 2000]
            await store.write(
                lambda tx, chunk=chunk: tx.execute(insert(NotificationRequest), chunk)
            )
    finally:
        await store.dispose()
    return reference


@pytest.fixture
def postgres_url(postgres: PostgresDatabases) -> Iterator[str]:
    name = postgres.create()
    yield postgres.url_for(name)
    postgres.release(name)


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    store = open_store(Settings(_env_file=None, database_url=postgres_url))
    yield store
    await store.dispose()


async def test_two_dispatchers_deliver_each_of_10000_notifications_exactly_once(
    postgres_url: str, store: Store, processes: Processes, tmp_path: Path
):
    # given: 10,000 waiting requests and two dispatch workers, each writing its own outbox
    await seed_waiting_requests(postgres_url, QUEUED)
    outboxes = [tmp_path / "outbox-a", tmp_path / "outbox-b"]
    workers = [
        processes.start(
            f"dispatch-{index}",
            "dispatch",
            DATABASE_URL=postgres_url,
            MAIL_URL=f"file://{outbox}",
            MAIL_FROM="Shop <no-reply@shop.example>",
        )
        for index, outbox in enumerate(outboxes)
    ]
    logs = [log for _, log in workers]

    async def both_delivering() -> bool:
        return all("delivering to" in log.read_text() for log in logs)

    await wait_until(
        both_delivering, "both dispatchers to start", START_TIMEOUT_SECONDS, logs
    )

    # when: one report queues them all (through the API of an in-process server)
    key = await mint_admin_key(postgres_url)
    from app.main import create_app

    api = create_app(
        Settings(_env_file=None, database_url=postgres_url, dispatch_in_serve=False)
    )
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1"
        ) as client:
            reported = await post(
                client,
                "",
                REPORT,
                {
                    "itemDetails": {"name": "Shoe", "price": "10"},
                    "options": {
                        "catalogReference": {
                            "appId": "stores",
                            "catalogItemId": "shoe-1",
                        }
                    },
                },
                key,
            )
    assert reported == {"reportItemsBackInStock": {"queuedCount": QUEUED}}
    started = time.monotonic()

    async def drained() -> bool:
        queued = await store.scalar(select(func.count()).select_from(Notification))
        sent = await store.scalar(
            select(func.count()).where(
                NotificationRequest.status == RequestStatus.NOTIFICATION_SENT.value,
                NotificationRequest.auto_notified.is_(True),
            )
        )
        return queued == 0 and sent == QUEUED

    await wait_until(drained, "the queue to drain", 300, logs)
    elapsed = time.monotonic() - started
    assert processes.stop_all() == [0, 0]

    # then: every request got exactly one email, written by one of the two workers
    delivered = [sorted(outbox.glob("*.eml")) for outbox in outboxes]
    assert all(delivered), f"a worker delivered nothing: {[len(d) for d in delivered]}"
    names = [path.name for paths in delivered for path in paths]
    assert len(names) == len(set(names)) == QUEUED
    requests = {
        str(row.id): (row.email, row.delivery_round)
        for row in await store.rows(select(NotificationRequest.__table__))
    }
    message_ids = set()
    for path in (path for paths in delivered for path in paths):
        message = email.message_from_bytes(path.read_bytes())
        recipient, round = requests[path.name.split(".")[0]]
        assert message["To"] == recipient
        message_ids.add(message["Message-ID"])
        assert (
            message["Message-ID"] == f"<{path.name.split('.')[0]}.{round}@shop.example>"
        )
    assert len(message_ids) == QUEUED
    print(
        f"\n{QUEUED} notifications by two dispatchers in {elapsed:.1f} s "
        f"({[len(d) for d in delivered]} per worker)"
    )
