"""The database knobs of a server deployment: pool, statement timeout, readiness."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import exc
from starlette.applications import Starlette

from app.config import Settings
from app.db import Database
from tests.databases import PostgresDatabases

POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@POSTGRESQL
async def test_pool_size_and_overflow_come_from_settings(settings: Settings):
    configured = settings.model_copy(update={"db_pool_size": 3, "db_max_overflow": 2})
    database = Database(configured)
    try:
        assert database.write_engine.pool.size() == 3
        assert database.write_engine.pool._max_overflow == 2
    finally:
        await database.dispose()


@POSTGRESQL
async def test_statement_timeout_stops_a_slow_statement(settings: Settings):
    configured = settings.model_copy(update={"db_statement_timeout_ms": 200})
    database = Database(configured)
    try:
        async with database.reading() as session:
            assert await session.scalar(sa.text("SHOW statement_timeout")) == "200ms"
        with pytest.raises(exc.DBAPIError, match="statement timeout"):
            async with database.reading() as session:
                await session.execute(sa.text("SELECT pg_sleep(2)"))
    finally:
        await database.dispose()


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
