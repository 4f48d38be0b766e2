"""Seed a realistic benchmark database through the service's own tables and rules.

Rows are built with the service's value functions (`catalog_reference_key`,
`contact_id_for`, `normalize_email`) and written with bulk Core inserts into the tables
of `app.models`; the indexes are the models' own, created after the rows (much faster than
maintaining eleven indexes row by row). Deterministic for a given `--seed`.

    .venv/bin/python -m bench.seed --db bench/.data/bench.db --requests 1000000 --items 50000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert
from sqlmodel import SQLModel

from app.auth import create_api_key
from app.config import Settings
from app.models import (
    CollectionState,
    DailyRequestStats,
    Notification,
    NotificationRequest,
    Report,
    RequestStatus,
    time_ordered_id,
)
from app.permissions import Permission
from app.services.demand import day_of
from app.services.demand_rebuild import rebuild_item_demand
from app.services.rules import (
    CatalogReference,
    catalog_reference_key,
    contact_id_for,
    normalize_email,
)
from app.storage import Transaction, open_store
from bench.seed_info import (  # runs read these from here too
    SEED_VERSION,
    SeedInfo,
    info_path,
    schema_fingerprint,
)
from bench.seed_info import is_current as is_current
from bench.seed_info import read_info as read_info

# A few catalog apps, weighted like a real shop mix; the last one stopped collecting.
APPS: list[tuple[str, float, bool]] = [
    ("215238eb-22a5-4c36-9e7b-e7c08025e04e", 0.60, True),  # Wix Stores
    ("1380b703-ce81-ff05-f115-39571d94dfcd", 0.25, True),  # Wix Stores (catalog v3)
    ("bench-pos-catalog", 0.10, True),
    ("bench-legacy-catalog", 0.05, False),
]
SHOPPERS_PER_REQUEST = 0.25  # 250,000 shoppers for 1,000,000 requests
BATCH = 20_000


def _item_counts(requests: int, items: int, rng: random.Random) -> list[int]:
    """Requests per item: a long tail (Zipf-like), every item asked for at least once."""
    weights = [1.0 / (rank + 20) ** 0.9 for rank in range(items)]
    total = sum(weights)
    spare = requests - items
    counts = [1 + int(spare * w / total) for w in weights]
    for index in rng.sample(range(items), requests - sum(counts)):
        counts[index] += 1
    rng.shuffle(counts)
    return counts


def _options(rng: random.Random) -> dict[str, Any] | None:
    roll = rng.random()
    if roll < 0.55:
        return None
    if roll < 0.80:
        return {"variantId": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
    return {
        "options": {
            "Size": rng.choice(["XS", "S", "M", "L", "XL"]),
            "Color": rng.choice(["Red", "Blue", "Black", "White", "Green"]),
        }
    }


def _status(age: float, rng: random.Random) -> tuple[str, bool | None, int]:
    """(status, autoNotified, deliveryRound): older requests were more often sent."""
    roll = rng.random()
    sent = 0.45 * age
    if roll < sent:
        return RequestStatus.NOTIFICATION_SENT.value, rng.random() < 0.9, 1
    if roll < sent + 0.03:
        return RequestStatus.FAILED.value, True, 1
    if roll < sent + 0.035:
        return RequestStatus.PROCESSING.value, None, 0
    return RequestStatus.RECEIVED.value, None, 0


def build_rows(requests: int, items: int, seed: int) -> Iterator[list[dict[str, Any]]]:
    """The request rows in creation order, in batches."""
    rng = random.Random(seed)
    app_ids = [app_id for app_id, _, _ in APPS]
    app_weights = [weight for _, weight, _ in APPS]
    references: list[CatalogReference] = []
    keys: list[str] = []
    for _ in range(items):
        app_id = rng.choices(app_ids, app_weights)[0]
        item_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        reference = CatalogReference(app_id, item_id, _options(rng))
        references.append(reference)
        keys.append(catalog_reference_key(reference))
    counts = _item_counts(requests, items, rng)
    shoppers = max(int(requests * SHOPPERS_PER_REQUEST), max(counts) + 1)
    # j-th request of item i comes from shopper (i*a + j*b) mod shoppers: never the same
    # shopper twice for one item, as the open-request unique index wants.
    step = 104_729  # a prime, so j -> j*step mod shoppers is one-to-one
    if shoppers % step == 0:
        shoppers += 1
    pairs = [(item, j) for item, count in enumerate(counts) for j in range(count)]
    rng.shuffle(pairs)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=365)
    span = timedelta(days=365).total_seconds()
    contact_ids: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for position, (item, j) in enumerate(pairs):
        reference = references[item]
        shopper = (item * 7_919 + j * step) % shoppers
        email = normalize_email(f"Shopper{shopper}@example{shopper % 97}.com")
        contact = contact_ids.get(email)
        if contact is None:
            contact = contact_ids[email] = contact_id_for(email)
        age = 1.0 - position / len(pairs)
        status, auto_notified, round_ = _status(age, rng)
        created = start + timedelta(seconds=span * position / len(pairs) + rng.random())
        rows.append(
            {
                "id": time_ordered_id(created, rng.getrandbits),
                "app_id": reference.app_id,
                "catalog_item_id": reference.catalog_item_id,
                "options": reference.options,
                "catalog_reference_key": keys[item],
                "email": email,
                "contact_id": contact,
                "status": status,
                "open_request": None
                if status == RequestStatus.NOTIFICATION_SENT.value
                else True,
                "auto_notified": auto_notified,
                "created_date": created,
                "item_url": (
                    f"https://shop{item % 50}.example.com/product/{reference.catalog_item_id}"
                    if item % 5
                    else None
                ),
                "item_name": f"Item {item}",
                "item_price": f"{(item % 200) + 0.99:.2f}",
                "item_image": f"https://static.example.com/media/{item}.jpg"
                if item % 3
                else None,
                "delivery_round": round_,
                "delivery_attempts": 1 if status == RequestStatus.FAILED.value else 0,
                "last_delivery_error": (
                    "550 mailbox unavailable"
                    if status == RequestStatus.FAILED.value
                    else None
                ),
            }
        )
        if len(rows) == BATCH:
            yield rows
            rows = []
    if rows:
        yield rows


async def _make_schema(db: Path) -> None:
    """The schema as the service makes it: its migrations, or its models before those."""
    url = f"sqlite+aiosqlite:///{db}"
    try:
        from app.migrate import upgrade_database
    except ImportError:
        upgrade_database = None
    if upgrade_database is not None:
        await upgrade_database(url)
        return
    store = open_store(
        Settings(_env_file=None, database_url=url, dispatch_in_serve=False)
    )
    try:
        await store.write(lambda tx: SQLModel.metadata.create_all(tx.connection))
    finally:
        await store.dispose()


def _write(db: Path, batches: Iterator[list[dict[str, Any]]]) -> None:
    """Rows in bulk with the table's indexes set aside, then those indexes re-made.

    The indexes are dropped and re-created from their own DDL (as the schema step wrote it
    into sqlite_master), which is much faster than maintaining them row by row.
    """
    asyncio.run(_make_schema(db))
    engine = create_engine(f"sqlite:///{db}")
    requests_table = NotificationRequest.__table__
    with engine.begin() as connection:
        for pragma in ("synchronous=OFF", "cache_size=-400000", "temp_store=MEMORY"):
            connection.exec_driver_sql(f"PRAGMA {pragma}")
        indexes = connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (requests_table.name,),
        ).all()
        for name, _ in indexes:
            connection.exec_driver_sql(f'DROP INDEX "{name}"')
        processing: list[dict[str, Any]] = []
        per_day: dict[tuple[datetime, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for rows in batches:
            _count_days(rows, per_day)
            # PROCESSING is read from the queue (app.services.request_view): such a
            # request is stored RECEIVED, with a queued notification (below).
            queued = [r for r in rows if r["status"] == RequestStatus.PROCESSING.value]
            for row in queued:
                row["status"] = RequestStatus.RECEIVED.value
            connection.execute(insert(requests_table), rows)
            processing.extend(queued)
        for _, sql in indexes:
            connection.exec_driver_sql(sql)
        now = datetime.now(UTC)
        connection.execute(
            insert(CollectionState.__table__),
            [
                {
                    "app_id": app_id,
                    "collecting_requests": collecting,
                    "updated_date": now,
                }
                for app_id, _, collecting in APPS
            ],
        )
        # PROCESSING requests have their email queued, as a report leaves them.
        report_id = connection.execute(
            insert(Report.__table__)
            .values(item_name="Seeded report", item_price="1.00", created_date=now)
            .returning(Report.__table__.c.id)
        ).scalar_one()
        if processing:
            connection.execute(
                insert(Notification.__table__),
                [
                    {
                        "request_id": row["id"],
                        "request_created_date": row["created_date"],
                        "report_id": report_id,
                        "round": 1,
                        "attempts": 0,
                        "available_at": now + timedelta(days=3650),
                        "created_date": now,
                    }
                    for row in processing
                ],
            )
        # The demand counters the service keeps as it goes (app/services/demand.py).
        rebuild_item_demand(Transaction(connection))
        connection.execute(
            insert(DailyRequestStats.__table__),
            [
                {
                    "day": day,
                    "app_id": app_id,
                    "shard": 0,
                    "created_count": created,
                    "notified_count": notified,
                    "failed_count": failed,
                }
                for (day, app_id), (created, notified, failed) in per_day.items()
            ],
        )
    engine.dispose()


def _count_days(
    rows: list[dict[str, Any]], per_day: dict[tuple[datetime, str], list[int]]
) -> None:
    """Requests created, notified and failed per day and app.

    A sent or failed request was so up to two weeks after its creation, and before now:
    the delay comes from its id, so the rows drawn stay as they were.
    """
    now = datetime.now(UTC)
    for row in rows:
        created = row["created_date"]
        per_day[(day_of(created), row["app_id"])][0] += 1
        status = row["status"]
        if status not in (
            RequestStatus.NOTIFICATION_SENT.value,
            RequestStatus.FAILED.value,
        ):
            continue
        hours = min(14 * 24, int((now - created).total_seconds() // 3600))
        event = day_of(created + timedelta(hours=row["id"].int % max(hours, 1)))
        column = 1 if status == RequestStatus.NOTIFICATION_SENT.value else 2
        per_day[(event, row["app_id"])][column] += 1


async def _mint_key(db: Path) -> str:
    store = open_store(
        Settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{db}",
            dispatch_in_serve=False,
        )
    )
    try:
        _, key = await create_api_key(
            store, name="bench", permissions=frozenset(Permission)
        )
    finally:
        await store.dispose()
    return key


def seed(
    db: Path, *, requests: int, items: int, seed: int = 1, quiet: bool = False
) -> SeedInfo:
    started = time.perf_counter()
    db.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", ".json"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    _write(db, build_rows(requests, items, seed))
    key = asyncio.run(_mint_key(db))
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    info = SeedInfo(
        version=SEED_VERSION,
        requests=requests,
        items=items,
        seed=seed,
        schema=schema_fingerprint(),
        api_key=key,
        seconds=round(time.perf_counter() - started, 1),
    )
    info_path(db).write_text(json.dumps(asdict(info), indent=2))
    if not quiet:
        print(
            f"seeded {requests:,} requests over {items:,} items into {db} "
            f"in {info.seconds:.1f} s",
            flush=True,
        )
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", type=Path, default=Path("bench/.data/bench-1000000-50000.db")
    )
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    seed(args.db, requests=args.requests, items=args.items, seed=args.seed)


if __name__ == "__main__":
    main()
