"""One claimed batch being sent: lanes take messages from a shared work list, a keeper
records outcomes, renews the lease and withdraws what a mark or delete cancelled.

Outcomes are written every `RECORD_EVERY_MESSAGES` messages or `RECORD_EVERY_SECONDS`,
whichever comes first: a crash resends at most that many.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from app.logmask import mask_emails
from app.models import utc_now
from app.notify import queue
from app.notify.transports import (
    DeliveryUnconfirmed,
    FileTransport,
    MessageRefused,
    SmtpTransport,
    TransportUnavailable,
)
from app.storage import Transaction

if TYPE_CHECKING:
    from app.notify.dispatcher import ClaimedBatch, Dispatcher

log = logging.getLogger("app.notify")

RECORD_EVERY_MESSAGES = 50
RECORD_EVERY_SECONDS = 1.0
# How often the keeper looks for cancels of messages not started yet: a mark or delete of
# one of them waits about this long.
WITHDRAW_EVERY_SECONDS = 0.25
INTERRUPTED = (
    "unconfirmed: interrupted while waiting for the reply to the end of the message; "
    "it may have been delivered, so it is not sent again"
)


@dataclass
class Outcomes:
    """Outcomes not yet written to the database."""

    sent: list[int] = field(default_factory=list)
    # Handed over without a final reply: settled as sent, with the doubt as the error.
    unconfirmed: list[queue.Failure] = field(default_factory=list)
    failed: list[queue.Failure] = field(default_factory=list)
    since: float = field(default_factory=time.monotonic)

    def __len__(self) -> int:
        return len(self.sent) + len(self.unconfirmed) + len(self.failed)

    def write(self, tx: Transaction, owner: str) -> None:
        queue.record_sent(tx, owner=owner, ids=self.sent)
        queue.record_unconfirmed(tx, owner=owner, outcomes=self.unconfirmed)
        queue.record_failures(tx, owner=owner, failures=self.failed)


@dataclass
class DeliveryStats:
    # Delivered, or handed over without a final reply (settled as sent).
    sent: int = 0
    failed: int = 0
    # Dropped unsent: the request was gone or settled, or its cancel was asked for.
    skipped: int = 0

    def add(self, other: DeliveryStats) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.skipped += other.skipped


class BatchRun:
    """Sends one claimed batch over the dispatcher's transports; see `Dispatcher.deliver`."""

    def __init__(self, dispatcher: Dispatcher, batch: ClaimedBatch) -> None:
        self.dispatcher = dispatcher
        self.owner = batch.owner
        settings = dispatcher.settings
        self.lease_seconds = settings.delivery_lease_seconds
        self.margin = dispatcher.lease_margin()
        self.deadline = batch.claimed_at + self.lease_seconds - self.margin
        self.work = collections.deque(batch.notifications)
        self.done: set[int] = set()
        self.in_flight: set[int] = set()
        # In flight past their last byte: their outcome is unconfirmed until the reply.
        self.handed_over: set[int] = set()
        self.outcomes = Outcomes()
        self.stats = DeliveryStats(skipped=len(batch.dropped))
        self.lanes_alive = 0
        self.finished = asyncio.Event()
        # Worst case for one more message up to its last byte: connecting, then sending.
        self.needed = 2 * settings.mail_timeout_seconds

    def untried(self) -> list[int]:
        """Claimed ids never started (nor settled): to hand back."""
        return [claimed.id for claimed in self.work if claimed.id not in self.done]

    def _may_start_another(self) -> bool:
        return (
            bool(self.work)
            and not self.dispatcher.stopping
            and time.monotonic() + self.needed <= self.deadline
        )

    def _failed(self, claimed: queue.Claimed, error: MessageRefused | str) -> None:
        permanent = isinstance(error, MessageRefused) and error.permanent
        failure = self.dispatcher.failure(claimed, str(error), permanent=permanent)
        self.outcomes.failed.append(failure)
        self.done.add(claimed.id)

    # -- lanes -------------------------------------------------------------------------

    async def lane(self, transport: SmtpTransport | FileTransport) -> None:
        self.lanes_alive += 1
        try:
            while self._may_start_another():
                claimed = self.work.popleft()
                if await self._send(transport, claimed) is False:
                    return
                if len(self.outcomes) >= RECORD_EVERY_MESSAGES or self._stale():
                    await self.flush()
        finally:
            self.lanes_alive -= 1

    async def _send(
        self, transport: SmtpTransport | FileTransport, claimed: queue.Claimed
    ) -> bool:
        """Send one message and note its outcome; False when this lane should end."""
        try:
            message = self.dispatcher.compose(claimed)
        except Exception as error:  # noqa: BLE001 - a bad template fails one email
            log.warning(
                "cannot render notification %s: %s", claimed.id, mask_emails(str(error))
            )
            self._failed(claimed, f"rendering failed: {error}")
            return True
        self.in_flight.add(claimed.id)
        try:
            await transport.send(message, lambda: self.handed_over.add(claimed.id))
        except TransportUnavailable as error:
            self.in_flight.discard(claimed.id)
            self.handed_over.discard(claimed.id)
            if self.lanes_alive > 1:
                # Other connections work (the server may limit how many): leave this
                # message to them and close this lane.
                self.work.appendleft(claimed)
                return False
            # The server is down: fail the rest without trying each.
            log.warning("mail transport unavailable: %s", mask_emails(str(error)))
            self._failed(claimed, error)
            while self.work:
                self._failed(self.work.popleft(), error)
            return False
        except MessageRefused as error:
            log.info(
                "notification %s not delivered: %s", claimed.id, mask_emails(str(error))
            )
            self._failed(claimed, error)
        except DeliveryUnconfirmed as error:
            log.warning("notification %s %s", claimed.id, mask_emails(str(error)))
            self._unconfirmed(claimed, str(error))
        else:
            self.outcomes.sent.append(claimed.id)
            self.done.add(claimed.id)
        self.in_flight.discard(claimed.id)
        self.handed_over.discard(claimed.id)
        return True

    def _unconfirmed(self, claimed: queue.Claimed, error: str) -> None:
        self.outcomes.unconfirmed.append(
            queue.Failure(
                notification_id=claimed.id,
                attempts=claimed.attempts + 1,
                error=error,
                retry_at=None,
            )
        )
        self.done.add(claimed.id)

    def note_interrupted(self, batch: ClaimedBatch) -> None:
        """Messages cut off while awaiting their final reply: unconfirmed, not resent.

        A message interrupted before its last byte keeps its lease and is tried again
        when the lease runs out.
        """
        for claimed in batch.notifications:
            if claimed.id in self.handed_over and claimed.id not in self.done:
                self._unconfirmed(claimed, INTERRUPTED)

    def _stale(self) -> bool:
        return time.monotonic() - self.outcomes.since >= RECORD_EVERY_SECONDS

    async def flush(self) -> None:
        """Record the outcomes so far (taken first, so two lanes never record one twice)."""
        outcomes, self.outcomes = self.outcomes, Outcomes()
        if not len(outcomes):
            return
        await self.dispatcher.record(outcomes, self.owner)
        self.stats.sent += len(outcomes.sent) + len(outcomes.unconfirmed)
        self.stats.failed += len(outcomes.failed)

    # -- the keeper --------------------------------------------------------------------

    async def keep(self) -> None:
        """Until the lanes finish: withdraw cancels, record late outcomes, renew the lease."""
        renew_every = self.lease_seconds / 3
        next_renewal = time.monotonic() + renew_every
        while not self.finished.is_set():
            try:
                await asyncio.wait_for(self.finished.wait(), WITHDRAW_EVERY_SECONDS)
                return
            except TimeoutError:
                pass
            try:
                await self.withdraw_cancelled()
                if len(self.outcomes) and self._stale():
                    await self.flush()
                if time.monotonic() >= next_renewal:
                    await self.renew()
                    next_renewal = time.monotonic() + renew_every
            except Exception:  # the lanes go on; the lease bounds them
                log.warning("keeping batch %s failed", self.owner, exc_info=True)

    async def withdraw_cancelled(self) -> None:
        """Take messages not started yet whose cancel was asked for off the work list.

        They are settled as marked by hand. Messages no longer claimed by this batch (a
        lease taken over, a request deleted) are dropped from the work list too.
        """
        pending = [claimed.id for claimed in self.work]
        if not pending:
            return
        wanted = {
            id
            for (id,) in await self.dispatcher.store.rows(
                queue.still_wanted(owner=self.owner, ids=pending)
            )
        }
        # The lanes may have started some meanwhile: those finish and record the truth.
        withdrawn = [c.id for c in self.work if c.id not in wanted]
        if not withdrawn:
            return
        gone = set(withdrawn)
        self.work = collections.deque(c for c in self.work if c.id not in gone)
        self.done |= gone
        owner = self.owner
        await self.dispatcher.store.write(
            lambda tx: queue.settle_withdrawn(tx, owner=owner, ids=withdrawn)
        )
        self.stats.skipped += len(withdrawn)

    async def renew(self) -> None:
        """Extend the lease of what is left, and with it the time to start messages."""
        ids = [c.id for c in self.work] + sorted(self.in_flight)
        if not ids:
            return
        started = time.monotonic()
        until = utc_now() + timedelta(seconds=self.lease_seconds)
        owner = self.owner
        await self.dispatcher.store.write(
            lambda tx: queue.renew(tx, owner=owner, ids=ids, until=until)
        )
        self.deadline = started + self.lease_seconds - self.margin
