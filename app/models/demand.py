"""Counters kept in each change's transaction: demand per item and per itemUrl, totals
per app and initial, requests per reference and per day."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
)
from sqlmodel import Field, SQLModel

from app.models.base import (
    counter,
)
from app.sqltypes import UTCDateTime, code_point_string


class CatalogItemDemand(SQLModel, table=True):
    """One catalog item's requests (any options) per status, as callers see them.

    Kept in the transaction of every change of a request (app/services/demand.py), so
    ranking items by demand reads a page of this table, not the requests. Waiting is
    RECEIVED + PROCESSING + FAILED: every open request, whose shopper has not been emailed.
    """

    __tablename__ = "catalog_item_demand"
    __table_args__ = (
        # The ranking, most waiting first, and within one app (keyset pages of both).
        Index(
            "ix_catalog_item_demand_ranking",
            "waiting_count",
            "app_id",
            "catalog_item_id",
        ),
        Index(
            "ix_catalog_item_demand_app_ranking",
            "app_id",
            "waiting_count",
            "catalog_item_id",
        ),
        # The item first: totalCount of catalogItemId eq, in and ranges reads a range
        # of it, and of startsWith one of the folded index (app/services/
        # request_totals.py). On SQLite the table is that key's tree (no rowid).
        PrimaryKeyConstraint(
            "catalog_item_id", "app_id", name="catalog_item_demand_pkey"
        ),
        Index("ix_catalog_item_demand_item_folded", "catalog_item_id_folded"),
        {"sqlite_with_rowid": False},
    )

    app_id: str = Field(sa_column=Column(code_point_string(64), primary_key=True))
    catalog_item_id: str = Field(
        sa_column=Column(code_point_string(36), primary_key=True)
    )
    # catalog_item_id with A-Z made a-z, as a filter's startsWith compares it.
    catalog_item_id_folded: str = Field(
        sa_column=Column(code_point_string(36), nullable=False)
    )
    received_count: int = Field(sa_column=Column(Integer, nullable=False))
    processing_count: int = Field(sa_column=Column(Integer, nullable=False))
    notification_sent_count: int = Field(sa_column=Column(Integer, nullable=False))
    failed_count: int = Field(sa_column=Column(Integer, nullable=False))
    # received + processing + failed, stored so that an index can rank by it.
    waiting_count: int = Field(sa_column=Column(Integer, nullable=False))
    # Creation dates of the oldest and newest waiting request; NULL when none waits.
    oldest_waiting_date: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    newest_waiting_date: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    # Of each status's requests, those with autoNotified true and false (the rest have
    # null): totalCount of a filter on these fields sums counters (request_totals.py).
    received_auto_true_count: int = counter()
    received_auto_false_count: int = counter()
    processing_auto_true_count: int = counter()
    processing_auto_false_count: int = counter()
    notification_sent_auto_true_count: int = counter()
    notification_sent_auto_false_count: int = counter()
    failed_auto_true_count: int = counter()
    failed_auto_false_count: int = counter()


class RequestTotals(SQLModel, table=True):
    """An app's requests per status as callers see them, and of those how many have
    autoNotified true and false: what catalog_item_demand holds, added up per app and
    first character of the catalogItemId.

    Kept in the same transactions (app/services/demand.py), so totalCount of a filter on
    appId, status and autoNotified reads a few rows, and of a catalogItemId range the
    items of one or two initials. On PostgreSQL the counts are spread over a few `shard`
    rows (as daily_request_stats); readers add them up, and one shard alone may well be
    negative.
    """

    __tablename__ = "request_totals"

    app_id: str = Field(sa_column=Column(code_point_string(64), primary_key=True))
    catalog_item_initial: str = Field(
        sa_column=Column(code_point_string(1), primary_key=True)
    )
    shard: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    received_count: int = counter()
    processing_count: int = counter()
    notification_sent_count: int = counter()
    failed_count: int = counter()
    received_auto_true_count: int = counter()
    received_auto_false_count: int = counter()
    processing_auto_true_count: int = counter()
    processing_auto_false_count: int = counter()
    notification_sent_auto_true_count: int = counter()
    notification_sent_auto_false_count: int = counter()
    failed_auto_true_count: int = counter()
    failed_auto_false_count: int = counter()


class ItemUrlDemand(SQLModel, table=True):
    """Requests per itemUrl and app, per status as callers see them, and of those how
    many have autoNotified true and false: what catalog_item_demand holds, by the
    requests' itemUrl instead of their item. Requests without an itemUrl have no row.

    Kept in the same transactions (app/services/demand.py), so totalCount of an itemUrl
    range (and-ed with appId, status, autoNotified) adds up a row per URL in it
    (app/services/url_totals.py), where the requests' index holds one entry per request:
    half of a million requests over 40,000 URLs, read in 120 ms on PostgreSQL before.
    """

    __tablename__ = "item_url_demand"
    __table_args__ = (
        # The URL first: a range of URLs is a range of the key (on SQLite the table
        # is that key's tree, no rowid: the range is read without a lookup per row).
        PrimaryKeyConstraint("item_url", "app_id", name="item_url_demand_pkey"),
        Index("ix_item_url_demand_folded", "item_url_folded"),
        {"sqlite_with_rowid": False},
    )

    app_id: str = Field(sa_column=Column(code_point_string(64), nullable=False))
    item_url: str = Field(sa_column=Column(code_point_string(2048), nullable=False))
    # lower(item_url): A-Z folded, for startsWith (app/services/text_prefixes.py).
    item_url_folded: str = Field(
        sa_column=Column(code_point_string(2048), nullable=False)
    )
    received_count: int = counter()
    processing_count: int = counter()
    notification_sent_count: int = counter()
    failed_count: int = counter()
    received_auto_true_count: int = counter()
    received_auto_false_count: int = counter()
    processing_auto_true_count: int = counter()
    processing_auto_false_count: int = counter()
    notification_sent_auto_true_count: int = counter()
    notification_sent_auto_false_count: int = counter()
    failed_auto_true_count: int = counter()
    failed_auto_false_count: int = counter()


class ReferenceRequestCounts(SQLModel, table=True):
    """How many requests (any status) each catalog reference has: what counts by
    reference answer, kept in the transaction of each create and delete
    (app/services/reference_counts.py) instead of counting a popular reference's
    thousands of requests. A reference with none has no row."""

    __tablename__ = "reference_request_counts"
    __table_args__ = ({"sqlite_with_rowid": False},)

    # As notification_requests.catalog_reference_key (app/services/rules.py).
    catalog_reference_key: str = Field(sa_column=Column(String(64), primary_key=True))
    request_count: int = Field(sa_column=Column(Integer, nullable=False))


class DailyRequestStats(SQLModel, table=True):
    """Per UTC day and app: requests created, notified (sent) and failed that day.

    Counted when it happens (app/services/demand.py); deleting a request later does not
    uncount it. On PostgreSQL a day's counts are spread over a few `shard` rows, so that
    concurrent creates for one app do not all wait for one row's lock; readers add them up.
    """

    __tablename__ = "daily_request_stats"
    __table_args__ = (Index("ix_daily_request_stats_app_day", "app_id", "day"),)

    # The day's first instant (00:00 UTC).
    day: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    app_id: str = Field(sa_column=Column(code_point_string(64), primary_key=True))
    shard: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    created_count: int = Field(sa_column=Column(Integer, nullable=False))
    notified_count: int = Field(sa_column=Column(Integer, nullable=False))
    failed_count: int = Field(sa_column=Column(Integer, nullable=False))
