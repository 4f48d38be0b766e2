"""The bench's data on PostgreSQL: the same rows bench/seed.py writes to SQLite.

A database named after the data and the schema (`bench_<requests>_<items>_<fingerprint>`)
is made on the server of `--server-url`, migrated by the service's own migrations, then
filled with COPY (indexes set aside meanwhile and re-made after, as the SQLite seed does),
given the demand counters the service keeps, and analysed. Later runs find it and reuse
it; `--reseed` makes it again.

    .venv/bin/python -m bench.pg_seed --server-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.auth import create_api_key
from app.config import Settings
from app.migrate import upgrade_database
from app.models import NotificationRequest, RequestStatus
from app.permissions import Permission
from app.services.demand_rebuild import rebuild_item_demand
from app.storage import open_store
from bench import seed as seeding

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
_COLUMNS = [column.name for column in NotificationRequest.__table__.columns]


def database_name(requests: int, items: int) -> str:
    return f"bench_{requests}_{items}_{seeding.schema_fingerprint()}"


def service_url(server_url: str, name: str) -> str:
    """The service's DATABASE_URL for database `name` on that server."""
    url = make_url(server_url).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


def _dsn(server_url: str, name: str | None = None) -> str:
    url = make_url(server_url).set(drivername="postgresql")
    if name is not None:
        url = url.set(database=name)
    return url.render_as_string(hide_password=False)


def _record(row: dict[str, Any], columns: list[str]) -> tuple[Any, ...]:
    values = dict(row)
    values.setdefault("confirmed", True)  # as its server default (SQLite seed)
    options = values["options"]
    values["options"] = None if options is None else json.dumps(options)
    return tuple(values[name] for name in columns)


async def _exists(server_url: str, name: str) -> dict[str, Any] | None:
    admin = await asyncpg.connect(_dsn(server_url))
    try:
        found = await admin.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", name
        )
    finally:
        await admin.close()
    if not found:
        return None
    connection = await asyncpg.connect(_dsn(server_url, name))
    try:
        info = await connection.fetchval(
            "SELECT info FROM bench_seed_info LIMIT 1"
        )  # written last: a database without it is incomplete
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await connection.close()
    return json.loads(info) if info else None


async def _fill(
    server_url: str, name: str, requests: int, items: int, seed: int
) -> None:
    connection = await asyncpg.connect(_dsn(server_url, name))
    try:
        await connection.execute("SET synchronous_commit = off")
        indexes = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 "
            "AND indexname NOT LIKE '%_pkey'",
            "notification_requests",
        )
        for index in indexes:
            await connection.execute(f'DROP INDEX "{index["indexname"]}"')
        processing: list[tuple[uuid.UUID, datetime]] = []
        for rows in seeding.build_rows(requests, items, seed):
            # The columns the seed writes; the others take their defaults.
            columns = [name for name in _COLUMNS if name in rows[0]]
            for row in rows:
                if row["status"] == RequestStatus.PROCESSING.value:
                    row["status"] = RequestStatus.RECEIVED.value
                    processing.append((row["id"], row["created_date"]))
            await connection.copy_records_to_table(
                "notification_requests",
                records=[_record(r, columns) for r in rows],
                columns=columns,
            )
        for index in indexes:
            await connection.execute(index["indexdef"])
        now = datetime.now(UTC)
        await connection.executemany(
            "INSERT INTO collection_states VALUES ($1, $2, $3)",
            [(app_id, collecting, now) for app_id, _, collecting in seeding.APPS],
        )
        report_id = await connection.fetchval(
            "INSERT INTO reports (item_name, item_price, created_date) "
            "VALUES ('Seeded report', '1.00', $1) RETURNING id",
            now,
        )
        await connection.copy_records_to_table(
            "notifications",
            records=[
                (request_id, created, report_id, 1, 0, now + timedelta(days=3650), now)
                for request_id, created in processing
            ],
            columns=[
                "request_id",
                "request_created_date",
                "report_id",
                "round",
                "attempts",
                "available_at",
                "created_date",
            ],
        )
        # VACUUM too: a database that has run a while has its visibility map set by
        # autovacuum, and index-only scans (counts) then read no table pages.
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()


async def _vacuum(url: str) -> None:
    """VACUUM (outside any transaction) after the counters were rebuilt."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()


async def seed(
    server_url: str = DEFAULT_SERVER,
    *,
    requests: int,
    items: int,
    seed: int = 1,
    reseed: bool = False,
) -> tuple[str, str]:
    """The seeded database's service URL and its API key (made when missing)."""
    name = database_name(requests, items)
    info = None if reseed else await _exists(server_url, name)
    if info is not None:
        return service_url(server_url, name), info["api_key"]
    started = time.perf_counter()
    admin = await asyncpg.connect(_dsn(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = service_url(server_url, name)
    await upgrade_database(url)
    await _fill(server_url, name, requests, items, seed)
    store = open_store(Settings(_env_file=None, database_url=url))
    try:
        # The counters the service keeps as it goes (app/services/demand.py).
        await store.write(rebuild_item_demand)
        await store.write(lambda tx: tx.execute(text("ANALYZE")))
        await _vacuum(url)
        _, key = await create_api_key(
            store, name="bench", permissions=frozenset(Permission)
        )
    finally:
        await store.dispose()
    connection = await asyncpg.connect(_dsn(server_url, name))
    try:
        await connection.execute("CREATE TABLE bench_seed_info (info text)")
        await connection.execute(
            "INSERT INTO bench_seed_info VALUES ($1)", json.dumps({"api_key": key})
        )
    finally:
        await connection.close()
    print(
        f"seeded {requests:,} requests into PostgreSQL database {name} "
        f"in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return url, key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", default=DEFAULT_SERVER)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    url, _ = asyncio.run(
        seed(
            args.server_url,
            requests=args.requests,
            items=args.items,
            reseed=args.reseed,
        )
    )
    print(url)


if __name__ == "__main__":
    main()
