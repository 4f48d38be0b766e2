"""Delivery benchmark: queue 100,000 waiting requests of one item, then send them all.

Prints the time `reportItemsBackInStock` takes to queue them (target < 1 s), messages per
second delivered to a loopback aiosmtpd sink running in its own process (target >= 500/s)
and the dispatcher's resident memory while it streams the queue (target: flat).

    .venv/bin/python -m bench.bench_delivery [--requests 100000] [--database-url URL]

Requests are created through `app.services.requests.create_request`, the function behind
the create mutation, a thousand per transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from sqlalchemy import func, insert, select

from app.config import Settings
from app.migrate import prepare_database
from app.models import (
    Notification,
    NotificationRequest,
    RequestStatus,
    time_ordered_id,
    utc_now,
)
from app.notify.dispatcher import Dispatcher
from app.services.demand_rebuild import rebuild_item_demand
from app.services.reports import report_items_back_in_stock
from app.services.requests import _validated_request_values, create_request
from app.services.rules import CatalogReference, ItemDetails, NewRequest
from app.services.settings import start_collecting_requests
from app.storage import Store, open_store

APP_ID = "stores"
REFERENCE = CatalogReference(APP_ID, "bench-item")
ITEM = ItemDetails("Bench shoe", "24.50", "https://img.example/shoe.png")
SEED_CHUNK = 1000


# -- the sink: a separate process, so its CPU is not the dispatcher's ----------------------


class _Sink:
    """Accepts and counts every message."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        self.count += 1
        return "250 OK"


def run_sink(port: int) -> None:
    """Serve SMTP on 127.0.0.1:port until SIGTERM; print the message count."""
    from aiosmtpd.smtp import SMTP

    async def serve() -> None:
        handler = _Sink()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="sink"), "127.0.0.1", port
        )
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        await stop.wait()
        server.close()
        print(handler.count, flush=True)

    asyncio.run(serve())


def start_sink() -> tuple[subprocess.Popen[str], int]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_delivery", "--sink", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None
    assert sink.stdout.readline().strip() == "ready"
    return sink, port


def stop_sink(sink: subprocess.Popen[str]) -> int:
    sink.send_signal(signal.SIGTERM)
    output, _ = sink.communicate(timeout=30)
    return int(output.strip().splitlines()[-1])


# -- the benchmark --------------------------------------------------------------------------


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _new_request(index: int) -> NewRequest:
    return NewRequest(
        REFERENCE, f"shopper{index}@example.com", "https://shop.example/shoe"
    )


async def seed(store: Store, count: int, *, one_by_one: bool) -> float:
    """Store `count` waiting requests; the rows are exactly what the create mutation stores.

    By default they are built by the create service's own validation (`_validated_request_values`)
    and bulk-inserted a thousand at a time; `one_by_one` calls `create_request` per request
    (the mutation's path, several minutes for 100,000 on SQLite).
    """
    started = time.perf_counter()
    await start_collecting_requests(store, app_id=APP_ID, supported_app_ids=frozenset())
    for first in range(0, count, SEED_CHUNK):
        indexes = range(first, min(first + SEED_CHUNK, count))
        if one_by_one:
            for index in indexes:
                await create_request(store, request=_new_request(index), item=ITEM)
            continue
        now = utc_now()
        rows = [
            {
                **_validated_request_values(_new_request(index), ITEM),
                "id": time_ordered_id(now),
                "created_date": now,
            }
            for index in indexes
        ]
        insert_rows = insert(NotificationRequest.__table__)
        await store.write(
            lambda tx, rows=rows, insert_rows=insert_rows: tx.execute(insert_rows, rows)
        )
    if not one_by_one:  # rows written around the service: count its demand
        await store.write(rebuild_item_demand)
    return time.perf_counter() - started


async def report(store: Store) -> tuple[int, float]:
    started = time.perf_counter()
    outcome = await report_items_back_in_stock(
        store, item=ITEM, catalog_reference=REFERENCE
    )
    return outcome.queued_count, time.perf_counter() - started


async def deliver(
    store: Store, settings: Settings, total: int
) -> tuple[float, list[tuple[int, float]]]:
    """Drain the queue; sample RSS against progress every half second."""
    dispatcher = Dispatcher(store, settings)
    dispatcher.prepare()
    samples: list[tuple[int, float]] = []
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            left = await store.scalar(select(func.count()).select_from(Notification))
            samples.append((total - left, rss_mib()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=0.5)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    await dispatcher.drain()
    elapsed = time.perf_counter() - started
    done.set()
    await sampler
    await dispatcher.stop()
    samples.append((total, rss_mib()))
    return elapsed, samples


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    sink, port = start_sink()
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        mail_url=f"smtp://127.0.0.1:{port}",
        dispatch_in_serve=False,
    )
    store = open_store(settings)
    try:
        await prepare_database(store, settings)
        print(
            f"database: {store.dialect} ({'temporary file' if not args.database_url else 'given'})"
        )
        print(
            f"batch size {settings.delivery_batch_size}, lease {settings.delivery_lease_seconds:g} s"
        )

        seconds = await seed(store, args.requests, one_by_one=args.one_by_one)
        print(
            f"seeded {args.requests} waiting requests for one item in {seconds:.1f} s"
        )

        queued, seconds = await report(store)
        print(f"report queued {queued} notifications in {seconds * 1000:.0f} ms")

        rss_before = rss_mib()
        elapsed, samples = await deliver(store, settings, queued)
        received = stop_sink(sink)
        sent = await store.scalar(
            select(func.count()).where(
                NotificationRequest.status == RequestStatus.NOTIFICATION_SENT.value
            )
        )
        print(
            f"delivered {sent} in {elapsed:.1f} s: {sent / elapsed:.0f} messages/s "
            f"(sink received {received})"
        )
        peak = max(rss for _, rss in samples)
        print(f"RSS: {rss_before:.0f} MiB before delivery, peak {peak:.0f} MiB during")
        for fraction in (0.1, 0.25, 0.5, 0.75, 1.0):
            progress, rss = next(s for s in samples if s[0] >= fraction * queued)
            print(f"  RSS at {progress:>7} sent: {rss:.0f} MiB")
    finally:
        if sink.poll() is None:
            sink.kill()
        await store.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument(
        "--one-by-one",
        action="store_true",
        help="seed through create_request, one by one",
    )
    parser.add_argument("--sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.sink:
        run_sink(arguments.sink)
    else:
        asyncio.run(main(arguments))
