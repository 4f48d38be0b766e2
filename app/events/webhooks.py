"""The webhook dispatcher: fans events out to endpoints, POSTs them, records outcomes.

It runs beside the mail dispatcher in the same processes (`serve`, `dispatch`) as a task
of its own with its own HTTP connections, so webhooks never hold up an email. Like mail,
deliveries are claimed under leases (several dispatchers share the work, one that dies
lets go within a lease) and outcomes are recorded in batches, guarded by the claim's
token; a crash resends at most the unrecorded ones, with the same `webhook-id`.
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from app.config import Settings
from app.events import deliveries, outcomes
from app.events.wakeups import wake_on
from app.events.webhook_batch import YIELD_SECONDS, BatchRun, WebhookStats
from app.models import utc_now
from app.storage import Store, Transaction

log = logging.getLogger("app.events")

FAN_OUT_BATCH = 1000
PURGE_EVERY_SECONDS = 60.0
PURGE_BATCH = 5000


def retry_delay(
    attempts: int, base: float, ceiling: float, rng: random.Random
) -> float:
    """Exponential backoff with "equal jitter": half to all of base * 2^(n-1)."""
    top = min(base * 2.0 ** min(max(attempts - 1, 0), 40), ceiling)
    return top / 2 + rng.uniform(0, top / 2)


@dataclass(frozen=True)
class WebhookBatch:
    owner: str
    deliveries: list[deliveries.Claimed]
    claimed_at: float


class WebhookDispatcher:
    """Delivers webhooks in the background of the current event loop."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        yield_to: Callable[[], bool] = lambda: False,
    ) -> None:
        self.store = store
        self.settings = settings
        # While this says true (mail is being sent), webhooks hold back (see lane()).
        self.yield_to = yield_to
        self.stopping = False
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stop_listening: Callable[[], None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._rng = random.Random()
        self._name = f"{socket.gethostname()[:24]}:{os.getpid()}"
        self._next_purge = 0.0

    @property
    def lease_seconds(self) -> float:
        """A claim's lease: DELIVERY_LEASE_SECONDS, or longer when a POST could outlast
        it (a lease must cover the longest POST, or another dispatcher resends it)."""
        settings = self.settings
        return max(
            settings.delivery_lease_seconds, 2 * settings.webhook_timeout_seconds + 5
        )

    def lease_margin(self) -> float:
        return min(5.0, self.lease_seconds * 0.1)

    def wake(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        self.stopping = False
        self._stop_listening = wake_on(asyncio.get_running_loop(), self._wakeup)
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        """Finish the POSTs in flight, record them, hand back the rest."""
        self.stopping = True
        self._wakeup.set()
        if self._stop_listening is not None:
            self._stop_listening()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(
                    asyncio.shield(task), self.settings.webhook_timeout_seconds + 5
                )
            except TimeoutError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _run(self) -> None:
        pause = 1.0
        while not self.stopping:
            self._wakeup.clear()
            try:
                stats = await self.drain()
                if stats.delivered or stats.failed:
                    log.info(
                        "webhooks: delivered %d, failed %d",
                        stats.delivered,
                        stats.failed,
                    )
                await self.purge_if_due()
                pause, timeout = 1.0, self.settings.delivery_poll_seconds
            except Exception:
                log.exception("webhook delivery failed; trying again in %.0f s", pause)
                timeout, pause = pause, min(pause * 2, 60.0)
            if self.stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=timeout)

    # -- the work ----------------------------------------------------------------------

    async def drain(self) -> WebhookStats:
        """Fan out and deliver until nothing is due (or the dispatcher stops)."""
        total = WebhookStats()
        while not self.stopping:
            if self.yield_to():
                # Mail first: fan out and claim again once the mail batch is sent.
                await asyncio.sleep(YIELD_SECONDS)
                continue
            fanned = await self.fan_out()
            batch = await self.claim_batch()
            if batch is not None:
                total.add(await self.deliver(batch))
            elif not fanned:
                break
        return total

    async def fan_out(self) -> int:
        now = utc_now()
        return await self.store.write(
            lambda tx: deliveries.fan_out(tx, now=now, limit=FAN_OUT_BATCH)
        )

    async def purge_if_due(self) -> int:
        """Delete events past retention, now and then."""
        if time.monotonic() < self._next_purge:
            return 0
        self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS
        before = utc_now() - timedelta(seconds=self.settings.event_retention_seconds)
        purged = 0
        while not self.stopping:
            count = await self.store.write(
                lambda tx: deliveries.purge(tx, before=before, limit=PURGE_BATCH)
            )
            purged += count
            if count < PURGE_BATCH:
                break
        return purged

    async def claim_batch(self, owner: str | None = None) -> WebhookBatch | None:
        """Claim up to WEBHOOK_BATCH_SIZE due deliveries under a lease."""
        token = owner or f"{self._name}:{uuid.uuid4().hex[:16]}"
        settings = self.settings
        skip_locked = self.store.dialect == "postgresql"
        claimed_at, now = time.monotonic(), utc_now()

        def claim(tx: Transaction) -> WebhookBatch | None:
            ids = deliveries.claim(
                tx,
                owner=token,
                limit=settings.webhook_batch_size,
                now=now,
                lease_seconds=self.lease_seconds,
                skip_locked=skip_locked,
            )
            if not ids:
                return None
            return WebhookBatch(
                token, deliveries.load(tx, ids=ids, now=now), claimed_at
            )

        return await self.store.write(claim)

    async def deliver(self, batch: WebhookBatch) -> WebhookStats:
        """POST a claimed batch over several connections at once; record every outcome."""
        run = BatchRun(self, batch)
        try:
            async with asyncio.TaskGroup() as lanes:
                for index in range(
                    min(self.settings.webhook_connections, len(run.work))
                ):
                    lanes.create_task(run.lane(index))
        finally:
            await run.flush()
            untried = [claimed.id for claimed in run.work]
            if untried:
                now = utc_now()
                await self.store.write(
                    lambda tx: outcomes.release(
                        tx, owner=batch.owner, ids=untried, now=now
                    )
                )
        return run.stats

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = self.settings.webhook_timeout_seconds
            connections = self.settings.webhook_connections
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(timeout),
                follow_redirects=False,
                # Never through a proxy from the environment: the address is pinned.
                trust_env=False,
                limits=httpx.Limits(
                    max_connections=connections, max_keepalive_connections=connections
                ),
            )
        return self._client

    def failure(
        self, claimed: deliveries.Claimed, error: str, now: datetime
    ) -> deliveries.Failure:
        """A failed attempt: retried after a backoff, or given up past the retry window."""
        settings = self.settings
        attempts = claimed.attempts + 1
        delay = retry_delay(
            attempts,
            settings.webhook_retry_base_seconds,
            settings.webhook_retry_max_delay_seconds,
            self._rng,
        )
        retry_at: datetime | None = now + timedelta(seconds=delay)
        window = timedelta(seconds=settings.webhook_retry_for_seconds)
        if retry_at is not None and retry_at > claimed.created_date + window:
            retry_at = None
        return deliveries.Failure(
            claimed.id, claimed.endpoint_id, attempts, error, retry_at
        )
