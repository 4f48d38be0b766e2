"""One claimed batch of webhooks being posted: lanes share the work list, outcomes are
written every RECORD_EVERY_OUTCOMES outcomes or RECORD_EVERY_SECONDS, whichever first."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx

from app.events import deliveries, outcomes, payloads
from app.events.targets import Target, TargetRefused, resolve
from app.models import WebhookEndpoint, table_of, utc_now
from app.storage import Transaction

if TYPE_CHECKING:
    from app.events.webhooks import WebhookBatch, WebhookDispatcher

log = logging.getLogger("app.events")

RECORD_EVERY_OUTCOMES = 100
RECORD_EVERY_SECONDS = 1.0
# The most of a receiver's answer read (then the connection is dropped, not reused).
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "backinstock-webhooks/1"
GONE = 410
# While mail is being sent, one POST at most per this many seconds (the other lanes
# look again after as long).
YIELD_SECONDS = 0.02


@dataclass
class WebhookStats:
    delivered: int = 0
    failed: int = 0

    def add(self, other: WebhookStats) -> None:
        self.delivered += other.delivered
        self.failed += other.failed


@dataclass
class Outcomes:
    delivered: list[int] = field(default_factory=list)
    answered: set[uuid.UUID] = field(default_factory=set)
    failed: list[deliveries.Failure] = field(default_factory=list)
    gone: set[uuid.UUID] = field(default_factory=set)
    since: float = field(default_factory=time.monotonic)

    def __len__(self) -> int:
        return len(self.delivered) + len(self.failed) + len(self.gone)

    def write(
        self, tx: Transaction, owner: str, now: datetime, disable_after: float
    ) -> None:
        # Every endpoint first, then deliveries: the order of every transaction here.
        endpoints = table_of(WebhookEndpoint)
        disabled = []
        if self.gone:
            disabled += outcomes.disable(
                tx,
                where=endpoints.c.id.in_(self.gone),
                reason="the endpoint answered 410 Gone",
            )
        outcomes.record_successes(tx, endpoint_ids=self.answered, now=now)
        outcomes.note_failures(tx, failures=self.failed, now=now)
        if self.failed:
            limit = timedelta(seconds=disable_after)
            disabled += outcomes.disable(
                tx,
                where=outcomes.failing_since_before(now - limit),
                reason=f"failing for more than {limit} (WEBHOOK_DISABLE_AFTER_SECONDS)",
            )
        outcomes.retry_or_give_up(tx, owner=owner, failures=self.failed, now=now)
        outcomes.finish(tx, owner=owner, ids=self.delivered, now=now)
        outcomes.drop_owed(tx, endpoint_ids=disabled)


class BatchRun:
    """One claimed batch being posted: lanes share the work list; outcomes are written
    every RECORD_EVERY_OUTCOMES outcomes or RECORD_EVERY_SECONDS."""

    def __init__(self, dispatcher: WebhookDispatcher, batch: WebhookBatch) -> None:
        self.dispatcher = dispatcher
        self.owner = batch.owner
        self.work = collections.deque(batch.deliveries)
        self.outcomes = Outcomes()
        self.stats = WebhookStats()
        settings = dispatcher.settings
        self.timeout = settings.webhook_timeout_seconds
        self.deadline = (
            batch.claimed_at + dispatcher.lease_seconds - dispatcher.lease_margin()
        )
        self.allow_private = settings.webhook_allow_private_targets
        # One resolution (and check) per URL per batch.
        self.targets: dict[str, asyncio.Future[Target]] = {}

    def _may_start_another(self) -> bool:
        return (
            bool(self.work)
            and not self.dispatcher.stopping
            and time.monotonic() + self.timeout <= self.deadline
        )

    async def lane(self, index: int) -> None:
        while self._may_start_another():
            if self.dispatcher.yield_to():
                # Mail is being sent: one lane goes on, a POST at a time, and the others
                # wait, so webhooks take a small share of the process.
                await asyncio.sleep(YIELD_SECONDS)
                if index or not self._may_start_another():
                    continue
            claimed = self.work.popleft()
            await self._post(claimed)
            outcomes = self.outcomes
            if len(outcomes) >= RECORD_EVERY_OUTCOMES or (
                time.monotonic() - outcomes.since >= RECORD_EVERY_SECONDS
            ):
                await self.flush()

    async def _target(self, url: str) -> Target:
        if url not in self.targets:
            self.targets[url] = asyncio.ensure_future(
                resolve(url, allow_private=self.allow_private)
            )
        return await asyncio.shield(self.targets[url])

    async def _post(self, claimed: deliveries.Claimed) -> None:
        try:
            target = await self._target(claimed.url)
            status = await self._send(claimed, target)
        except TargetRefused as error:
            self._failed(claimed, f"refused: {error}")
            return
        except (httpx.TimeoutException, TimeoutError):
            self._failed(claimed, f"no answer within {self.timeout:g} s")
            return
        except httpx.HTTPError as error:
            self._failed(claimed, f"cannot connect: {error!r}")
            return
        if 200 <= status < 300:
            self.outcomes.delivered.append(claimed.id)
            self.outcomes.answered.add(claimed.endpoint_id)
        elif status == GONE:
            self.outcomes.gone.add(claimed.endpoint_id)
        else:
            self._failed(claimed, f"HTTP {status}")

    async def _send(self, claimed: deliveries.Claimed, target: Target) -> int:
        content = payloads.body(claimed.event)
        headers = payloads.headers(
            claimed.secrets, claimed.event, int(time.time()), content
        )
        headers.update({"host": target.host_header, "user-agent": USER_AGENT})
        client = self.dispatcher.client()
        async with asyncio.timeout(self.timeout):
            async with client.stream(
                "POST",
                target.pinned_url,
                content=content,
                headers=headers,
                extensions={"sni_hostname": target.host},
            ) as response:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > MAX_ANSWER_BYTES:
                        break
                return response.status_code

    def _failed(self, claimed: deliveries.Claimed, error: str) -> None:
        log.info("webhook %s to %s failed: %s", claimed.id, claimed.url, error)
        self.outcomes.failed.append(self.dispatcher.failure(claimed, error, utc_now()))

    async def flush(self) -> None:
        outcomes, self.outcomes = self.outcomes, Outcomes()
        if not len(outcomes):
            return
        owner, now = self.owner, utc_now()
        disable_after = self.dispatcher.settings.webhook_disable_after_seconds
        await self.dispatcher.store.write(
            lambda tx: outcomes.write(tx, owner, now, disable_after)
        )
        self.stats.delivered += len(outcomes.delivered)
        self.stats.failed += len(outcomes.failed)
