"""Planner statistics for SQLite: the data's shape, written where an index has none.

Without `sqlite_stat1` SQLite takes every indexed equality for a selective one, so
`status IN (..) AND appId = ..` newest first reads and sorts hundreds of thousands of rows
through the app index instead of walking the date index for 101 rows. A real ANALYZE costs
seconds at a million rows and sees only the data of its day, so we write the *shape* of
the data instead (how many rows share a value of each column, at a nominal million rows),
as SQLite documents for stable plans. A real ANALYZE by an operator covers every index and
is left alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

NOMINAL_ROWS = 1_000_000
# Rows sharing one value of each column, at NOMINAL_ROWS: the data's shape, not its size.
ROWS_PER_VALUE = {
    "notification_requests": {
        "id": 1,
        "created_date": 1,
        "email": 5,
        "contact_id": 5,
        "catalog_reference_key": 20,
        "catalog_item_id": 20,
        "item_url": 20,
        "status": 250_000,
        "app_id": 250_000,
        "auto_notified": 333_334,
    },
    # Items: a few apps share them all, so totalCount by appId and a catalogItemId prefix
    # or range reads the folded index's or the key's range, not the app's thousands of
    # items (request_totals.py). waiting_count is left at the default: said to repeat
    # much, it has SQLite skip-scan the ranking index instead.
    "catalog_item_demand": {
        "catalog_item_id": 1,
        "catalog_item_id_folded": 1,
        "app_id": 250_000,
    },
    # The queue (NOMINAL_TABLE_ROWS): one notification per request, each due and made
    # at its own moment.
    "notifications": {
        "id": 1,
        "request_id": 1,
        "request_created_date": 1,
        "available_at": 1,
    },
}
UNKNOWN_ROWS_PER_VALUE = 10
# Tables whose nominal size is not NOMINAL_ROWS. The queue holds what reports queued and
# is not sent yet: thousands, not a million. Said to be as large as the requests, a join
# from it to them (a PROCESSING page, Plan.QUEUE) had SQLite build a Bloom filter of
# every request first (200 ms at a million) to skip lookups it took for likely misses.
NOMINAL_TABLE_ROWS = {"notifications": 10_000}


def _index_stat(columns: Sequence[str], shape: dict[str, int], total: int) -> str:
    """The sqlite_stat1 text of an index: total rows, then rows per value of each prefix."""
    rows = float(total)
    figures = [str(total)]
    for column in columns:
        rows *= min(shape.get(column, UNKNOWN_ROWS_PER_VALUE), total) / total
        figures.append(str(max(1, round(rows))))
    return " ".join(figures)


def write_planner_statistics(path: str) -> bool:
    """Write the shape statistics where an index lacks statistics; True if it wrote."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    cursor = connection.cursor()
    try:
        wrote = False
        for table, shape in ROWS_PER_VALUE.items():
            indexes = [
                name
                for (name,) in cursor.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                    (table,),
                ).fetchall()
            ]
            if not indexes:
                continue
            has_stat1 = cursor.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).fetchone()
            known = (
                {
                    name
                    for (name,) in cursor.execute(
                        "SELECT idx FROM sqlite_stat1 WHERE tbl = ?", (table,)
                    ).fetchall()
                }
                if has_stat1
                else set()
            )
            if set(indexes) <= known:
                continue
            stats = []
            for name in indexes:
                columns = [
                    row[2]
                    for row in cursor.execute(f'PRAGMA index_info("{name}")').fetchall()
                ]
                total = NOMINAL_TABLE_ROWS.get(table, NOMINAL_ROWS)
                stats.append((table, name, _index_stat(columns, shape, total)))
            cursor.execute("BEGIN IMMEDIATE")
            try:
                if not has_stat1:
                    cursor.execute(
                        "ANALYZE sqlite_schema"
                    )  # creates sqlite_stat1, cheaply
                cursor.execute("DELETE FROM sqlite_stat1 WHERE tbl = ?", (table,))
                cursor.executemany("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", stats)
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            wrote = True
        return wrote
    finally:
        cursor.close()
        connection.close()
