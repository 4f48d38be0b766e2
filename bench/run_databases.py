"""The database of one bench run: a fresh copy of the seeded data, and samples read from it.

SQLite: the seeded file copied (every run starts from the same data). PostgreSQL: the
database bench/pg_seed.py seeds, copied with `CREATE DATABASE ... TEMPLATE` into one the
run owns and drops at the end, so the run's creates and reports never reach the seeded
data that other runs and the sweep (bench/sweep.py) share.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from bench import pg_seed
from bench import seed as seeding
from bench.cases import Samples, collect_samples, collect_samples_postgresql

RunDatabase = tuple[
    str, str, Samples
]  # the service's DATABASE_URL, an API key, samples


@contextlib.contextmanager
def sqlite_run_database(
    args: argparse.Namespace, work: Path, deep_page: int, rng: random.Random
) -> Iterator[RunDatabase]:
    pristine = args.data_dir / f"bench-{args.requests}-{args.items}.db"
    if args.reseed or not seeding.is_current(
        pristine, requests=args.requests, items=args.items, seed=1
    ):
        print(
            f"seeding {args.requests:,} requests over {args.items:,} items ...",
            flush=True,
        )
        seeding.seed(pristine, requests=args.requests, items=args.items, seed=1)
    info = seeding.read_info(pristine)
    assert info is not None
    db = work / "run.db"
    shutil.copyfile(pristine, db)
    # Written back now, or the server's first checkpoint pays for the whole copy.
    with open(db, "rb+") as copied:
        os.fsync(copied.fileno())
    samples = collect_samples(
        db, deep_page=deep_page, report_target=args.report, rng=rng
    )
    yield f"sqlite+aiosqlite:///{db}", info.api_key, samples


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _copy(server_url: str, template: str, name: str) -> None:
    """CREATE DATABASE name TEMPLATE template, waiting while others read the template."""
    admin = await asyncpg.connect(_dsn(server_url))
    try:
        for attempt in range(120):
            try:
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                return
            except asyncpg.ObjectInUseError:
                if attempt == 0:
                    print(f"waiting for other sessions to leave {template} ...")
                await asyncio.sleep(1)
        raise RuntimeError(f"{template} stayed in use for 2 minutes: cannot copy it")
    finally:
        await admin.close()


async def _drop(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(_dsn(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.contextmanager
def postgresql_run_database(
    args: argparse.Namespace, deep_page: int, rng: random.Random
) -> Iterator[RunDatabase]:
    seeded, key = asyncio.run(
        pg_seed.seed(
            args.server_url,
            requests=args.requests,
            items=args.items,
            reseed=args.reseed,
        )
    )
    template = make_url(seeded).database
    assert template is not None
    name = f"{template}_run_{os.getpid()}"
    asyncio.run(_copy(args.server_url, template, name))
    try:
        samples = asyncio.run(
            collect_samples_postgresql(
                _dsn(args.server_url, name),
                deep_page=deep_page,
                report_target=args.report,
                rng=rng,
            )
        )
        yield pg_seed.service_url(args.server_url, name), key, samples
    finally:
        asyncio.run(_drop(args.server_url, name))
