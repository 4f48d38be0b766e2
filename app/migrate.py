"""Making the database ready: wait until it answers, then apply pending Alembic migrations.

Migrations are the only way the schema is made. Every process that starts (`serve`,
`dispatch`, the key commands) may run them; on PostgreSQL they take an advisory lock, so
several processes starting together on one database migrate it once, one after the other.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, exc, inspect, literal, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

from app.config import Settings
from app.storage import Store

log = logging.getLogger("app.migrate")

PACKAGE_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = PACKAGE_DIR / "alembic.ini"
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
# Any fixed 64-bit number: every process migrating one PostgreSQL database waits on it.
MIGRATION_LOCK_ID = 0x6261_636B_696E_5354  # "backinST"
MAX_RETRY_DELAY_SECONDS = 10.0


def declared_for(obj: Any, type_: str, reflected: bool, dialect: str) -> bool:
    """False for an index the models declare for another database only (`only_on`).

    Alembic's autogenerate does not know `ddl_if`; env.py filters with this.
    """
    if type_ != "index" or reflected:
        return True
    only = obj.info.get("dialect")
    return only is None or only == dialect


def alembic_config() -> Config:
    """Alembic's configuration, found inside the package whatever the working directory."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _migration_engine(url: str) -> AsyncEngine:
    """A one-connection engine for migrating.

    On SQLite foreign keys are off while migrating: batch mode rebuilds a table by copying
    it and dropping the old one, and with foreign keys on, that drop would cascade-delete
    the rows referring to it. The transaction is `BEGIN IMMEDIATE`, so processes take turns.
    """
    engine = create_async_engine(url, poolclass=NullPool)
    if engine.dialect.name != "sqlite":
        return engine

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # busy_timeout first: switching a new file to WAL waits for its lock too.
        for pragma in (
            "PRAGMA busy_timeout=30000",
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=OFF",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


async def run_alembic(url: str, action: Callable[[Config], None]) -> None:
    """Run one Alembic command (`action(config)`) in one transaction on `url`.

    On PostgreSQL the transaction first takes the migration advisory lock and lifts the
    statement timeout (a migration of a big table may take a while).
    """
    engine = _migration_engine(url)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(text("SET LOCAL statement_timeout = 0"))
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
                )

            def run(sync_connection: Connection) -> None:
                config = alembic_config()
                config.attributes["connection"] = sync_connection
                action(config)

            await connection.run_sync(run)
            if connection.dialect.name == "sqlite":
                problems = (
                    await connection.exec_driver_sql("PRAGMA foreign_key_check")
                ).all()
                if problems:
                    raise RuntimeError(f"migration broke foreign keys: {problems[:5]}")
    finally:
        await engine.dispose()


class UnversionedSchema(RuntimeError):
    """The database has the service's tables but no migration history, and they differ."""


def _adopt_unversioned_schema(config: Config) -> None:
    """Stamp a database made before migrations existed (tables, no history) at head, when
    its schema is exactly this version's; refuse with a clear message otherwise."""
    connection = config.attributes["connection"]
    if MigrationContext.configure(connection).get_current_revision() is not None:
        return
    existing = set(inspect(connection).get_table_names()) & set(
        SQLModel.metadata.tables
    )
    if not existing:
        return
    dialect = connection.dialect.name
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "include_object": lambda obj, _name, type_, reflected, _other: declared_for(
                obj, type_, reflected, dialect
            ),
        },
    )
    differences = compare_metadata(context, SQLModel.metadata)
    if differences:
        raise UnversionedSchema(
            f"the database has tables ({', '.join(sorted(existing))}) but no migration "
            f"history, and they differ from this version's schema, e.g. {differences[:3]}; "
            "start from an empty database or migrate this one by hand"
        )
    log.warning("the database has this version's tables but no history: stamping it")
    command.stamp(config, "head")


async def upgrade_database(url: str, revision: str = "head") -> None:
    """Apply every migration up to `revision` (all pending ones by default)."""

    def upgrade(config: Config) -> None:
        if revision == "head":
            _adopt_unversioned_schema(config)
        command.upgrade(config, revision)

    await run_alembic(url, upgrade)


async def downgrade_database(url: str, revision: str) -> None:
    await run_alembic(url, lambda config: command.downgrade(config, revision))


def _is_connection_failure(error: BaseException) -> bool:
    # sqlite3's own error: SQLite's store opens some connections without SQLAlchemy.
    failures = (OSError, TimeoutError, exc.DBAPIError, sqlite3.OperationalError)
    return isinstance(error, failures)


async def wait_for_database(store: Store, retries: int) -> None:
    """Return once the database answers; retry `retries` times with exponential backoff."""
    for attempt in range(retries + 1):
        try:
            await store.scalar(select(literal(1)))
            return
        except Exception as error:  # narrowed just below
            if not _is_connection_failure(error) or attempt == retries:
                raise
            delay = min(0.5 * 2**attempt, MAX_RETRY_DELAY_SECONDS)
            log.warning(
                "database not reachable (%s); retry %d of %d in %.1fs",
                str(error).splitlines()[0] if str(error) else type(error).__name__,
                attempt + 1,
                retries,
                delay,
            )
            await asyncio.sleep(delay)


async def prepare_database(
    store: Store, settings: Settings, *, migrate: bool | None = None
) -> None:
    """Wait for the database (DB_CONNECT_RETRIES), then migrate it unless told not to.

    `migrate` defaults to MIGRATE_ON_START.
    """
    await wait_for_database(store, settings.db_connect_retries)
    current, head = await schema_revisions(store.url)
    if current == head:
        return  # up to date: Alembic need not load its scripts and environment
    if settings.migrate_on_start if migrate is None else migrate:
        await upgrade_database(store.url)
        return
    log.warning(
        "the database schema is at revision %s, this code expects %s: "
        "run `python -m app migrate` (MIGRATE_ON_START is off)",
        current or "none (empty database)",
        head,
    )


@functools.cache
def head_revision() -> str | None:
    """The newest revision this code knows (its migration files, read once)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def schema_revisions(url: str) -> tuple[str | None, str | None]:
    """The database's current revision and the newest this code knows."""
    head = head_revision()
    engine = _migration_engine(url)
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
    return current, head
