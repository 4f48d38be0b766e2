"""Trusted documents: GraphQL documents kept in the database by the sha256 of their text.

Two kinds of registration: the operator's, from a client's build manifest (trusted), and a
client's, through Apollo's automatic persisted queries (known, so its id may stand for
its text, but never trusted). Every server process reads the same table; each keeps the
documents it has used in a bounded in-process cache, so a hit costs no query.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Column, Executable, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from app.models import Clock, TrustedDocument, TrustedDocumentId, table_of, utc_now
from app.storage import Store, Transaction

APQ_SOURCE = "apq"
MANIFEST_SOURCE_PREFIX = "manifest:"
CACHE_SIZE = 1024
# Rows asked for at once while registering a manifest (bound parameters per statement).
_CHUNK = 500

_DOCUMENTS = table_of(TrustedDocument)
_IDS = table_of(TrustedDocumentId)
_BY_HASH = select(_DOCUMENTS.c.text, _DOCUMENTS.c.source).where(
    _DOCUMENTS.c.sha256 == bindparam("sha256", type_=_DOCUMENTS.c.sha256.type)
)
_BY_ID = (
    select(_DOCUMENTS.c.text, _DOCUMENTS.c.source)
    .join(_IDS, _IDS.c.sha256 == _DOCUMENTS.c.sha256)
    .where(_IDS.c.document_id == bindparam("id", type_=_IDS.c.document_id.type))
)


def document_hash(text: str) -> str:
    """The lower-case hex sha256 of a document's UTF-8 text: its id everywhere."""
    return hashlib.sha256(text.encode()).hexdigest()


def manifest_source(name: str) -> str:
    return (MANIFEST_SOURCE_PREFIX + name)[:200]


class StoredDocument(NamedTuple):
    text: str
    source: str

    @property
    def trusted(self) -> bool:
        """Registered by the operator from a manifest, not by a client."""
        return self.source != APQ_SOURCE


class ManifestDocument(NamedTuple):
    """One document of a manifest; `other_id` is the manifest's id for it when that is
    not its sha256 (Relay's md5, for instance)."""

    text: str
    sha256: str
    other_id: str | None = None


class Registration(NamedTuple):
    """What registering a manifest did."""

    added: int  # new documents
    now_trusted: int  # known through APQ before, trusted from now on
    known: int  # already trusted


class ConflictingDocumentId(ValueError):
    """A manifest gives an id that already names another document."""


class TrustedDocuments:
    """Looks documents up by sha256 or by another id, through a bounded LRU cache."""

    def __init__(self, store: Store, size: int = CACHE_SIZE) -> None:
        self.store = store
        self._size = size
        # Keys are ("sha256", hex) or ("id", other id). Misses are not kept: another
        # process may register the document at any moment.
        self._cache: OrderedDict[tuple[str, str], StoredDocument] = OrderedDict()

    async def by_hash(self, sha256: str, *, trusted: bool) -> StoredDocument | None:
        """The document with this sha256; with `trusted`, a cached untrusted one is read
        again (the operator may have trusted it since)."""
        return await self._find(
            ("sha256", sha256), _BY_HASH, {"sha256": sha256}, trusted
        )

    async def by_id(self, other_id: str, *, trusted: bool) -> StoredDocument | None:
        """The document a manifest gave this id (not a sha256)."""
        return await self._find(("id", other_id), _BY_ID, {"id": other_id}, trusted)

    async def _find(
        self,
        key: tuple[str, str],
        statement: Executable,
        params: dict[str, str],
        trusted: bool,
    ) -> StoredDocument | None:
        cached = self._cache.get(key)
        if cached is not None and (cached.trusted or not trusted):
            self._cache.move_to_end(key)
            return cached
        rows = await self.store.rows(statement, params, into=StoredDocument._make)
        if not rows:
            return None
        self._keep(key, rows[0])
        return rows[0]

    def _keep(self, key: tuple[str, str], document: StoredDocument) -> None:
        self._cache[key] = document
        self._cache.move_to_end(key)
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)

    async def remember(self, sha256: str, text: str, *, clock: Clock = utc_now) -> None:
        """Keep a document a client registered (APQ); a known one is left as it is."""
        if ("sha256", sha256) in self._cache:
            return
        values = {
            "sha256": sha256,
            "text": text,
            "source": APQ_SOURCE,
            "created_date": clock(),
        }

        def body(tx: Transaction) -> None:
            insert = postgresql.insert if tx.dialect == "postgresql" else sqlite.insert
            tx.execute(insert(_DOCUMENTS).values(values).on_conflict_do_nothing())

        await self.store.write(body)
        self._keep(("sha256", sha256), StoredDocument(text, APQ_SOURCE))


async def trust_documents(
    store: Store,
    documents: Sequence[ManifestDocument],
    *,
    source: str,
    clock: Clock = utc_now,
) -> Registration:
    """Register a manifest's documents as trusted, in one transaction (idempotent).

    A document known through APQ becomes trusted. Raises ConflictingDocumentId, and
    registers nothing, when one of the manifest's other ids already names another document.
    """
    now = clock()
    return await store.write(lambda tx: _register(tx, documents, source, now))


def _register(
    tx: Transaction, listed: Sequence[ManifestDocument], source: str, now: datetime
) -> Registration:
    # One row per text, whatever ids the manifest gives it.
    documents = list({document.sha256: document for document in listed}.values())
    hashes = [document.sha256 for document in documents]
    sources = dict(_chunked_rows(tx, _DOCUMENTS.c.sha256, _DOCUMENTS.c.source, hashes))
    _check_other_ids(tx, listed)
    insert = postgresql.insert if tx.dialect == "postgresql" else sqlite.insert
    for start in range(0, len(documents), _CHUNK):
        rows = [
            {
                "sha256": document.sha256,
                "text": document.text,
                "source": source,
                "created_date": now,
            }
            for document in documents[start : start + _CHUNK]
        ]
        statement = insert(_DOCUMENTS).values(rows)
        # A client's registration becomes the operator's; an operator's stays as it was.
        tx.execute(
            statement.on_conflict_do_update(
                index_elements=["sha256"],
                set_={"source": statement.excluded.source},
                where=_DOCUMENTS.c.source == APQ_SOURCE,
            )
        )
    other_ids = [
        {"document_id": d.other_id, "sha256": d.sha256} for d in listed if d.other_id
    ]
    for start in range(0, len(other_ids), _CHUNK):
        tx.execute(
            insert(_IDS)
            .values(other_ids[start : start + _CHUNK])
            .on_conflict_do_nothing()
        )
    return Registration(
        added=sum(1 for h in hashes if h not in sources),
        now_trusted=sum(1 for h in hashes if sources.get(h) == APQ_SOURCE),
        known=sum(1 for h in hashes if h in sources and sources[h] != APQ_SOURCE),
    )


def _check_other_ids(tx: Transaction, documents: Sequence[ManifestDocument]) -> None:
    wanted = {d.other_id: d.sha256 for d in documents if d.other_id is not None}
    taken = _chunked_rows(tx, _IDS.c.document_id, _IDS.c.sha256, list(wanted))
    for other_id, sha256 in taken:
        if wanted[other_id] != sha256:
            raise ConflictingDocumentId(
                f"id {other_id!r} already names another document (sha256 {sha256})"
            )


def _chunked_rows(
    tx: Transaction, key: Column[str], value: Column[str], keys: list[str]
) -> list[tuple[str, str]]:
    """(key, value) of the rows whose key is one of `keys`."""
    found: list[tuple[str, str]] = []
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        statement = select(key, value).where(key.in_(chunk))
        found.extend((row[0], row[1]) for row in tx.rows(statement))
    return found
