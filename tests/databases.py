"""Fresh PostgreSQL databases for tests: one per test, copied from a migrated template.

`CREATE DATABASE ... TEMPLATE` of a database already at the head revision takes a few tens of
milliseconds, so every test gets a database of its own. Names carry the pid of the pytest
process, so several suites can share one server, and databases left behind by a killed run
are dropped by the next one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from app.migrate import upgrade_database

T = TypeVar("T")
PREFIX = "bistest_"
_NAME = re.compile(rf"^{PREFIX}(\d+)_\w+$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PostgresDatabases:
    """Creates and drops databases on the server `TEST_DATABASE_URL` points at.

    Its own event loop runs in a background thread, so sync fixtures can use it while the
    test's loop is not running, and no connection crosses loops.
    """

    def __init__(self, server_url: str) -> None:
        self.server_url = make_url(server_url)
        if not self.server_url.drivername.startswith("postgresql"):
            raise ValueError(f"TEST_DATABASE_URL is not a PostgreSQL URL: {server_url}")
        self.template = f"{PREFIX}{os.getpid()}_template"
        self._counter = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._admin: asyncpg.Connection | None = None
        self._template_ready = False

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(
            timeout=120
        )

    def url_for(self, name: str) -> str:
        return self.server_url.set(database=name).render_as_string(hide_password=False)

    async def _connect(self) -> asyncpg.Connection:
        if self._admin is None or self._admin.is_closed():
            dsn = self.server_url.set(drivername="postgresql").render_as_string(
                hide_password=False
            )
            self._admin = await asyncpg.connect(dsn)
        return self._admin

    async def _drop(self, name: str) -> None:
        admin = await self._connect()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _prepare_template(self) -> None:
        admin = await self._connect()
        for (name,) in await admin.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", PREFIX + "%"
        ):
            match = _NAME.match(name)
            if match and not _pid_alive(int(match.group(1))):
                await self._drop(name)
        await self._drop(self.template)
        await admin.execute(f'CREATE DATABASE "{self.template}"')
        await upgrade_database(self.url_for(self.template))

    async def _create(self) -> str:
        if not self._template_ready:
            await self._prepare_template()
            self._template_ready = True
        name = f"{PREFIX}{os.getpid()}_{next(self._counter)}"
        admin = await self._connect()
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def create(self) -> str:
        """A new database at the head revision; returns its name."""
        return self._run(self._create())

    def create_empty(self) -> str:
        """A new database without any table (for migration tests)."""
        name = f"{PREFIX}{os.getpid()}_{next(self._counter)}"

        async def create() -> None:
            admin = await self._connect()
            await admin.execute(f'CREATE DATABASE "{name}"')

        self._run(create())
        return name

    def drop(self, name: str) -> None:
        self._run(self._drop(name))

    def close(self) -> None:
        async def close() -> None:
            if self._template_ready:
                await self._drop(self.template)
            if self._admin is not None:
                await self._admin.close()

        try:
            self._run(close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
