"""Data many tests read, made once through the API and copied to each test's database.

`@seeded` turns `async def shop(gql, key) -> T` into a fixture of that name. On SQLite the
seed runs once per session (and settings) on a copy of the migrated template, and each
test gets a copy of that file: its own database, already holding the data, and the
seed's return value. On PostgreSQL the seed runs on each test's own database.

The app fixture (tests/conftest.py) takes a test's seeded fixtures before it opens the
database; seeds run on a loop of their own in another thread, on the real clock.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.config import Settings
from app.main import create_app
from tests.databases import checkpoint_sqlite, copy_sqlite, sqlite_url

T = TypeVar("T")
Seed = Callable[[Any, str], Awaitable[T]]
# The names of the fixtures `seeded` made: the app fixture sets them up first.
SEEDED_FIXTURES: set[str] = set()
# Settings that differ from test to test and that no seed depends on.
_PER_TEST = {"database_url", "mail_url"}


async def _run_seed(seed: Seed[T], settings: Settings, schema: Any) -> T:
    from tests.conftest import GraphQLClient, mint_key

    application = create_app(settings, schema=schema)
    async with application.router.lifespan_context(application):
        key = await mint_key(application)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1"
        ) as http:
            return await seed(GraphQLClient(http), key)


def _in_thread(seed: Seed[T], settings: Settings, schema: Any) -> T:
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, _run_seed(seed, settings, schema)).result()


class SeededDatabases:
    """The SQLite files seeded so far in this session, with what their seeds returned."""

    def __init__(self, directory: Path, template: Path) -> None:
        self.directory = directory
        self.template = template
        self._made: dict[Any, tuple[Path, Any]] = {}

    def seed_into(self, seed: Seed[T], settings: Settings, schema: Any) -> T:
        """Give the test's (still unopened) database the seed's data; its return value."""
        url = make_url(settings.database_url)
        if not url.drivername.startswith("sqlite"):
            return _in_thread(seed, settings, schema)
        key = (
            seed.__module__,
            seed.__qualname__,
            frozenset(
                (name, value)
                for name, value in settings.model_dump().items()
                if name not in _PER_TEST
            ),
        )
        if key not in self._made:
            path = copy_sqlite(
                self.template, self.directory / f"seeded-{len(self._made)}.db"
            )
            made = _in_thread(
                seed,
                settings.model_copy(update={"database_url": sqlite_url(path)}),
                schema,
            )
            self._made[key] = (checkpoint_sqlite(path), made)
        path, made = self._made[key]
        assert url.database is not None
        target = Path(url.database)
        for leftover in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            assert not leftover.exists(), f"{target} was opened before it was seeded"
        copy_sqlite(path, target)
        return copy.deepcopy(made)


def seeded(seed: Seed[T]) -> Any:
    """A fixture named after `seed`: the test's database holds what `seed` made."""

    def fixture(
        settings: Settings,
        seeded_databases: SeededDatabases,
        schemas: dict[Any, Any],
    ) -> T:
        from tests.conftest import schema_for

        return seeded_databases.seed_into(seed, settings, schema_for(settings, schemas))

    fixture.__doc__ = seed.__doc__
    SEEDED_FIXTURES.add(seed.__name__)
    return pytest.fixture(name=seed.__name__)(fixture)
