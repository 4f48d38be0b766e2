"""`unindexed(column)` keeps SQLite's planner off a column's index, and only SQLite's."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from app.models import NotificationRequest, table_of
from app.services.index_hints import without_indexes_of

REQUESTS = table_of(NotificationRequest)
CLAUSE = (REQUESTS.c.app_id == "shop") & (REQUESTS.c.email > "m")


def test_sqlite_reads_the_named_columns_with_a_unary_plus():
    hinted = without_indexes_of(CLAUSE, (REQUESTS.c.app_id,))

    sql = str(hinted.compile(dialect=sqlite.dialect()))

    assert (
        sql == "+notification_requests.app_id = ? AND notification_requests.email > ?"
    )


def test_other_databases_read_the_columns_as_they_are():
    hinted = without_indexes_of(CLAUSE, (REQUESTS.c.app_id,))

    dialect = postgresql.dialect()
    assert str(hinted.compile(dialect=dialect)) == str(CLAUSE.compile(dialect=dialect))
