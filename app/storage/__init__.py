"""The one storage seam: services read with `Store.rows` and write with `Store.write`.

A service builds SQLAlchemy Core statements and runs them through a `Store`: single
statements for reads, and a transaction body (a sync function of a `Transaction`) for each
write, which the store runs as one transaction. How that happens is the store's business:
PostgreSQL runs it through SQLAlchemy's async engine (app/storage/engine.py), SQLite on a
writer thread of its own with the fast paths of app/storage/sqlite/.
"""

from app.storage.base import Store, Transaction
from app.storage.open import open_store

__all__ = ["Store", "Transaction", "open_store"]
