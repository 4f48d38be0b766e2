"""Fixtures: a fresh database per test, the real ASGI app, a clock and a GraphQL caller."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette

from app.auth import create_api_key
from app.config import Settings
from app.graphql.schema import BackInStockSchema, build_schema
from app.main import create_app
from app.models import utc_now
from app.permissions import Permission
from app.services import built_statements
from tests.databases import (
    PostgresDatabases,
    copy_sqlite,
    migrated_sqlite_template,
    sqlite_url,
)
from tests.mailbox import Mailbox
from tests.seeded import SEEDED_FIXTURES, SeededDatabases

DATABASES = ["sqlite", "postgresql"]
# The limits on visitors' creates, off (app.services.limits).
LIMITS_OFF: dict[str, Any] = {
    "rate_limit_per_client": "",
    "rate_limit_per_email": "",
    "max_open_requests_per_email": 0,
}
# The same, for server processes.
LIMITS_OFF_ENV = {name.upper(): str(value) for name, value in LIMITS_OFF.items()}


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: two workers per CPU, up to eight (one per CPU beyond). Many tests
    mostly wait (for a server process to start, a lease to expire, a timeout to pass),
    and a second worker per CPU runs meanwhile; past eight, each worker's PostgreSQL
    connections would count more than the waits. PYTEST_XDIST_AUTO_NUM_WORKERS, when
    set, decides instead."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cpus = len(os.sched_getaffinity(0))
    return max(cpus, min(2 * cpus, 8))


@pytest.fixture(autouse=True)
def _no_statements_kept_from_another_test() -> None:
    """Kept statements embed the planners' thresholds, which tests change."""
    built_statements.forget_all()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    """The PostgreSQL server of TEST_DATABASE_URL; those runs skip when it is unset."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL runs skipped")
    databases = PostgresDatabases(server_url)
    yield databases
    databases.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database without any table."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    postgres: PostgresDatabases = request.getfixturevalue("postgres")
    name = postgres.create_empty()
    yield postgres.url_for(name)
    postgres.release(name)


@pytest.fixture
async def engine(empty_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on `empty_url`, for what the migrations leave there."""
    engine = create_async_engine(empty_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session: each test gets a copy."""
    return migrated_sqlite_template(tmp_path_factory.mktemp("template") / "template.db")


@pytest.fixture(scope="session")
def seeded_databases(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> SeededDatabases:
    """SQLite files holding data seeded once for many tests (tests/seeded.py)."""
    return SeededDatabases(tmp_path_factory.mktemp("seeded"), sqlite_template)


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at the head revision for one test: a SQLite file, or a
    PostgreSQL database. Both are copies of a template migrated once per session
    (tests/test_migrations.py starts from empty databases instead).

    Every test that touches the database runs on both; a test can pin one with
    `@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)`.
    """
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        yield sqlite_url(copy_sqlite(template, tmp_path / "test.db"))
        return
    postgres: PostgresDatabases = request.getfixturevalue("postgres")
    name = postgres.create()
    yield postgres.url_for(name)
    postgres.release(name)


@pytest.fixture(scope="session")
def session_settings() -> Settings:
    """The tests' settings, read once: the environment applies (e.g. FAST_PATHS)."""
    return Settings(
        _env_file=None,
        dispatch_in_serve=False,
        # Hundreds of apps start in one test process; tests/test_garbage.py covers it.
        tune_garbage_collector=False,
        # Tests create far more than a visitor may: the limits' own tests turn them on.
        **LIMITS_OFF,
    )


@pytest.fixture
def settings(session_settings: Settings, database_url: str, tmp_path: Path) -> Settings:
    """The settings of one test: its own database and outbox."""
    return session_settings.model_copy(
        update={
            "database_url": database_url,
            "mail_url": f"file://{tmp_path / 'outbox'}",
        }
    )


class ManualClock:
    """A clock the test moves by hand: it reads the same instant until `advance`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, *, ms: float = 0, seconds: float = 0) -> None:
        self.now += timedelta(milliseconds=ms, seconds=seconds)


@pytest.fixture
def clock() -> ManualClock:
    """The app's clock, for a test that asks for it (others run on the real time).

    It starts at the current time on a whole millisecond, as a request id records it.
    """
    now = datetime.now(UTC)
    return ManualClock(now.replace(microsecond=now.microsecond // 1000 * 1000))


# Settings that differ from test to test and that the schema never reads.
_PER_TEST_SETTINGS = {"database_url", "mail_url"}


# Schemas built so far in this process, by the settings they were built with.
_SCHEMAS: dict[frozenset[tuple[str, Any]], BackInStockSchema] = {}


@pytest.fixture(scope="session")
def schemas() -> dict[frozenset[tuple[str, Any]], BackInStockSchema]:
    """Schemas built so far, by the settings they were built with.

    Building one (and validating each document again with it) costs more than the rest
    of an app's start; apps of the same settings share one, as in a server process.
    """
    return _SCHEMAS


def shared_schema(settings: Settings) -> BackInStockSchema:
    """The schema of `settings`, for the tests' own `create_app` calls."""
    return schema_for(settings, _SCHEMAS)


def schema_for(
    settings: Settings, schemas: dict[frozenset[tuple[str, Any]], BackInStockSchema]
) -> BackInStockSchema:
    key = frozenset(
        (name, value)
        for name, value in settings.model_dump().items()
        if name not in _PER_TEST_SETTINGS
    )
    if key not in schemas:
        schemas[key] = build_schema(settings)
    return schemas[key]


@pytest.fixture
async def app(
    settings: Settings,
    schemas: dict[frozenset[tuple[str, Any]], BackInStockSchema],
    request: pytest.FixtureRequest,
) -> AsyncIterator[Starlette]:
    """The app, started; on the test's `clock` when the test uses that fixture, on a
    database that holds the data of the test's seeded fixtures (tests/seeded.py)."""
    for name in request.fixturenames:
        if name in SEEDED_FIXTURES:
            request.getfixturevalue(name)
    clock = (
        request.getfixturevalue("clock") if "clock" in request.fixturenames else utc_now
    )
    application = create_app(
        settings, clock=clock, schema=schema_for(settings, schemas)
    )
    async with application.router.lifespan_context(application):
        yield application


@dataclass
class Result:
    status: int
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.body.get("errors") or []

    @property
    def codes(self) -> list[str]:
        return [error.get("extensions", {}).get("code") for error in self.errors]

    @property
    def violations(self) -> list[str]:
        return [
            violation["field"]
            for error in self.errors
            for violation in error.get("extensions", {}).get("fieldViolations", [])
        ]


class GraphQLClient:
    """Posts GraphQL documents to the app, as a visitor or with an API key."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Result:
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers=all_headers,
        )
        return Result(response.status_code, response.json())


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1"
    ) as client:
        yield client


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


async def mint_key(app: Starlette, *permissions: Permission) -> str:
    _, key = await create_api_key(
        app.state.store, name="test", permissions=frozenset(permissions or Permission)
    )
    return key


@pytest.fixture
async def admin_key(app: Starlette) -> str:
    """A key holding all five permissions."""
    return await mint_key(app)


@pytest.fixture
async def collecting(gql: GraphQLClient, admin_key: str) -> None:
    """The test app ("stores") is collecting requests."""
    from tests.documents import start_collecting

    await start_collecting(gql, admin_key)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on a free loopback port, keeping what it receives."""
    box = Mailbox()
    box.start()
    yield box
    box.stop()
