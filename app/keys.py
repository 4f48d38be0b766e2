"""Server secrets: the keys that sign what the server hands out and must get back as made.

One place for them. `SECRET_KEYS` (comma-separated) names them: the first signs, every one
verifies, so a key is rotated by putting a new one first and dropping the old one once
what it signed has expired. Unset, the server uses a key generated on its first start and
kept in the database (table `server_keys`), which every server on that database shares.

Signatures are HMAC-SHA256 (itsdangerous), salted with what they are for (`purpose`), so
a value signed for one purpose is never accepted for another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime

from itsdangerous import Signer
from itsdangerous.encoding import base64_encode
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from app.config import Settings
from app.models import Clock, ServerKey, utc_now
from app.storage import Store, Transaction

# The name of the key generated for a database without SECRET_KEYS.
GENERATED_KEY_NAME = "default"


class _Signer(Signer):
    """itsdangerous' HMAC Signer, with the current key's HMAC prepared once.

    Signatures are exactly Signer's (any Signer with the same keys, salt and digest
    verifies them); a page signs up to a hundred cursors, and deriving the key and
    starting the HMAC for each was most of that cost.
    """

    def __init__(self, keys: list[bytes], purpose: str) -> None:
        super().__init__(
            keys, salt=purpose, digest_method=hashlib.sha256, key_derivation="hmac"
        )
        self._current = hmac.new(self.derive_key(), digestmod=hashlib.sha256)

    def get_signature(self, value: str | bytes) -> bytes:
        mac = self._current.copy()
        mac.update(value.encode() if isinstance(value, str) else value)
        return base64_encode(mac.digest())


class ServerKeys:
    """The server's keys, newest first: `current` signs, `all` verify."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._keys = tuple(keys)
        self._signers: dict[str, Signer] = {}

    @property
    def current(self) -> bytes:
        return self._keys[0]

    @property
    def all(self) -> tuple[bytes, ...]:
        return self._keys

    def signer(self, purpose: str) -> Signer:
        """Signs with `current` and verifies with any key, for this purpose only."""
        signer = self._signers.get(purpose)
        if signer is None:
            # itsdangerous takes its keys oldest first and signs with the last.
            signer = self._signers[purpose] = _Signer(
                list(reversed(self._keys)), purpose
            )
        return signer


def _keep_generated(key: str, at: datetime) -> Callable[[Transaction], str]:
    """Insert `key` unless a key is kept already, then read the kept one.

    Servers starting together on one database may each insert: the first wins, and all
    of them read its key.
    """

    def body(tx: Transaction) -> str:
        insert = postgresql.insert if tx.dialect == "postgresql" else sqlite.insert
        tx.execute(
            insert(ServerKey)
            .values(name=GENERATED_KEY_NAME, key=key, created_date=at)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        kept = tx.scalar(
            select(col(ServerKey.key)).where(col(ServerKey.name) == GENERATED_KEY_NAME)
        )
        return str(kept)

    return body


async def load_server_keys(
    store: Store, settings: Settings, clock: Clock = utc_now
) -> ServerKeys:
    """The keys of SECRET_KEYS, or else the database's own (made on first use)."""
    configured = settings.secret_key_list
    if configured:
        return ServerKeys([key.encode() for key in configured])
    kept = await store.write(_keep_generated(secrets.token_urlsafe(32), clock()))
    return ServerKeys([kept.encode()])
