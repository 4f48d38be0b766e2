"""PostgreSQL's fast paths: reads on asyncpg's own pool (reader.py), and reusable
statements on asyncpg inside SQLAlchemy's write transactions (statements.py)."""

from app.storage.postgres.reader import PostgresReader
from app.storage.postgres.statements import CONNECTION_LOST, AsyncpgStatements

__all__ = ["CONNECTION_LOST", "AsyncpgStatements", "PostgresReader"]
