"""Events benchmark: webhooks delivered per second to a loopback receiver, and mail
delivery with and without webhooks being delivered beside it.

    .venv/bin/python -m bench.bench_events [--requests 5000] [--database-url URL]

1. A webhook endpoint points at a receiver (uvicorn, its own process, answers 204).
   A report of N waiting requests writes N `updated` events in its transaction (its
   time is printed); the webhook dispatcher delivers them (events per second).
2. The mail dispatcher alone sends those N emails to an SMTP sink (messages per second).
3. A second report of N; its emails are sent while the webhook dispatcher delivers
   the events of both at the same time: messages per second again, which should match 2.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from app.config import Settings
from app.events.endpoints import create_endpoint
from app.events.webhooks import WebhookDispatcher
from app.migrate import prepare_database
from app.models import Notification, WebhookDelivery
from app.notify.dispatcher import Dispatcher
from app.services.reports import report_items_back_in_stock
from app.services.rules import CatalogReference
from app.storage import Store, open_store
from bench.bench_delivery import ITEM, seed, start_sink, stop_sink

FIRST = CatalogReference("stores", "bench-item")
SECOND = CatalogReference("stores", "bench-item-2")


def run_receiver(port: int) -> None:
    """Answer every POST with 204 on 127.0.0.1:port until SIGTERM; print the count."""
    import uvicorn

    count = 0

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        nonlocal count
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            # Printed here: uvicorn re-raises SIGTERM once it has shut down.
            print(count, flush=True)
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        count += 1
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    print("ready", flush=True)
    server.run()


def start_receiver() -> tuple[subprocess.Popen[str], int]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    receiver = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_events", "--receiver", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None
    assert receiver.stdout.readline().strip() == "ready"
    time.sleep(1.0)  # uvicorn binds after printing nothing more; give it a moment
    return receiver, port


def stop_receiver(receiver: subprocess.Popen[str]) -> int:
    receiver.send_signal(signal.SIGTERM)
    output, _ = receiver.communicate(timeout=30)
    return int(output.strip().splitlines()[-1])


async def owed(store: Store) -> int:
    return int(await store.scalar(select(func.count()).select_from(WebhookDelivery)))


async def queued(store: Store) -> int:
    return int(await store.scalar(select(func.count()).select_from(Notification)))


async def report(store: Store, reference: CatalogReference) -> None:
    started = time.perf_counter()
    count = await report_items_back_in_stock(
        store, item=ITEM, catalog_reference=reference
    )
    elapsed = time.perf_counter() - started
    print(
        f"report queued {count} notifications and wrote their events in {elapsed * 1000:.0f} ms"
    )


async def all_delivered(store: Store, webhooks: WebhookDispatcher) -> None:
    """Wait until nothing is owed any endpoint (the database is polled)."""
    pending = True
    while pending:
        await asyncio.sleep(0.1)
        pending = bool(await owed(store) or await webhooks.fan_out())


async def deliver_webhooks(store: Store, settings: Settings) -> float:
    webhooks = WebhookDispatcher(store, settings)
    started = time.perf_counter()
    delivered = 0
    while True:
        stats = await webhooks.drain()
        delivered += stats.delivered
        if not await owed(store) and not await webhooks.fan_out():
            break
    elapsed = time.perf_counter() - started
    await webhooks.close()
    print(
        f"webhooks: {delivered} events in {elapsed:.1f} s: {delivered / elapsed:.0f} events/s"
    )
    return elapsed


async def deliver_mail(dispatcher: Dispatcher, label: str) -> None:
    store = dispatcher.store
    total = await queued(store)
    started = time.perf_counter()
    await dispatcher.drain()
    elapsed = time.perf_counter() - started
    await dispatcher.close()
    print(
        f"mail {label}: {total} messages in {elapsed:.1f} s: {total / elapsed:.0f} messages/s"
    )


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-events-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    sink, smtp_port = start_sink()
    receiver, http_port = start_receiver()
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        mail_url=f"smtp://127.0.0.1:{smtp_port}",
        dispatch_in_serve=False,
        webhook_allow_private_targets=True,
    )
    store = open_store(settings)
    try:
        await prepare_database(store, settings)
        print(f"database: {store.dialect}; {args.requests} waiting requests per report")
        await seed(store, args.requests, one_by_one=False)
        await seed_second(store, args.requests)
        await create_endpoint(
            store,
            url=f"http://127.0.0.1:{http_port}/hooks",
            event_types=None,
            allow_private=True,
            max_endpoints=10,
        )

        print("-- 1. webhooks alone")
        await report(store, FIRST)
        await deliver_webhooks(store, settings)

        print("-- 2. mail alone")
        dispatcher = Dispatcher(store, settings)
        dispatcher.prepare()
        await deliver_mail(dispatcher, "alone")

        print("-- 3. mail while webhooks are delivered")
        await report(store, SECOND)
        webhooks = dispatcher.webhooks  # held back while its dispatcher sends mail
        await webhooks.start()
        await deliver_mail(dispatcher, "beside webhooks")
        await all_delivered(store, webhooks)
        await webhooks.stop()
    finally:
        received = stop_receiver(receiver)
        emails = stop_sink(sink)
        print(f"receiver got {received} POSTs, the SMTP sink {emails} messages")
        await store.dispose()


async def seed_second(store: Store, count: int) -> None:
    """As many waiting requests for the second item (same shoppers)."""
    from bench import bench_delivery

    original = bench_delivery.REFERENCE
    bench_delivery.REFERENCE = SECOND
    try:
        await seed(store, count, one_by_one=False)
    finally:
        bench_delivery.REFERENCE = original


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--receiver", type=int, metavar="PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.receiver:
        run_receiver(arguments.receiver)
    else:
        asyncio.run(main(arguments))
