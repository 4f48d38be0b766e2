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
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.config import ConfigurationError, Settings
from app.events.webhooks import WebhookDispatcher
from app.models import Clock, utc_now
from app.notify import maintenance, queue
from app.notify.batch import BatchRun, DeliveryStats, Outcomes
from app.notify.confirmations import deliver_confirmations
from app.notify.messages import OutgoingMessage, Sender, Unsubscribe, compose
from app.notify.templates import Templates, confirmation_templates, placeholders
from app.notify.transports import FileTransport, SmtpTransport, transport_from_url
from app.services.links import Links, load_links
from app.storage import Store, Transaction

log = logging.getLogger("app.notify")

# The longest wait between two attempts, whatever the attempt count.
MAX_RETRY_DELAY_SECONDS = 3600.0
# Seconds to wait before polling again after an unexpected error (doubles up to a minute).
ERROR_PAUSE_SECONDS = 1.0

__all__ = ["ClaimedBatch", "DeliveryStats", "Dispatcher", "retry_delay"]


def retry_delay(attempts: int, base: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": between half and all of base * 2^(n-1)."""
    exponent = min(max(attempts - 1, 0), 32)
    ceiling = min(base * 2.0**exponent, MAX_RETRY_DELAY_SECONDS)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class ClaimedBatch:
    """Notifications claimed under one lease, ready for `Dispatcher.deliver`."""

    # The claim's token: every outcome is recorded only while the lease is still its own.
    owner: str
    notifications: list[queue.Claimed]
    # Ids dropped unsent at the claim (request gone or settled, or a cancel asked for).
    dropped: list[int]
    # time.monotonic() at the claim: the lease runs from here.
    claimed_at: float


class Dispatcher:
    """Runs the delivery loop in the background of the current event loop."""

    def __init__(
        self, store: Store, settings: Settings, *, clock: Clock = utc_now
    ) -> None:
        self.store = store
        self.settings = settings
        # What retention reads the time from (leases read the host's own clock).
        self.clock = clock
        # time.monotonic() of the next purge (app.notify.maintenance): at the first loop.
        self._next_purge = 0.0
        self._wakeup = asyncio.Event()
        self.stopping = False
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random()
        self.name = f"{socket.gethostname()[:24]}:{os.getpid()}"
        self.templates: Templates | None = None
        # The confirmation email's (double opt-in: app.notify.confirmations).
        self.confirmation_templates: Templates | None = None
        # One transport (one SMTP connection) per lane a batch is sent over.
        self.transports: list[SmtpTransport | FileTransport] = []
        self.sender: Sender | None = None
        # Signs the unsubscribe and confirmation links in emails (loaded at the start).
        self.links: Links | None = None
        # Webhooks: delivered beside mail, by a loop and connections of their own, and
        # held back to one connection while mail is being sent.
        self.sending = False
        self.webhooks = WebhookDispatcher(
            store, settings, yield_to=lambda: self.sending
        )

    # -- lifecycle ---------------------------------------------------------------------

    def prepare(self) -> None:
        """Load templates, transports and sender; raise ConfigurationError if one is broken."""
        settings = self.settings
        # A claim must outlive connecting plus sending one message, with room to spare.
        needed = 2 * settings.mail_timeout_seconds + self.lease_margin()
        if settings.delivery_lease_seconds < needed:
            raise ConfigurationError(
                f"DELIVERY_LEASE_SECONDS ({settings.delivery_lease_seconds:g}) must be at "
                f"least twice MAIL_TIMEOUT_SECONDS plus {self.lease_margin():g} "
                f"({needed:g})"
            )
        if settings.mail_final_reply_timeout_seconds < settings.mail_timeout_seconds:
            raise ConfigurationError(
                "MAIL_FINAL_REPLY_TIMEOUT_SECONDS "
                f"({settings.mail_final_reply_timeout_seconds:g}) must be at least "
                f"MAIL_TIMEOUT_SECONDS ({settings.mail_timeout_seconds:g})"
            )
        self.sender = Sender.parse(settings.mail_from)
        self.templates = Templates(settings.mail_template_dir)
        self.confirmation_templates = confirmation_templates(settings.mail_template_dir)
        self.transports = [
            transport_from_url(
                settings.mail_url,
                timeout=settings.mail_timeout_seconds,
                final_reply_timeout=settings.mail_final_reply_timeout_seconds,
            )
            for _ in range(settings.delivery_connections)
        ]

    def wake(self) -> None:
        """Look at the queue now rather than at the next poll."""
        self._wakeup.set()

    async def prepare_links(self) -> Links:
        """The links emails carry, signed with the server keys (read once)."""
        if self.links is None:
            self.links = await load_links(self.store, self.settings, self.clock)
        return self.links

    async def start(self) -> None:
        """Check the configuration (failing loudly), then deliver in the background."""
        if not self.transports:
            self.prepare()
        await self.prepare_links()
        self.stopping = False
        self._task = asyncio.create_task(self._run(), name="notification-dispatcher")
        await self.webhooks.start()
        log.info(
            "dispatcher %s delivering to %s", self.name, self.transports[0].describe()
        )

    async def stop(self) -> None:
        """Finish the messages in flight, record outcomes, hand back the rest of the batch."""
        self.stopping = True
        self._wakeup.set()
        webhooks_stopped = asyncio.ensure_future(self.webhooks.stop())
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
        await webhooks_stopped

    async def close(self) -> None:
        """Close the transports' connections (the next send opens new ones)."""
        for transport in self.transports:
            await transport.close()

    async def _run(self) -> None:
        pause = ERROR_PAUSE_SECONDS
        while not self.stopping:
            self._wakeup.clear()
            try:
                await self._purge_when_due()
                await self.send_confirmations()
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
            if self.stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=timeout)

    async def _purge_when_due(self) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self.settings.purge_interval_seconds
        purged = await self.purge()
        if purged:
            log.info(
                "purged %d rate-limit counters, %d sent or failed requests, "
                "%d unconfirmed requests",
                purged.counters,
                purged.settled_requests,
                purged.unconfirmed_requests,
            )

    async def send_confirmations(self) -> int:
        """Send the confirmation emails due (double opt-in); how many went out."""
        if not self.transports:
            self.prepare()
        await self.prepare_links()
        assert self.confirmation_templates is not None
        sent = 0
        while not self.stopping:
            batch = await deliver_confirmations(self, self.confirmation_templates)
            if not batch:
                break
            sent += batch
        if sent:
            log.info("sent %d confirmation emails", sent)
        return sent

    def retry_delay(self, attempts: int) -> float:
        """The wait before the next attempt after `attempts` failed ones."""
        return retry_delay(
            attempts, self.settings.delivery_retry_base_seconds, self._rng
        )

    async def purge(self) -> maintenance.Purged:
        """Delete what retention and the limits no longer keep (every
        PURGE_INTERVAL_SECONDS in the loop; public for tests and tools)."""
        return await maintenance.purge(self.store, self.settings, self.clock())

    # -- delivering --------------------------------------------------------------------

    async def drain(self) -> DeliveryStats:
        """Deliver batches until nothing is due (or the dispatcher stops)."""
        total = DeliveryStats()
        while not self.stopping:
            stats = await self.deliver_batch()
            if stats is None:
                break
            total.add(stats)
        return total

    async def deliver_batch(self) -> DeliveryStats | None:
        """Claim one batch and deliver it; None when nothing was due."""
        batch = await self.claim_batch()
        if batch is None:
            return None
        return await self.deliver(batch)

    async def claim_batch(self, owner: str | None = None) -> ClaimedBatch | None:
        """Claim up to DELIVERY_BATCH_SIZE due notifications under a lease (None: none due).

        In the same transaction, notifications nothing should be sent for are dropped
        (their request gone or settled) or settled as marked by hand (a cancel asked for).
        `owner` names the claim; by default a unique token of this dispatcher.
        """
        if not self.transports:
            self.prepare()
        await self.prepare_links()
        token = owner or f"{self.name}:{uuid.uuid4().hex[:16]}"
        limit = self.settings.delivery_batch_size
        lease_seconds = self.settings.delivery_lease_seconds
        skip_locked = self.store.dialect == "postgresql"
        claimed_at = time.monotonic()
        now = utc_now()

        def claim(tx: Transaction) -> ClaimedBatch | None:
            ids = queue.claim(
                tx,
                owner=token,
                limit=limit,
                now=now,
                lease_seconds=lease_seconds,
                skip_locked=skip_locked,
            )
            if not ids:
                return None
            sendable, stale = queue.load(tx, ids=ids)
            queue.settle_withdrawn(tx, owner=token, ids=stale)
            queue.drop(tx, owner=token, ids=stale)
            return ClaimedBatch(token, sendable, stale, claimed_at)

        return await self.store.write(claim)

    def lease_margin(self) -> float:
        return min(5.0, self.settings.delivery_lease_seconds * 0.1)

    async def deliver(self, batch: ClaimedBatch) -> DeliveryStats:
        """Send a claimed batch over several connections at once; record every outcome.

        Messages whose cancel a mark or delete asked for are withdrawn before they start
        (checked at the start and every `WITHDRAW_EVERY_SECONDS`); the lease is renewed
        while messages are in flight.
        """
        if not self.transports:
            self.prepare()
        await self.prepare_links()
        run = BatchRun(self, batch)
        keeper = asyncio.create_task(run.keep(), name=f"keeper {batch.owner}")
        self.sending = True
        try:
            await run.withdraw_cancelled()
            async with asyncio.TaskGroup() as lanes:
                for transport in self.transports[: max(1, len(run.work))]:
                    lanes.create_task(run.lane(transport))
        finally:
            self.sending = False
            run.finished.set()
            await asyncio.gather(keeper, return_exceptions=True)
            # Also on cancellation or an unexpected error: what was sent is recorded,
            # what was not tried is handed back. A message interrupted mid-send may have
            # gone out: before its last byte it stays claimed until its lease runs out;
            # after it, it is settled as unconfirmed.
            run.note_interrupted(batch)
            await run.flush()
            untried = run.untried()
            if untried:
                owner = batch.owner
                await self.store.write(
                    lambda tx: queue.release(tx, owner=owner, ids=untried)
                )
        return run.stats

    def compose(self, claimed: queue.Claimed) -> OutgoingMessage:
        """The email of one claimed notification."""
        assert self.templates is not None and self.sender is not None
        assert self.links is not None
        unsubscribe_url = self.links.unsubscribe_url(claimed.contact_id)
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
                unsubscribe_url=unsubscribe_url,
            )
        )
        return compose(
            rendered,
            sender=self.sender,
            recipient=claimed.email,
            request_id=claimed.request_id,
            round=claimed.round,
            date=utc_now(),
            unsubscribe=Unsubscribe(unsubscribe_url, self.settings.unsubscribe_mailto),
        )

    def failure(
        self, claimed: queue.Claimed, error: str, *, permanent: bool = False
    ) -> queue.Failure:
        """A failed attempt, with its retry time (none when permanent or none are left)."""
        attempts = claimed.attempts + 1
        retry_at: datetime | None = None
        if not permanent and attempts < self.settings.delivery_max_attempts:
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

    async def record(self, outcomes: Outcomes, owner: str) -> None:
        """Write outcomes, retrying a few times: an unrecorded send is sent again later."""
        for attempt in range(3):
            try:
                await self.store.write(lambda tx: outcomes.write(tx, owner))
                return
            except Exception:
                if attempt == 2:
                    log.exception("cannot record %d delivery outcomes", len(outcomes))
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
