"""Every migration keeps the data a database holds (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from app.migrate import alembic_config, upgrade_database
from tests.migration_data import comparable_rows, fill_every_table, read_tables

SCRIPTS = ScriptDirectory.from_config(alembic_config())
HEAD = SCRIPTS.get_current_head()
# (from, to) for every migration that has data to keep, plus re-running head on a full one.
STEPS = [
    (script.down_revision, script.revision)
    for script in reversed(list(SCRIPTS.walk_revisions()))
    if script.down_revision is not None
] + [(HEAD, HEAD)]


@pytest.mark.parametrize(("start", "target"), STEPS, ids=[f"{a}-{b}" for a, b in STEPS])
async def test_upgrading_a_database_holding_data_keeps_it(
    empty_url: str, engine: AsyncEngine, start: str, target: str
):
    # given: a database at `start` with rows in every table
    await upgrade_database(empty_url, start)
    async with engine.begin() as connection:
        before = await connection.run_sync(fill_every_table, 3)

    # when
    await upgrade_database(empty_url, target)

    # then: every row is there, with the same values in every column that still exists
    async with engine.connect() as connection:
        after = await connection.run_sync(read_tables, list(before))
    for name, rows in before.items():
        columns = set(rows[0]) & set(after[name][0] if after[name] else rows[0])
        assert comparable_rows(after[name], columns) == comparable_rows(
            rows, columns
        ), name
