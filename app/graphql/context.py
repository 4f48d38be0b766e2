"""What every resolver can reach: the database, settings, the caller and the loaders."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial

from strawberry.dataloader import DataLoader

from app.auth import Principal
from app.config import Settings
from app.db import Database
from app.models import NotificationRequest
from app.services import requests as request_service


@dataclass
class Context:
    database: Database
    settings: Settings
    principal: Principal
    # Wakes the in-process dispatcher after a report (a no-op when none runs here).
    notify_queued: Callable[[], None] = lambda: None

    @cached_property
    def request_loader(self) -> DataLoader[uuid.UUID, NotificationRequest | None]:
        """Batches entity lookups (`_entities`); made only by the requests that use it."""
        # Not a method of self: a loader holding its context would make a reference cycle,
        # left for the garbage collector instead of freed when the request ends.
        return DataLoader(load_fn=partial(_load_requests, self.database))


async def _load_requests(
    database: Database, ids: Sequence[uuid.UUID]
) -> list[NotificationRequest | None]:
    found = await request_service.get_requests(database, ids=ids)
    return [found.get(request_id) for request_id in ids]
