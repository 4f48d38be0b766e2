"""API keys (minting, hashing, lookup) and the Principal a request acts as."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import insert, select, update

from app.models import ApiKey, table_of, utc_now
from app.permissions import Permission
from app.storage import Store

logger = logging.getLogger(__name__)

KEY_PREFIX = "bis_"
# last_used_date is a hint for humans; writing it once a minute per key is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the permissions held, or why the presented credentials were refused."""

    permissions: frozenset[Permission]
    api_key_id: uuid.UUID | None = None
    authentication_error: str | None = None

    def holds(self, permission: Permission) -> bool:
        return self.authentication_error is None and permission in self.permissions


def hash_api_key(key: str) -> str:
    # Keys are 256 random bits, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(key.encode()).hexdigest()


def parse_permissions(names: str) -> frozenset[Permission]:
    return frozenset(Permission[name] for name in names.split(",") if name)


class ApiKeyRecord(NamedTuple):
    """An API key as stored (never the key itself)."""

    id: uuid.UUID
    name: str
    key_hash: str
    permissions: str  # comma-separated names
    created_date: datetime
    last_used_date: datetime | None
    revoked_date: datetime | None


_KEYS = table_of(ApiKey)
_KEY_COLUMNS = [_KEYS.c[name] for name in ApiKeyRecord._fields]


async def create_api_key(
    store: Store, *, name: str, permissions: frozenset[Permission]
) -> tuple[ApiKeyRecord, str]:
    """Mint a key; the plain key is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        id=uuid.uuid4(),
        name=name,
        key_hash=hash_api_key(key),
        permissions=",".join(sorted(p.name for p in permissions)),
        created_date=utc_now(),
        last_used_date=None,
        revoked_date=None,
    )
    await store.write(lambda tx: tx.execute(insert(ApiKey).values(record._asdict())))
    return record, key


async def list_api_keys(store: Store) -> list[ApiKeyRecord]:
    return await store.rows(
        select(*_KEY_COLUMNS).order_by(_KEYS.c.created_date),
        into=ApiKeyRecord._make,
    )


async def revoke_api_key(store: Store, *, id: uuid.UUID) -> bool:
    revoke = (
        update(_KEYS)
        .where(_KEYS.c.id == id, _KEYS.c.revoked_date.is_(None))
        .values(revoked_date=utc_now())
    )
    return await store.write(lambda tx: tx.execute(revoke)) > 0


class Authenticator:
    """Turns an Authorization header into a Principal, caching key checks briefly.

    When a key's check expires under load, every request holding it would look it up at
    once; instead the first one does and the others wait for its answer. Noting when a
    key was last used is a write no request waits for.
    """

    def __init__(
        self, store: Store, anonymous: frozenset[Permission], cache_seconds: float
    ) -> None:
        self.store = store
        self.anonymous = Principal(anonymous)
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lookups: dict[str, asyncio.Future[Principal]] = {}
        self._background: set[asyncio.Task[None]] = set()
        # Statistics: how many times a key was looked up in the database.
        self.database_lookups = 0

    async def principal_for(self, authorization: str | None) -> Principal:
        if authorization is None:
            return self.anonymous
        scheme, _, key = authorization.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return self._refused("Authorization must be 'Bearer <api key>'")
        key_hash = hash_api_key(key)
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        lookup = self._lookups.get(key_hash)
        if lookup is None:
            lookup = self._lookups[key_hash] = asyncio.ensure_future(
                self._refresh(key_hash)
            )
            lookup.add_done_callback(lambda _: self._lookups.pop(key_hash, None))
        # Shielded: a caller that goes away does not cancel the others' answer.
        return await asyncio.shield(lookup)

    async def _refresh(self, key_hash: str) -> Principal:
        self.database_lookups += 1
        principal = await self._look_up(key_hash)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_hash] = (time.monotonic() + self.cache_seconds, principal)
        return principal

    def _refused(self, reason: str) -> Principal:
        return Principal(frozenset(), authentication_error=reason)

    async def _look_up(self, key_hash: str) -> Principal:
        rows = await self.store.rows(
            select(*_KEY_COLUMNS).where(_KEYS.c.key_hash == key_hash),
            into=ApiKeyRecord._make,
        )
        record = rows[0] if rows else None
        if record is None or record.revoked_date is not None:
            return self._refused("unknown or revoked API key")
        now = utc_now()
        if (
            record.last_used_date is None
            or now - record.last_used_date > LAST_USED_RESOLUTION
        ):
            self._note_use(record.id, now)
        return Principal(
            parse_permissions(record.permissions) | self.anonymous.permissions,
            api_key_id=record.id,
        )

    def _note_use(self, key_id: uuid.UUID, now: datetime) -> None:
        """Write last_used_date in the background; a failure only loses the hint."""
        statement = update(_KEYS).where(_KEYS.c.id == key_id).values(last_used_date=now)

        async def write() -> None:
            try:
                await self.store.write(lambda tx: tx.execute(statement))
            except Exception:
                logger.warning(
                    "could not note when API key %s was last used",
                    key_id,
                    exc_info=True,
                )

        task = asyncio.ensure_future(write())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def wait_for_background_writes(self) -> None:
        """Let the last-used notes finish (at shutdown, and in tests)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
