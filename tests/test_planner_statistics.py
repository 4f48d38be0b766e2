"""SQLite's planner statistics describe the data's shape (app/storage/sqlite/statistics.py):
a million requests, and a queue of thousands, whatever a new database holds."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from app.storage.sqlite.statistics import write_planner_statistics


def _table_rows(path: Path) -> dict[str, set[int]]:
    """Each table's row count as its indexes' statistics state it."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT tbl, stat FROM sqlite_stat1").fetchall()
    found: dict[str, set[int]] = {}
    for table, stat in rows:
        found.setdefault(table, set()).add(int(stat.split()[0]))
    return found


def test_the_queue_is_described_as_thousands_and_the_requests_as_a_million(
    sqlite_template: Path, tmp_path: Path
):
    path = tmp_path / "shape.db"
    shutil.copyfile(sqlite_template, path)
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE IF EXISTS sqlite_stat1")

    assert write_planner_statistics(str(path))

    rows = _table_rows(path)
    assert rows["notification_requests"] == {1_000_000}
    assert rows["notifications"] == {10_000}


def test_statistics_already_written_are_left_alone(
    sqlite_template: Path, tmp_path: Path
):
    path = tmp_path / "analyzed.db"
    shutil.copyfile(sqlite_template, path)
    write_planner_statistics(str(path))

    assert not write_planner_statistics(str(path))
