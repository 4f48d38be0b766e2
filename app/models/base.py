"""What every table module shares: the clock, ids, statuses and small helpers."""

from __future__ import annotations

import enum
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    Table,
)
from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    return datetime.now(UTC)


# What services read the time from: `utc_now`, or a test's own clock.
Clock = Callable[[], datetime]


def time_ordered_id(
    at: datetime, random_bits: Callable[[int], int] = secrets.randbits
) -> uuid.UUID:
    """A version 7 UUID (RFC 9562): `at` in milliseconds since the epoch, then 74 random bits.

    A new request's id sorts after older ones, so every index ending with the id (the primary
    key, `(status, id)`, `(auto_notified, id)`) takes it on its last page, not on a random
    one: at a million rows a create writes about a third fewer pages to the log.
    (Python 3.14 has `uuid.uuid7()`, but for the current time only.)
    """
    milliseconds = int(at.timestamp() * 1000) & 0xFFFF_FFFF_FFFF
    bits = random_bits(74)
    value = (
        milliseconds << 80
        | 0x7 << 76  # version
        | (bits >> 62) << 64  # 12 random bits
        | 0b10 << 62  # variant
        | bits & (1 << 62) - 1  # 62 random bits
    )
    return uuid.UUID(int=value)


def table_of(model: type[SQLModel]) -> Table:
    """A model's Core table, typed (SQLModel leaves `__table__` untyped).

    Services write statements against its columns (`table_of(M).c.status`), which type
    as SQL expressions; a model's class attributes type as the values they hold.
    """
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def only_on(dialect: str, index: Index) -> Index:
    """An index made on one database only; `info["dialect"]` tells migrations which."""
    index.info["dialect"] = dialect
    return index.ddl_if(dialect=dialect)


class RequestStatus(enum.StrEnum):
    RECEIVED = "RECEIVED"
    PROCESSING = "PROCESSING"
    NOTIFICATION_SENT = "NOTIFICATION_SENT"
    FAILED = "FAILED"


# Statuses a report moves to PROCESSING.
REPORTABLE_STATUSES = (RequestStatus.RECEIVED, RequestStatus.FAILED)


# A bigint on PostgreSQL; on SQLite an INTEGER PRIMARY KEY is the rowid (64 bits anyway).
BigId = BigInteger().with_variant(Integer(), "sqlite")


def counter() -> Any:
    """A count kept by the service, 0 in a new row."""
    return Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
