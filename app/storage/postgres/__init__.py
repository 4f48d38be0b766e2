"""PostgreSQL's fast read path (app/storage/postgres/reader.py)."""

from app.storage.postgres.reader import PostgresReader

__all__ = ["PostgresReader"]
