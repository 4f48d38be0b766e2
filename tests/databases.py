"""Databases for tests: each test gets one at the head revision, with no rows.

SQLite: a template file is migrated once per session and checkpointed (its write-ahead log
copied into it and removed), so a test's database is a plain copy of that one file.

PostgreSQL: databases start as copies of a migrated template (`CREATE DATABASE ... TEMPLATE`, 40-300 ms on a
busy server). A database a test is done with is emptied in the background (its connections
closed, every table's rows deleted, sequences restarted) and handed to a later test, which
takes ~10 ms instead; a background task keeps a few ready, so a test rarely waits. Names
carry the pid of the pytest process, so several suites can share one server, and databases
left behind by a killed run are dropped by the next one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from app.migrate import alembic_config, upgrade_database

T = TypeVar("T")
PREFIX = "bistest_"
# Databases kept ready ahead of the tests that will use them.
READY_AHEAD = 2
_EMPTY_DATABASE = [
    (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ),
    "SET lock_timeout = '2s'",
    *(f'DELETE FROM "{t.name}"' for t in reversed(SQLModel.metadata.sorted_tables)),
    """DO $$ DECLARE s regclass; BEGIN
         FOR s IN SELECT oid::regclass FROM pg_class
                  WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace LOOP
           EXECUTE format('ALTER SEQUENCE %s RESTART', s);
         END LOOP;
       END $$""",
]
_NAME = re.compile(rf"^{PREFIX}(\d+)_\w+$")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def migrated_sqlite_template(path: Path) -> Path:
    """Migrate a new SQLite file at `path` to head and checkpoint it; returns `path`.

    The migration runs on a loop of its own in another thread, so a fixture may call this
    whether or not the test's loop is running.
    """
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, upgrade_database(sqlite_url(path))).result()
    return checkpoint_sqlite(path)


def checkpoint_sqlite(path: Path) -> Path:
    """Copy the write-ahead log of the (closed) SQLite file at `path` into it and remove
    the log, so that the file alone holds the database; returns `path`."""
    connection = sqlite3.connect(path)
    try:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        connection.close()  # the last connection to close removes the -wal file
    wal = Path(f"{path}-wal")
    if busy or (wal.exists() and wal.stat().st_size):
        raise RuntimeError(f"the SQLite file {path} was not fully checkpointed")
    return path


def copy_sqlite(template: Path, target: Path) -> Path:
    """A database of its own for one test: a plain copy of the checkpointed template."""
    shutil.copyfile(template, target)
    return target


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
        self._admin_turn: asyncio.Lock | None = None
        self._ready: asyncio.Queue[str | Exception] | None = None
        self._background: set[asyncio.Future[Any]] = set()
        # Databases made from the template: the ones that may be emptied and reused.
        self._reusable: set[str] = set()
        self._head = ScriptDirectory.from_config(alembic_config()).get_current_head()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(
            timeout=120
        )

    def url_for(self, name: str) -> str:
        return self.server_url.set(database=name).render_as_string(hide_password=False)

    def _dsn(self, name: str | None) -> str:
        """asyncpg's spelling of the URL of database `name`."""
        url = self.server_url.set(drivername="postgresql", database=name)
        return url.render_as_string(hide_password=False)

    def _new_name(self) -> str:
        return f"{PREFIX}{os.getpid()}_{next(self._counter)}"

    async def _admin_execute(self, statement: str, *args: Any) -> Any:
        """One statement on the admin connection (it runs one at a time)."""
        if self._admin_turn is None:
            self._admin_turn = asyncio.Lock()
        async with self._admin_turn:
            if self._admin is None or self._admin.is_closed():
                self._admin = await asyncpg.connect(self._dsn(self.server_url.database))
            if args:
                return await self._admin.fetch(statement, *args)
            return await self._admin.execute(statement)

    async def _drop(self, name: str) -> None:
        await self._admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _prepare_template(self) -> None:
        stale = await self._admin_execute(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", PREFIX + "%"
        )
        for (name,) in stale:
            match = _NAME.match(name)
            if match and not _pid_alive(int(match.group(1))):
                await self._drop(name)
        await self._drop(self.template)
        await self._admin_execute(f'CREATE DATABASE "{self.template}"')
        await upgrade_database(self.url_for(self.template))

    async def _create_from_template(self) -> str:
        name = self._new_name()
        await self._admin_execute(
            f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'
        )
        self._reusable.add(name)
        return name

    async def _reuse(self, name: str, ready: asyncio.Queue[str | Exception]) -> None:
        """Empty a used database and make it ready again; drop it if that fails."""
        try:
            connection = await asyncpg.connect(self._dsn(name))
            try:
                version = await connection.fetchval(
                    "SELECT version_num FROM alembic_version"
                )
                if version != self._head:
                    raise RuntimeError(f"{name} is at {version}, not {self._head}")
                async with connection.transaction():
                    for statement in _EMPTY_DATABASE:
                        await connection.execute(statement)
            finally:
                await connection.close()
        except Exception:  # noqa: BLE001 - any doubt: start from the template instead
            self._reusable.discard(name)
            await self._drop(name)
            return
        await ready.put(name)

    def _in_background(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _keep_ready(self, ready: asyncio.Queue[str | Exception]) -> None:
        try:
            await ready.put(await self._create_from_template())
        except Exception as error:  # noqa: BLE001 - handed to the test that takes it
            await ready.put(error)

    async def _take(self) -> str:
        if self._ready is None:
            await self._prepare_template()
            self._ready = asyncio.Queue()
            for _ in range(READY_AHEAD):
                self._in_background(self._keep_ready(self._ready))
        if self._ready.qsize() < READY_AHEAD:
            self._in_background(self._keep_ready(self._ready))
        taken = await self._ready.get()
        if isinstance(taken, Exception):
            raise taken
        return taken

    def create(self) -> str:
        """A new database at the head revision; returns its name."""
        return self._run(self._take())

    def create_empty(self) -> str:
        """A new database without any table (for migration tests)."""
        name = self._new_name()
        self._run(self._admin_execute(f'CREATE DATABASE "{name}"'))
        return name

    def drop(self, name: str) -> None:
        """Drop a database now (closing its connections)."""
        self._run(self._drop(name))

    def release(self, name: str) -> None:
        """Hand back a database the test is done with: it is emptied for another test in
        the background (or dropped, if it did not come from `create`)."""

        def release() -> None:
            if name in self._reusable and self._ready is not None:
                self._in_background(self._reuse(name, self._ready))
            else:
                self._in_background(self._drop(name))

        self._loop.call_soon_threadsafe(release)

    def close(self) -> None:
        async def close() -> None:
            while self._background:
                await asyncio.gather(*self._background, return_exceptions=True)
            if self._ready is not None:
                while not self._ready.empty():
                    left = self._ready.get_nowait()
                    if isinstance(left, str):
                        await self._drop(left)
                await self._drop(self.template)
            if self._admin is not None:
                await self._admin.close()

        try:
            self._run(close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
