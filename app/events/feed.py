"""The live feed behind subscriptions: every new event of the outbox, in order, handed to
this process's subscribers.

The feed reads the outbox after the last event it saw, whenever it is woken: by a commit
in this process (app.events.wakeups), by PostgreSQL's `NOTIFY request_events` from any
process (a dedicated asyncpg connection that reconnects and then reads what it missed),
and by a poll (the only way another process's commit reaches a SQLite feed). The NOTIFY
carries nothing: the events are read from the outbox.

On PostgreSQL an event id is taken before its transaction commits, so a smaller id can
appear after a larger one. The feed hands each event out once, when it first sees it,
and keeps reading from the first id it has not seen until that id shows up or
GAP_SECONDS have passed (a rolled-back transaction leaves such a hole for good).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import asyncpg
from sqlalchemy.engine import make_url

from app.config import Settings
from app.events.outbox import LAST_EVENT_ID, StoredEvent, as_event, events_after
from app.events.wakeups import CHANNEL, wake_on
from app.services.errors import ServiceError
from app.storage import Store

log = logging.getLogger("app.events")

READ_BATCH = 500
GAP_SECONDS = 30.0
SQLITE_POLL_SECONDS = 0.5
POSTGRES_POLL_SECONDS = 5.0
# Events a subscriber may fall behind by before its subscription ends.
SUBSCRIBER_BACKLOG = 10_000
LISTENER_PING_SECONDS = 15.0
# The listening connection's application_name (pg_stat_activity shows it).
LISTENER_NAME = "backinstock-events"


class SubscriberTooSlow(ServiceError):
    code = "SUBSCRIBER_TOO_SLOW"


class Subscriber:
    """One subscription's events, in order; ends with SubscriberTooSlow if it falls
    more than SUBSCRIBER_BACKLOG events behind."""

    def __init__(self, feed: EventFeed) -> None:
        self._feed = feed
        self._queue: asyncio.Queue[StoredEvent] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self.overflowed = False

    def offer(self, event: StoredEvent) -> None:
        if self.overflowed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True

    async def next(self, within: float) -> StoredEvent | None:
        """The next event, or None after `within` seconds without one."""
        if self.overflowed and self._queue.empty():
            raise SubscriberTooSlow(
                f"the subscriber fell more than {SUBSCRIBER_BACKLOG} events behind"
            )
        try:
            return await asyncio.wait_for(self._queue.get(), within)
        except TimeoutError:
            return None

    def close(self) -> None:
        self._feed.subscribers.discard(self)


class EventFeed:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.subscribers: set[Subscriber] = set()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stop_listening: Callable[[], None] | None = None
        # Every id up to `_low` was handed out (or given up); `_seen` are those above.
        self._low = 0
        self._seen: set[int] = set()
        self._gap_since: tuple[int, float] | None = None
        # Events were written while nobody listened: `_low` is behind the outbox.
        self._stale = False

    async def start(self) -> None:
        self._low = int(await self.store.scalar(LAST_EVENT_ID) or 0)
        self._stop_listening = wake_on(asyncio.get_running_loop(), self._wakeup)
        self._tasks.append(asyncio.create_task(self._run(), name="event-feed"))
        if self.store.dialect == "postgresql":
            self._tasks.append(
                asyncio.create_task(self._listen(), name="event-listener")
            )

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._stop_listening is not None:
            self._stop_listening()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def subscribe(self) -> Subscriber:
        """A subscriber of the events committed from now on."""
        if self._stale and not self.subscribers:
            low = await self._last_id()
            # Somebody subscribed meanwhile: they set the start, a little earlier.
            if self._stale and not self.subscribers:
                self._low, self._stale = low, False
                self._seen.clear()
        subscriber = Subscriber(self)
        self.subscribers.add(subscriber)
        return subscriber

    def wake(self) -> None:
        self._wakeup.set()

    async def _run(self) -> None:
        poll = (
            POSTGRES_POLL_SECONDS
            if self.store.dialect == "postgresql"
            else SQLITE_POLL_SECONDS
        )
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), poll)
            self._wakeup.clear()
            if not self.subscribers:
                # Nobody listens: the first subscriber reads where to start (a read
                # after every commit would cost each create a round trip).
                self._stale = True
                continue
            try:
                await self.read()
            except Exception:
                log.warning("reading the event outbox failed", exc_info=True)
                await asyncio.sleep(1.0)

    async def _last_id(self) -> int:
        try:
            return int(await self.store.scalar(LAST_EVENT_ID) or 0)
        except Exception:  # noqa: BLE001 - an unreadable mark keeps the old one
            return self._low

    async def read(self) -> None:
        """Hand out every event not seen yet."""
        while True:
            events = await self.store.rows(
                events_after(self._low, READ_BATCH), into=as_event
            )
            fresh = [event for event in events if event.id not in self._seen]
            for event in fresh:
                for subscriber in list(self.subscribers):
                    subscriber.offer(event)
            self._seen.update(event.id for event in fresh)
            self._advance()
            if not fresh or len(events) < READ_BATCH:
                return

    def _advance(self) -> None:
        """Move `_low` over the ids seen in a row, and over holes older than GAP_SECONDS."""
        while self._seen:
            following = self._low + 1
            if following in self._seen:
                self._seen.discard(following)
                self._low = following
                continue
            now = time.monotonic()
            if self._gap_since is None or self._gap_since[0] != following:
                self._gap_since = (following, now)
            if now - self._gap_since[1] < GAP_SECONDS:
                return
            self._low = min(self._seen) - 1  # the hole will not fill: step over it

    async def _listen(self) -> None:
        """LISTEN on a connection of its own; after each (re)connect, read what was missed."""
        url = make_url(self.settings.database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        delay = 0.5
        while not self._stopping:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    dsn, timeout=10, server_settings={"application_name": LISTENER_NAME}
                )
                lost = asyncio.Event()
                connection.add_termination_listener(_setter(lost))
                await connection.add_listener(CHANNEL, lambda *_: self._wakeup.set())
                self._wakeup.set()
                delay = 0.5
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), LISTENER_PING_SECONDS)
                    except TimeoutError:
                        await asyncio.wait_for(connection.fetchval("SELECT 1"), 5)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - any failure: reconnect after a pause
                log.warning("event listener lost its connection: %s", error)
            finally:
                if connection is not None and not connection.is_closed():
                    connection.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def _setter(signal: asyncio.Event) -> Callable[[object], None]:
    """A callback that sets `signal`, whatever it is called with."""
    return lambda *_: signal.set()
