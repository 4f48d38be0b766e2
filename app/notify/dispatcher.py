"""The dispatcher: claims queued notifications, sends them and records the outcome.

One loop per process: claim a batch (a lease), render and send its emails over
`DELIVERY_CONNECTIONS` connections at once, record outcomes every few messages, and hand
back what it did not get to.
No transaction is open while mail is being sent. A crash at any point leaves, at worst,
claims that expire after `DELIVERY_LEASE_SECONDS` and are then sent again with the same
Message-ID; never a lost notification or a request stuck in PROCESSING.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.config import ConfigurationError, Settings
from app.models import utc_now
from app.notify import queue
from app.notify.messages import OutgoingMessage, Sender, compose
from app.notify.templates import Templates, placeholders
from app.storage import Store, Transaction
from app.notify.transports import (
    FileTransport,
    MessageRefused,
    SmtpTransport,
    TransportUnavailable,
    transport_from_url,
)

log = logging.getLogger("app.notify")

# Outcomes are written after this many messages or seconds, whichever comes first: a crash
# resends at most that many.
RECORD_EVERY_MESSAGES = 50
RECORD_EVERY_SECONDS = 1.0
# The longest wait between two attempts, whatever the attempt count.
MAX_RETRY_DELAY_SECONDS = 3600.0
# Seconds to wait before polling again after an unexpected error (doubles up to a minute).
ERROR_PAUSE_SECONDS = 1.0


def retry_delay(attempts: int, base: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": between half and all of base * 2^(n-1)."""
    exponent = min(max(attempts - 1, 0), 32)
    ceiling = min(base * 2**exponent, MAX_RETRY_DELAY_SECONDS)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass
class _Outcomes:
    """Outcomes not yet written to the database."""

    sent: list[int] = field(default_factory=list)
    failed: list[queue.Failure] = field(default_factory=list)
    since: float = field(default_factory=time.monotonic)

    def __len__(self) -> int:
        return len(self.sent) + len(self.failed)


@dataclass
class DeliveryStats:
    sent: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, other: DeliveryStats) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.skipped += other.skipped


class Dispatcher:
    """Runs the delivery loop in the background of the current event loop."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random()
        self._name = f"{socket.gethostname()[:24]}:{os.getpid()}"
        self.templates: Templates | None = None
        # One transport (one SMTP connection) per lane a batch is sent over.
        self.transports: list[SmtpTransport | FileTransport] = []
        self.sender: Sender | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def prepare(self) -> None:
        """Load templates, transports and sender; raise ConfigurationError if one is broken."""
        settings = self.settings
        # A claim must outlive connecting plus sending one message, with room to spare.
        needed = 2 * settings.mail_timeout_seconds + self._lease_margin()
        if settings.delivery_lease_seconds < needed:
            raise ConfigurationError(
                f"DELIVERY_LEASE_SECONDS ({settings.delivery_lease_seconds:g}) must be at "
                f"least twice MAIL_TIMEOUT_SECONDS plus {self._lease_margin():g} "
                f"({needed:g})"
            )
        self.sender = Sender.parse(settings.mail_from)
        self.templates = Templates(settings.mail_template_dir)
        self.transports = [
            transport_from_url(settings.mail_url, timeout=settings.mail_timeout_seconds)
            for _ in range(settings.delivery_connections)
        ]

    def wake(self) -> None:
        """Look at the queue now rather than at the next poll."""
        self._wakeup.set()

    async def start(self) -> None:
        """Check the configuration (failing loudly), then deliver in the background."""
        if not self.transports:
            self.prepare()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="notification-dispatcher")
        log.info(
            "dispatcher %s delivering to %s", self._name, self.transports[0].describe()
        )

    async def stop(self) -> None:
        """Finish the messages in flight, record outcomes, hand back the rest of the batch."""
        self._stopping = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(
                    asyncio.shield(task), timeout=self.settings.mail_timeout_seconds + 5
                )
            except TimeoutError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.close()

    async def close(self) -> None:
        """Close the transports' connections (the next send opens new ones)."""
        for transport in self.transports:
            await transport.close()

    async def _run(self) -> None:
        pause = ERROR_PAUSE_SECONDS
        while not self._stopping:
            self._wakeup.clear()
            try:
                stats = await self.drain()
                if stats.sent or stats.failed or stats.skipped:
                    log.info(
                        "delivered %d, failed %d, dropped %d",
                        stats.sent,
                        stats.failed,
                        stats.skipped,
                    )
                pause = ERROR_PAUSE_SECONDS
                timeout = self.settings.delivery_poll_seconds
            except Exception:
                log.exception("delivery failed; trying again in %.0f s", pause)
                timeout, pause = pause, min(pause * 2, 60.0)
            finally:
                # Do not hold idle connections between polls.
                await self.close()
            if self._stopping:
                break
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=timeout)
            except TimeoutError:
                pass

    # -- delivering --------------------------------------------------------------------

    async def drain(self) -> DeliveryStats:
        """Deliver batches until nothing is due (or the dispatcher stops)."""
        total = DeliveryStats()
        while not self._stopping:
            stats = await self.deliver_batch()
            if stats is None:
                break
            total.add(stats)
        return total

    async def deliver_batch(self) -> DeliveryStats | None:
        """Claim one batch and deliver it; None when nothing was due."""
        if not self.transports:
            self.prepare()
        owner = f"{self._name}:{uuid.uuid4().hex[:16]}"
        deadline = time.monotonic() + self.settings.delivery_lease_seconds
        deadline -= self._lease_margin()
        claimed = await self._claim(owner)
        if claimed is None:
            return None
        batch, stale = claimed
        stats = await self._deliver(batch, owner, deadline)
        stats.skipped += len(stale)
        return stats

    async def _claim(self, owner: str) -> tuple[list[queue.Claimed], list[int]] | None:
        """Claim a batch: what to send, and the ids dropped as stale (None: nothing due)."""
        limit = self.settings.delivery_batch_size
        lease_seconds = self.settings.delivery_lease_seconds
        skip_locked = self.store.dialect == "postgresql"

        def claim(tx: Transaction) -> tuple[list[queue.Claimed], list[int]] | None:
            ids = queue.claim(
                tx,
                owner=owner,
                limit=limit,
                now=utc_now(),
                lease_seconds=lease_seconds,
                skip_locked=skip_locked,
            )
            if not ids:
                return None
            batch, stale = queue.load(tx, ids=ids)
            queue.drop(tx, owner=owner, ids=stale)
            return batch, stale

        return await self.store.write(claim)

    def _lease_margin(self) -> float:
        return min(5.0, self.settings.delivery_lease_seconds * 0.1)

    async def _deliver(
        self, batch: list[queue.Claimed], owner: str, deadline: float
    ) -> DeliveryStats:
        """Send a claimed batch over several connections at once; record every outcome."""
        run = _BatchRun(self, batch, owner, deadline)
        try:
            async with asyncio.TaskGroup() as lanes:
                for transport in self.transports[: max(1, len(batch))]:
                    lanes.create_task(run.lane(transport))
        finally:
            # Also on cancellation or an unexpected error: what was sent is recorded, what
            # was not tried is handed back. A message interrupted mid-send may have gone
            # out, so it stays claimed until its lease runs out.
            await run.flush()
            untried = [
                claimed.id
                for claimed in batch
                if claimed.id not in run.done and claimed.id not in run.in_flight
            ]
            if untried:
                await self.store.write(
                    lambda tx: queue.release(tx, owner=owner, ids=untried)
                )
        return run.stats

    def compose(self, claimed: queue.Claimed) -> OutgoingMessage:
        """The email of one claimed notification."""
        assert self.templates is not None and self.sender is not None
        rendered = self.templates.render(
            placeholders(
                item_name=claimed.item_name,
                item_price=claimed.item_price,
                item_image=claimed.item_image,
                item_url=claimed.item_url,
                email=claimed.email,
                contact_id=str(claimed.contact_id),
                request_id=str(claimed.request_id),
                parameters=claimed.template_parameters,
            )
        )
        return compose(
            rendered,
            sender=self.sender,
            recipient=claimed.email,
            request_id=claimed.request_id,
            round=claimed.round,
            date=utc_now(),
        )

    def failure(self, claimed: queue.Claimed, error: str) -> queue.Failure:
        """A failed attempt, with its retry time (none when no attempts are left)."""
        attempts = claimed.attempts + 1
        retry_at: datetime | None = None
        if attempts < self.settings.delivery_max_attempts:
            delay = retry_delay(
                attempts, self.settings.delivery_retry_base_seconds, self._rng
            )
            retry_at = utc_now() + timedelta(seconds=delay)
        return queue.Failure(
            notification_id=claimed.id,
            attempts=attempts,
            error=error,
            retry_at=retry_at,
        )

    async def record(self, outcomes: _Outcomes, owner: str) -> None:
        """Write outcomes, retrying a few times: an unrecorded send is sent again later."""
        for attempt in range(3):
            try:
                await self.store.write(lambda tx: _record(tx, outcomes, owner))
                return
            except Exception:
                if attempt == 2:
                    log.exception("cannot record %d delivery outcomes", len(outcomes))
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))


def _record(tx: Transaction, outcomes: _Outcomes, owner: str) -> None:
    queue.record_sent(tx, owner=owner, ids=outcomes.sent)
    queue.record_failures(tx, owner=owner, failures=outcomes.failed)


class _BatchRun:
    """One claimed batch being sent: lanes take messages from a shared work list."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        batch: list[queue.Claimed],
        owner: str,
        deadline: float,
    ) -> None:
        self.dispatcher = dispatcher
        self.owner = owner
        self.deadline = deadline
        self.work = collections.deque(batch)
        self.done: set[int] = set()
        self.in_flight: set[int] = set()
        self.outcomes = _Outcomes()
        self.stats = DeliveryStats()
        self.lanes_alive = 0
        # Worst case for one more message: connecting, then sending.
        self.needed = 2 * dispatcher.settings.mail_timeout_seconds

    def _may_start_another(self) -> bool:
        return (
            bool(self.work)
            and not self.dispatcher._stopping
            and time.monotonic() + self.needed <= self.deadline
        )

    def _failed(self, claimed: queue.Claimed, error: str) -> None:
        self.outcomes.failed.append(self.dispatcher.failure(claimed, error))
        self.done.add(claimed.id)

    async def lane(self, transport: SmtpTransport | FileTransport) -> None:
        self.lanes_alive += 1
        try:
            while self._may_start_another():
                claimed = self.work.popleft()
                try:
                    message = self.dispatcher.compose(claimed)
                except Exception as error:  # noqa: BLE001 - a bad template fails one email
                    log.warning("cannot render notification %s: %s", claimed.id, error)
                    self._failed(claimed, f"rendering failed: {error}")
                    continue
                self.in_flight.add(claimed.id)
                try:
                    await transport.send(message)
                except TransportUnavailable as error:
                    self.in_flight.discard(claimed.id)
                    if self.lanes_alive > 1:
                        # Other connections work (the server may limit how many): leave
                        # this message to them and close this lane.
                        self.work.appendleft(claimed)
                        return
                    # The server is down: fail the rest without trying each.
                    log.warning("mail transport unavailable: %s", error)
                    self._failed(claimed, str(error))
                    while self.work:
                        self._failed(self.work.popleft(), str(error))
                    return
                except MessageRefused as error:
                    log.info("notification %s not delivered: %s", claimed.id, error)
                    self._failed(claimed, str(error))
                else:
                    self.outcomes.sent.append(claimed.id)
                    self.done.add(claimed.id)
                self.in_flight.discard(claimed.id)
                if (
                    len(self.outcomes) >= RECORD_EVERY_MESSAGES
                    or time.monotonic() - self.outcomes.since >= RECORD_EVERY_SECONDS
                ):
                    await self.flush()
        finally:
            self.lanes_alive -= 1

    async def flush(self) -> None:
        """Record the outcomes so far (taken first, so two lanes never record one twice)."""
        outcomes, self.outcomes = self.outcomes, _Outcomes()
        if not len(outcomes):
            return
        await self.dispatcher.record(outcomes, self.owner)
        self.stats.sent += len(outcomes.sent)
        self.stats.failed += len(outcomes.failed)
