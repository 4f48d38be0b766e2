"""Who hears of new events, and when: right after the transaction that wrote them commits.

A transaction body that writes events calls `note_written(tx)`. On PostgreSQL that sends
`NOTIFY request_events` (delivered by the server at commit, to every process listening);
in every database it flags the connection, and once the connection is handed back to its
pool after the commit, this process's listeners (the subscription feed, the webhook
dispatcher) are woken. A rolled-back transaction wakes nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, func, literal_column, select
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from app.storage import Transaction

CHANNEL = "request_events"
_FLAG = "request_events_written"
_listeners: set[Callable[[], None]] = set()
_lock = threading.Lock()
# PostgreSQL's NOTIFY as an expression: a statement writing events may return it, which
# spares the NOTIFY a round trip of its own (see note_written).
NOTIFY = func.pg_notify(literal_column(f"'{CHANNEL}'"), literal_column("''"))
_NOTIFY = select(NOTIFY)


def note_written(tx: Transaction, *, notified: bool = False) -> None:
    """Say that `tx` wrote events: listeners are woken once it has committed.
    `notified`: the statement that wrote them sent PostgreSQL's NOTIFY already."""
    if tx.dialect == "postgresql" and not notified:
        # PostgreSQL folds identical notifications of one transaction into one.
        tx.scalar(_NOTIFY)
    tx.connection.info[_FLAG] = True


def listen(wake: Callable[[], None]) -> Callable[[], None]:
    """Call `wake` (from any thread) after each commit that wrote events; returns the
    function that stops it."""
    with _lock:
        _listeners.add(wake)

    def stop() -> None:
        with _lock:
            _listeners.discard(wake)

    return stop


def wake_on(
    loop: asyncio.AbstractEventLoop, signal: asyncio.Event
) -> Callable[[], None]:
    """Set `signal` in `loop` after each commit that wrote events; returns the stopper."""

    def wake() -> None:
        # Already set: its waiter has not cleared it yet, and it reads the events only
        # after clearing it, so it sees this commit's too. Skipping saves each create a
        # thread hop into the loop (a bool read is safe from any thread).
        if signal.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed
            loop.call_soon_threadsafe(signal.set)

    return listen(wake)


@event.listens_for(Engine, "rollback")
def _rolled_back(connection: Any) -> None:
    # An invalidated connection (it died in use) has no info left to clear, and asking
    # for it would try to reconnect inside the rollback.
    if not connection.invalidated:
        connection.info.pop(_FLAG, None)


@event.listens_for(Pool, "checkin")
def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    # After the commit (the "commit" event comes before it): readers now see the events.
    if record is None or not record.info.pop(_FLAG, False):
        return
    with _lock:
        listeners = list(_listeners)
    for wake in listeners:
        wake()
