"""The store a configuration names."""

from __future__ import annotations

from app.config import Settings
from app.storage.base import Store
from app.storage.engine import EngineStore
from app.storage.sqlite import SQLiteStore, sqlite_file


def open_store(settings: Settings) -> Store:
    """SQLite's own store for a SQLite file; the engine store for anything else."""
    url = settings.database_url
    path = sqlite_file(url) if url.startswith("sqlite") else None
    if path is not None:
        return SQLiteStore(url, path, fast_paths=settings.fast_paths)
    return EngineStore.for_settings(settings)
