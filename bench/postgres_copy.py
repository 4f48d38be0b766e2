"""Copy a seeded SQLite database into a PostgreSQL database of its own, for the bench.

The PostgreSQL schema is made by the service's migrations; every table's rows are read
through the models (so values arrive as the service's types) and sent with COPY, the
requests' indexes set aside meanwhile and made again after, then ANALYZE.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from app.migrate import upgrade_database

BATCH = 50_000


def _dsn(url: Any, database: str) -> str:
    url = url.set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


def _rows(sqlite_path: Path, table: Any) -> Any:
    """The table's rows in batches, values as the models' types make them."""
    engine = create_engine(f"sqlite:///{sqlite_path}")
    try:
        with engine.connect() as connection:
            result = connection.execution_options(yield_per=BATCH).execute(
                select(table)
            )
            for batch in result.partitions():
                yield [
                    tuple(json.dumps(v) if isinstance(v, dict) else v for v in row)
                    for row in batch
                ]
    finally:
        engine.dispose()


async def copy_to_postgres(
    sqlite_path: Path, server_url: str, name: str = "bench_demand"
) -> str:
    """A new database `name` on the server holding the SQLite file's rows; its URL."""
    server = make_url(server_url)
    admin = await asyncpg.connect(_dsn(server, server.database or "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = server.set(drivername="postgresql+asyncpg", database=name)
    await upgrade_database(url.render_as_string(hide_password=False))
    connection = await asyncpg.connect(_dsn(server, name))
    try:
        indexes = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = "
            "'notification_requests' AND indexname <> 'notification_requests_pkey'"
        )
        for index in indexes:
            await connection.execute(f'DROP INDEX "{index["indexname"]}"')
        for table in SQLModel.metadata.sorted_tables:
            columns = [column.name for column in table.columns]
            for batch in _rows(sqlite_path, table):
                await connection.copy_records_to_table(
                    table.name, records=batch, columns=columns
                )
        for index in indexes:
            await connection.execute(index["indexdef"])
        for table in ("reports", "notifications"):
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return url.render_as_string(hide_password=False)
