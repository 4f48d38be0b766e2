"""SQLite's fast implementation of the store (docs/sqlite.md)."""

from app.storage.sqlite.store import SQLiteStore, sqlite_file

__all__ = ["SQLiteStore", "sqlite_file"]
