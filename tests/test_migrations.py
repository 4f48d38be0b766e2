"""Migrations: they make exactly the models' schema, keep data, and are how `migrate` and
`serve` make the schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import SQLModel

from app.config import Settings
from app.migrate import (
    MIGRATION_LOCK_ID,
    UnversionedSchema,
    alembic_config,
    declared_for,
    downgrade_database,
    prepare_database,
    upgrade_database,
    wait_for_database,
)
from app.storage import open_store
from tests.cli import run_cli
from tests.migration_data import fill_every_table, read_tables

SCRIPTS = ScriptDirectory.from_config(alembic_config())
HEAD = SCRIPTS.get_current_head()
TABLES = SQLModel.metadata.tables


async def schema_differences(engine: AsyncEngine) -> list[Any]:
    """What autogenerate would put in a new migration, plus what it cannot see."""

    def compare(connection: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": lambda obj, name, type_, reflected, _: declared_for(
                    obj, type_, reflected, connection.dialect.name
                ),
            },
        )
        differences: list[Any] = list(compare_metadata(context, SQLModel.metadata))
        return differences + _unseen_differences(connection)

    async with engine.connect() as connection:
        return await connection.run_sync(compare)


def _unseen_differences(connection: sa.Connection) -> list[Any]:
    """Autogenerate ignores collations and partial-index predicates; compare them here."""
    inspector = sa.inspect(connection)
    dialect = connection.dialect
    differences: list[Any] = []
    existing = set(inspector.get_table_names())
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in existing:
            continue
        reflected = {
            column["name"]: column for column in inspector.get_columns(table.name)
        }
        for column in table.columns:
            if column.name not in reflected:
                continue
            wanted = getattr(column.type.dialect_impl(dialect), "collation", None)
            found = getattr(reflected[column.name]["type"], "collation", None)
            if wanted != found:
                differences.append(
                    ("collation", table.name, column.name, found, wanted)
                )
        indexes = {index["name"]: index for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            where = index.dialect_options[dialect.name].get("where")
            if where is None or index.name not in indexes:
                continue
            found_where = indexes[index.name]["dialect_options"].get(
                f"{dialect.name}_where"
            )
            if found_where is None:
                differences.append(("index predicate", index.name, None, str(where)))
    return differences


async def test_migrations_make_exactly_the_models_schema(
    empty_url: str, engine: AsyncEngine
):
    await upgrade_database(empty_url)

    assert await schema_differences(engine) == []


async def test_migrations_make_the_expression_indexes_sqlite_cannot_compare(
    tmp_path: Path,
):
    # SQLite's reflection skips indexes of expressions (lower(app_id)): named here.
    url = f"sqlite+aiosqlite:///{tmp_path / 'expressions.db'}"
    await upgrade_database(url)
    wanted = {
        str(index.name)
        for table in SQLModel.metadata.sorted_tables
        for index in table.indexes
        if not all(isinstance(each, sa.Column) for each in index.expressions)
        and declared_for(index, "index", False, "sqlite")
    }
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            made = set(
                (
                    await connection.exec_driver_sql(
                        "SELECT name FROM sqlite_master WHERE type = 'index'"
                    )
                ).scalars()
            )
    finally:
        await engine.dispose()

    assert wanted and wanted <= made


async def test_empty_database_shows_every_table_missing(engine: AsyncEngine):
    # The comparison itself can fail: on a database without tables it sees all of them.
    differences = await schema_differences(engine)

    added = {diff[1].name for diff in differences if diff[0] == "add_table"}
    assert added == set(SQLModel.metadata.tables)


async def test_downgrade_to_base_and_upgrade_again_rebuilds_the_schema(
    empty_url: str, engine: AsyncEngine
):
    await upgrade_database(empty_url)

    await downgrade_database(empty_url, "base")
    async with engine.connect() as connection:
        left = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
    await upgrade_database(empty_url)

    assert set(left) <= {"alembic_version"}
    assert await schema_differences(engine) == []


# ------------------------------------------------------------------------- data is kept


async def test_a_database_made_before_migrations_is_adopted_with_its_rows(
    empty_url: str, engine: AsyncEngine
):
    # given: this version's tables made without Alembic (as releases before it did)
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
        before = await connection.run_sync(fill_every_table, 2)

    # when
    await upgrade_database(empty_url)

    # then
    assert await _current_revision(empty_url) == HEAD
    async with engine.connect() as connection:
        after = await connection.run_sync(read_tables, list(before))
    assert {name: len(rows) for name, rows in after.items()} == dict.fromkeys(before, 2)


async def test_a_database_with_other_tables_and_no_history_is_refused(
    empty_url: str, engine: AsyncEngine
):
    async with engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE api_keys (id INTEGER)"))

    with pytest.raises(UnversionedSchema, match="no migration history"):
        await upgrade_database(empty_url)

    assert await _current_revision(empty_url) is None


# ------------------------------------------------------------ how the schema gets made


async def _current_revision(url: str) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
    finally:
        await engine.dispose()


async def test_migrate_command_works_from_any_directory(
    empty_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    done = await asyncio.to_thread(run_cli, "migrate", env={"DATABASE_URL": empty_url})

    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout
    assert await _current_revision(empty_url) == HEAD


async def test_server_start_migrates_unless_told_not_to(
    empty_url: str, caplog: pytest.LogCaptureFixture
):
    off = Settings(_env_file=None, database_url=empty_url, migrate_on_start=False)
    store = open_store(off)
    try:
        await prepare_database(store, off)
        assert await _current_revision(empty_url) is None
        assert "run `python -m app migrate`" in caplog.text

        on = off.model_copy(update={"migrate_on_start": True})
        await prepare_database(store, on)
        assert await _current_revision(empty_url) == HEAD
    finally:
        await store.dispose()


async def test_concurrent_migrations_apply_once(empty_url: str):
    # Eight processes starting together: each either migrates or finds the work done.
    await asyncio.gather(*(upgrade_database(empty_url) for _ in range(8)))

    assert await _current_revision(empty_url) == HEAD
    engine = create_async_engine(empty_url)
    try:
        assert await schema_differences(engine) == []
    finally:
        await engine.dispose()


WAITING_FOR_AN_ADVISORY_LOCK = sa.text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_migration_waits_for_the_advisory_lock(database_url: str):
    # given: another process holds the migration lock
    holder = create_async_engine(database_url)
    async with holder.connect() as connection:
        await connection.execute(
            sa.text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID}
        )

        # when
        migration = asyncio.create_task(upgrade_database(database_url))

        # then: it waits for the lock, and goes on once the lock is released
        for _ in range(300):
            if await connection.scalar(WAITING_FOR_AN_ADVISORY_LOCK):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the migration never waited for the advisory lock")
        assert not migration.done()
        await connection.execute(
            sa.text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID}
        )
        await asyncio.wait_for(migration, timeout=30)
    await holder.dispose()
    assert await _current_revision(database_url) == HEAD


def _retries_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage().rsplit("; ", 1)[-1]
        for record in caplog.records
        if record.name == "app.migrate" and "not reachable" in record.getMessage()
    ]


async def test_start_retries_connecting_then_gives_up(
    caplog: pytest.LogCaptureFixture,
):
    unreachable = Settings(
        _env_file=None,
        database_url="postgresql+asyncpg://postgres@127.0.0.1:9/none",
        db_connect_retries=2,
    )
    store = open_store(unreachable)
    try:
        with pytest.raises(ConnectionRefusedError):
            await wait_for_database(store, unreachable.db_connect_retries)
    finally:
        await store.dispose()

    assert _retries_logged(caplog) == ["retry 1 of 2 in 0.5s", "retry 2 of 2 in 1.0s"]


class CreateDirectoryOnRetry(logging.Handler):
    """Makes the database's directory when the first retry is announced."""

    def __init__(self, directory: Path) -> None:
        super().__init__(logging.WARNING)
        self.directory = directory

    def emit(self, record: logging.LogRecord) -> None:
        self.directory.mkdir(exist_ok=True)


async def test_start_retries_until_the_database_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    # A SQLite file in a directory that appears only after the first attempt failed.
    directory = tmp_path / "later"
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{directory / 'db.sqlite'}",
        db_connect_retries=5,
    )
    store = open_store(settings)
    handler = CreateDirectoryOnRetry(directory)
    logging.getLogger("app.migrate").addHandler(handler)
    try:
        await prepare_database(store, settings)
        assert await _current_revision(settings.database_url) == HEAD
    finally:
        logging.getLogger("app.migrate").removeHandler(handler)
        await store.dispose()

    assert _retries_logged(caplog) == ["retry 1 of 5 in 0.5s"]


def test_indexes_declared_for_one_database_are_compared_on_that_one_only():
    table = SQLModel.metadata.tables["notification_requests"]

    def names(dialect: str) -> set[str]:
        return {
            str(index.name)
            for index in table.indexes
            if "auto_notified" in str(index.name)
            and index.info.get("dialect") is not None
            and declared_for(index, "index", False, dialect)
        }

    assert names("sqlite") == {"ix_notification_requests_auto_notified"}
    assert names("postgresql") == {"ix_notification_requests_auto_notified_nulls_first"}
