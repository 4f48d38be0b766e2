"""The database knobs of a server deployment: pool, statement timeout, readiness."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from pathlib import Path

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import exc
from starlette.applications import Starlette

from app.config import Settings
from app.main import create_app
from app.storage import Transaction, open_store
from app.storage.engine import EngineStore
from app.storage.sqlite import checkpoints
from app.storage.sqlite.writer import SQLiteWriter
from tests.conftest import GraphQLClient
from tests.databases import PostgresDatabases
from tests.documents import GET_REQUEST, QUERY_REQUESTS, create

POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@POSTGRESQL
async def test_pool_size_and_overflow_come_from_settings(settings: Settings):
    configured = settings.model_copy(update={"db_pool_size": 3, "db_max_overflow": 2})
    store = EngineStore.for_settings(configured)
    try:
        assert store.engine.pool.size() == 3
        connections = [await store.engine.connect() for _ in range(5)]
        assert store.engine.pool.overflow() == 2
        for connection in connections:
            await connection.close()
    finally:
        await store.dispose()


@POSTGRESQL
async def test_statement_timeout_stops_a_slow_statement(settings: Settings):
    configured = settings.model_copy(update={"db_statement_timeout_ms": 200})
    store = open_store(configured)
    try:
        assert await store.scalar(sa.text("SHOW statement_timeout")) == "200ms"
        with pytest.raises(exc.DBAPIError, match="statement timeout"):
            await store.scalar(sa.text("SELECT pg_sleep(2)"))
    finally:
        await store.dispose()


@POSTGRESQL
async def test_statement_timeout_stops_a_slow_select_on_either_read_path(
    settings: Settings,
):
    configured = settings.model_copy(update={"db_statement_timeout_ms": 200})
    store = open_store(configured)
    slow = sa.select(sa.func.pg_sleep(2).label("slept"))
    try:
        # A Core SELECT: asyncpg's own pool with fast paths on, the engine's without.
        with pytest.raises(
            (exc.DBAPIError, asyncpg.QueryCanceledError), match="statement timeout"
        ):
            await store.rows(slow)
        assert await store.scalar(sa.select(sa.literal(1).label("one"))) == 1
    finally:
        await store.dispose()


@POSTGRESQL
async def test_readyz_fails_when_the_database_goes_away_and_healthz_does_not(
    app: Starlette,
    http: httpx.AsyncClient,
    database_url: str,
    postgres: PostgresDatabases,
):
    assert (await http.get("/readyz")).status_code == 200

    postgres.drop(sa.make_url(database_url).database)

    ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable"}
    assert (await http.get("/healthz")).status_code == 200


@POSTGRESQL
async def test_a_read_opens_no_transaction(app: Starlette):
    in_transaction: list[bool] = []

    def note(connection: sa.Connection, *_: object) -> None:
        driver = connection.connection.driver_connection
        in_transaction.append(driver.is_in_transaction())

    engine = app.state.store.engine.sync_engine
    sa.event.listen(engine, "after_cursor_execute", note)
    try:
        await app.state.store.scalar(sa.text("SELECT 1"))
    finally:
        sa.event.remove(engine, "after_cursor_execute", note)

    # No BEGIN before it, no ROLLBACK after it: one round trip.
    assert in_transaction == [False]


async def _cut_connections(database_url: str) -> None:
    """End the service's server processes on the test's database (as a restart does),
    and wait until they are gone."""
    server = sa.make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql")
    admin = await asyncpg.connect(server.render_as_string(hide_password=False))
    mine = "datname = $1 AND application_name = 'backinstock'"
    database = sa.make_url(database_url).database
    try:
        cut = await admin.fetchval(
            f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {mine}",
            database,
        )
        assert cut > 0
        for _ in range(200):
            left = await admin.fetchval(
                f"SELECT count(*) FROM pg_stat_activity WHERE {mine}", database
            )
            if left == 0:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the cut server processes are still there")
    finally:
        await admin.close()


def _cut_connections_unnoticed(database_url: str) -> None:
    """Cut them while the test's loop (the service's) is held, so the pool cannot know:
    the next statement meets a dead connection."""
    with concurrent.futures.ThreadPoolExecutor(1) as elsewhere:
        elsewhere.submit(asyncio.run, _cut_connections(database_url)).result()


@POSTGRESQL
async def test_reads_and_writes_work_right_after_the_servers_connections_are_cut(
    settings, gql, collecting, admin_key
):
    created = await create(gql, email="before@example.com")

    await _cut_connections(settings.database_url)

    # The pool knows them closed: the write is given a live connection at once.
    after = await create(gql, email="after@example.com")
    assert after["email"] == "after@example.com"
    found = await gql(GET_REQUEST, {"id": created["id"]}, key=admin_key)
    assert found.errors == []
    assert found.data["backInStockNotificationRequest"]["id"] == created["id"]


@POSTGRESQL
async def test_a_read_on_a_connection_cut_unnoticed_is_asked_again(
    settings, gql, collecting, admin_key
):
    created = await create(gql, email="before@example.com")

    _cut_connections_unnoticed(settings.database_url)

    found = await gql(GET_REQUEST, {"id": created["id"]}, key=admin_key)
    assert found.errors == []
    assert found.data["backInStockNotificationRequest"]["id"] == created["id"]


@POSTGRESQL
async def test_a_write_on_a_connection_cut_unnoticed_is_run_again_once(
    settings, gql, collecting, admin_key
):
    await create(gql, email="before@example.com")

    _cut_connections_unnoticed(settings.database_url)

    # Its first statement meets the dead connection, before any COMMIT: the server
    # kept nothing of it, and it is run again on a live one.
    after = await create(gql, email="after@example.com")
    listed = await gql(QUERY_REQUESTS, {"first": 10}, key=admin_key)

    assert after["email"] == "after@example.com"
    edges = listed.data["backInStockNotificationRequests"]["edges"]
    emails = sorted(edge["node"]["email"] for edge in edges)
    assert emails == ["after@example.com", "before@example.com"]  # kept once


@POSTGRESQL
async def test_a_write_cut_after_its_first_statement_is_run_again_once(
    settings, app: Starlette
):
    runs: list[int] = []
    two = sa.select(sa.literal(2).label("two")).where(
        sa.literal(1) == sa.bindparam("one")
    )

    def body(tx: Transaction) -> list[object]:
        runs.append(1)
        tx.scalar(sa.select(sa.literal(1)))  # the transaction has begun
        if len(runs) == 1:
            _cut_connections_unnoticed(settings.database_url)
        # A reusable statement: on asyncpg itself with fast paths on.
        return tx.rows(two, {"one": 1})

    rows = await app.state.store.write(body)

    assert [row.two for row in rows] == [2]
    assert len(runs) == 2


async def test_readyz_is_ok_with_a_reachable_database(http: httpx.AsyncClient):
    response = await http.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u:p@db:5432/shop", "postgresql+asyncpg://u:p@db:5432/shop"),
        ("postgresql://u@db/shop", "postgresql+asyncpg://u@db/shop"),
        ("postgresql+asyncpg://u@db/shop", "postgresql+asyncpg://u@db/shop"),
        ("sqlite:///./shop.db", "sqlite+aiosqlite:///./shop.db"),
        ("sqlite+aiosqlite:///./shop.db", "sqlite+aiosqlite:///./shop.db"),
    ],
)
def test_database_urls_without_a_driver_get_the_async_one(given: str, used: str):
    assert Settings(_env_file=None, database_url=given).database_url == used


SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _wal_bytes(settings: Settings) -> int:
    wal = Path(settings.database_url.removeprefix("sqlite+aiosqlite:///") + "-wal")
    return wal.stat().st_size if wal.exists() else 0


@SQLITE
async def test_creates_keep_the_write_ahead_log_bounded(
    settings, gql, collecting, monkeypatch
):
    # Checkpoints run in the background; the writer restarts the log past the limit.
    monkeypatch.setattr(checkpoints, "WAL_RESTART_FRAMES", 50)
    monkeypatch.setattr(checkpoints, "CHECKPOINT_INTERVAL_SECONDS", 0.001)
    largest = 0
    for batch in range(10):  # 30 at once: the writer never waits for the checkpoints
        await asyncio.gather(
            *(
                create(
                    gql, email=f"s{batch}-{number}@example.com", item_id=f"i{number}"
                )
                for number in range(30)
            )
        )
        largest = max(largest, _wal_bytes(settings))

    # 300 creates write over 2,000 pages (8 MB) of log; restarted, it stays far smaller.
    assert largest < 2 * 1024 * 1024


@SQLITE
async def test_what_was_created_is_there_after_a_restart(
    settings, gql, collecting, admin_key
):
    created = [
        await create(gql, email=f"s{number}@example.com") for number in range(20)
    ]
    app = create_app(settings)  # a second server on the same file, started afterwards

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1"
        ) as http:
            again = GraphQLClient(http)
            for request in created:
                found = await again(GET_REQUEST, {"id": request["id"]}, key=admin_key)
                assert (
                    found.data["backInStockNotificationRequest"]["id"] == request["id"]
                )


async def test_a_long_log_starts_over_while_writes_go_on(tmp_path, monkeypatch):
    # Under steady writes the background checkpoint never sees the log fully copied at the
    # moment a transaction begins, so past WAL_RESTART_FRAMES the writer copies the last
    # frames itself, once a background pass has copied the rest.
    monkeypatch.setattr(checkpoints, "WAL_RESTART_FRAMES", 40)
    monkeypatch.setattr(checkpoints, "CHECKPOINT_INTERVAL_SECONDS", 0.001)
    path = tmp_path / "wal.db"
    writer = SQLiteWriter(str(path), ["PRAGMA journal_mode=WAL"], raw=None)

    def write_pages(tx: Transaction) -> None:
        tx.execute(sa.text("CREATE TABLE IF NOT EXISTS pages (body BLOB)"))
        tx.execute(sa.text("INSERT INTO pages VALUES (zeroblob(20000))"))

    largest = 0
    try:
        for _ in range(
            200
        ):  # 200 transactions of 6 pages: 4.8 MB of log unless restarted
            await writer.write(write_pages)
            largest = max(largest, Path(f"{path}-wal").stat().st_size)
    finally:
        await writer.close()

    assert largest < 1.5 * 1024 * 1024
