"""What every resolver can reach: the store, settings, the caller, the server keys and
the loaders."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial

from strawberry.dataloader import DataLoader

from app.auth import Principal
from app.config import Settings
from app.keys import ServerKeys
from app.models import Clock, utc_now
from app.services import catalog_items as catalog_item_service
from app.services import requests as request_service
from app.services.catalog_items import CatalogItemKey
from app.services.limits import SignUp, SignUpPolicy
from app.services.request_view import RequestRecord
from app.storage import Store


@dataclass
class Context:
    store: Store
    settings: Settings
    principal: Principal
    # What signs and verifies cursors (app/keys.py).
    keys: ServerKeys
    # Wakes the in-process dispatcher after a report (a no-op when none runs here).
    notify_queued: Callable[[], None] = lambda: None
    clock: Clock = utc_now
    # Representations this request's `_entities` fields were given (capped per request).
    entity_representations: int = 0
    # The client's address as the per-client limit counts it (app.http.clients): found
    # only when a visitor's create asks for it.
    find_client_address: Callable[[], str | None] = lambda: None
    # The limits visitors' creates are held to (app.services.limits); None: no limits.
    sign_up_policy: SignUpPolicy | None = None

    @property
    def sign_up(self) -> SignUp | None:
        """A visitor's create is a sign-up, held to the limits; a keyed caller's is not."""
        if self.sign_up_policy is None or self.principal.api_key_id is not None:
            return None
        return SignUp(self.sign_up_policy, self.find_client_address())

    @cached_property
    def request_loader(self) -> DataLoader[uuid.UUID, RequestRecord | None]:
        """Batches entity lookups (`_entities`); made only by the requests that use it."""
        # Not a method of self: a loader holding its context would make a reference cycle,
        # left for the garbage collector instead of freed when the request ends.
        return DataLoader(load_fn=partial(_load_requests, self.store))

    @cached_property
    def waiting_count_loader(self) -> DataLoader[CatalogItemKey, int]:
        """Waiting requests per catalog item: one query for every item of a request."""
        return DataLoader(load_fn=partial(_count_waiting, self.store))

    @cached_property
    def collecting_loader(self) -> DataLoader[str, bool]:
        """Collection state per app: one query for every app of a request."""
        return DataLoader(load_fn=partial(_are_collecting, self.store))


async def _load_requests(
    store: Store, ids: Sequence[uuid.UUID]
) -> list[RequestRecord | None]:
    found = await request_service.get_requests(store, ids=ids)
    return [found.get(request_id) for request_id in ids]


async def _count_waiting(store: Store, items: Sequence[CatalogItemKey]) -> list[int]:
    return await catalog_item_service.count_waiting_requests(store, items=items)


async def _are_collecting(store: Store, app_ids: Sequence[str]) -> list[bool]:
    return await catalog_item_service.are_collecting(store, app_ids=app_ids)
