"""What every dispatcher also does now and then: delete what nothing needs any more.

Rate-limit counters of past windows, sent and failed requests past RETENTION_DAYS, and
requests never confirmed past UNCONFIRMED_RETENTION_DAYS; in batches, one transaction
each, so a large purge never holds a long write. Several dispatchers may purge at once:
each batch deletes what is still there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from app.config import Settings
from app.services import confirmation, limits, privacy
from app.storage import Store, Transaction


@dataclass
class Purged:
    """What one purge deleted."""

    counters: int = 0
    settled_requests: int = 0
    unconfirmed_requests: int = 0

    def __bool__(self) -> bool:
        return bool(self.counters or self.settled_requests or self.unconfirmed_requests)


async def _in_batches(
    store: Store, batch: Callable[[Transaction], int], size: int
) -> int:
    """Run `batch` (deleting at most `size`) until it deletes fewer; the total."""
    total = 0
    while True:
        deleted = await store.write(batch)
        total += deleted
        if deleted < size:
            return total


async def purge(store: Store, settings: Settings, now: datetime) -> Purged:
    """Delete everything retention and the limits no longer keep, as of `now`."""
    purged = Purged()
    purged.counters = await _in_batches(
        store, lambda tx: limits.purge_counters(tx, now), limits.PURGE_BATCH
    )
    days = settings.retention_days
    if days is not None:
        purged.settled_requests = await _in_batches(
            store, lambda tx: privacy.purge_settled(tx, now, days), privacy.PURGE_BATCH
        )
    unconfirmed_days = settings.unconfirmed_retention_days
    purged.unconfirmed_requests = await _in_batches(
        store,
        lambda tx: confirmation.purge_unconfirmed(tx, now, unconfirmed_days),
        privacy.PURGE_BATCH,
    )
    return purged
