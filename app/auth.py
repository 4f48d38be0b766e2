"""API keys (minting, hashing, lookup) and the Principal a request acts as."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.models import ApiKey, utc_now
from app.permissions import Permission

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


async def create_api_key(
    session: AsyncSession, *, name: str, permissions: frozenset[Permission]
) -> tuple[ApiKey, str]:
    """Mint a key; the plain key is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(
        id=uuid.uuid4(),
        name=name,
        key_hash=hash_api_key(key),
        permissions=",".join(sorted(p.name for p in permissions)),
        created_date=utc_now(),
    )
    session.add(record)
    await session.flush()
    return record, key


async def list_api_keys(session: AsyncSession) -> list[ApiKey]:
    return list(await session.scalars(select(ApiKey).order_by(ApiKey.created_date)))


async def revoke_api_key(session: AsyncSession, *, id: uuid.UUID) -> bool:
    revoked = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == id, ApiKey.revoked_date.is_(None))
        .values(revoked_date=utc_now())
    )
    return revoked.rowcount > 0


class Authenticator:
    """Turns an Authorization header into a Principal, caching key checks briefly."""

    def __init__(
        self, database: Database, anonymous: frozenset[Permission], cache_seconds: float
    ) -> None:
        self.database = database
        self.anonymous = Principal(anonymous)
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}

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
        principal = await self._look_up(key_hash)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_hash] = (time.monotonic() + self.cache_seconds, principal)
        return principal

    def _refused(self, reason: str) -> Principal:
        return Principal(frozenset(), authentication_error=reason)

    async def _look_up(self, key_hash: str) -> Principal:
        async with self.database.reading() as session:
            record = await session.scalar(
                select(ApiKey).where(ApiKey.key_hash == key_hash)
            )
        if record is None or record.revoked_date is not None:
            return self._refused("unknown or revoked API key")
        now = utc_now()
        if (
            record.last_used_date is None
            or now - record.last_used_date > LAST_USED_RESOLUTION
        ):
            async with self.database.writing() as session:
                await session.execute(
                    update(ApiKey)
                    .where(ApiKey.id == record.id)
                    .values(last_used_date=now)
                )
        return Principal(
            parse_permissions(record.permissions) | self.anonymous.permissions,
            api_key_id=record.id,
        )
