"""What a seeded benchmark database is (kept beside it as JSON), and whether it is
current: the models and migrations it was seeded with, its size and seed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import SQLModel

import app.models  # registers every table

# 2: request ids are time-ordered, as the service makes them; 3: demand counters filled
SEED_VERSION = 3


@dataclass
class SeedInfo:
    """What a run needs to know about a seeded database (kept beside it as JSON)."""

    version: int
    requests: int
    items: int
    seed: int
    schema: str
    api_key: str
    seconds: float


def schema_fingerprint() -> str:
    """Changes whenever the models or the migrations change (then the seed is redone)."""
    engine = create_engine("sqlite://")
    ddl = [
        path.read_text()
        for path in sorted(
            (Path(app.models.__file__).parent.parent / "migrations").glob("**/*.py")
        )
    ]
    for table in SQLModel.metadata.sorted_tables:
        ddl.append(str(CreateTable(table).compile(engine)))
        ddl.extend(
            str(CreateIndex(index).compile(engine))
            for index in sorted(table.indexes, key=lambda index: index.name or "")
        )
    return hashlib.sha256("\n".join(ddl).encode()).hexdigest()[:16]


def info_path(db: Path) -> Path:
    return db.with_name(db.name + ".json")


def read_info(db: Path) -> SeedInfo | None:
    try:
        return SeedInfo(**json.loads(info_path(db).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def is_current(db: Path, *, requests: int, items: int, seed: int) -> bool:
    info = read_info(db)
    return (
        db.exists()
        and info is not None
        and (info.version, info.requests, info.items, info.seed)
        == (SEED_VERSION, requests, items, seed)
        and info.schema == schema_fingerprint()
    )
