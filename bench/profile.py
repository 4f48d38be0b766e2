"""Profile one bench case in-process: the ASGI app called directly, no network, cProfile on.

    .venv/bin/python -m bench.profile get --requests 2000
    .venv/bin/python -m bench.profile page --db bench/.data/bench-1000000-50000.db

Cases: get, page, filtered, counted and counted-filtered (those pages with totalCount),
deep, counts, create. Uses a copy of the seeded database of the quick run unless `--db`
names one (copied first, so the seed stays pristine). Prints the mean time per request
and the top functions by cumulative and by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import gc
import io
import pstats
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from bench import cases
from bench import seed as seeding


async def _call(
    app, body: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive():  # type: ignore[no-untyped-def]
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message):  # type: ignore[no-untyped-def]
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def _bodies(case: str, db: Path, samples: cases.Samples) -> tuple[list[str], bool]:
    rng = random.Random(3)
    if case == "get":
        return [cases.body(cases.GET, {"id": id_}) for id_ in samples.ids], True
    if case == "page":
        return [cases.body(cases.PAGE, {"first": 100})], True
    if case == "filtered":
        return [
            cases.body(
                cases.FILTERED_PAGE,
                {
                    "first": 100,
                    "filter": {
                        "status": {"in": ["RECEIVED", "FAILED"]},
                        "catalogReference": {"appId": {"eq": cases.MAIN_APP}},
                    },
                },
            )
        ], True
    if case == "counted":
        return [cases.body(cases.COUNTED_PAGE, {"first": 100})], True
    if case == "counted-filtered":
        return [
            cases.body(cases.COUNTED_PAGE, {"first": 100, "filter": cases.FILTER})
        ], True
    if case == "deep":
        return [
            cases.body(cases.PAGE, {"first": 100, "after": cursor})
            for cursor in cases.deep_cursors(samples)
        ], True
    if case == "counts":
        refs = samples.references
        return [
            cases.body(cases.COUNT, {"refs": rng.sample(refs, min(100, len(refs)))})
            for _ in range(20)
        ], True
    if case == "create":
        return [
            cases.body(
                cases.CREATE,
                {
                    "request": {
                        "catalogReference": reference,
                        "email": f"profile-{uuid.uuid4().hex}@example.com",
                    },
                    "itemDetails": {"name": "Blue shoe", "price": "24.50"},
                },
            )
            for reference in rng.choices(samples.collecting_references, k=5000)
        ], False
    raise SystemExit(f"unknown case {case}")


async def _count_garbage(
    app, bodies: list[str], headers: list[tuple[bytes, bytes]], requests: int
) -> None:  # type: ignore[no-untyped-def]
    """Print the objects the requests left in reference cycles (only the GC frees those)."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for index in range(requests):
            await _call(app, bodies[index % len(bodies)].encode(), headers)
        gc.collect()
        kinds = collections.Counter(
            f"{type(thing).__module__}.{type(thing).__qualname__}"
            for thing in gc.garbage
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    print(
        f"{sum(kinds.values()) / requests:.1f} objects in cycles per request; the most common:"
    )
    for kind, count in kinds.most_common(25):
        print(f"  {count / requests:8.2f}  {kind}")


async def _profile(args: argparse.Namespace, db: Path, info: seeding.SeedInfo) -> None:
    from app.config import Settings
    from app.main import create_app

    samples = cases.collect_samples(
        db,
        deep_page=min(5000, max(2, info.requests // 200)),
        report_target=0,
        rng=random.Random(5),
    )
    bodies, with_key = _bodies(args.case, db, samples)
    headers = (
        [(b"authorization", f"Bearer {info.api_key}".encode())] if with_key else []
    )
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{db}",
        dispatch_in_serve=False,
        # As bench.run serves it: every in-process create comes from one client.
        rate_limit_per_client="",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        for index in range(min(200, args.requests)):  # warm up
            status, payload = await _call(
                app, bodies[index % len(bodies)].encode(), headers
            )
            if status != 200 or b'"errors"' in payload:
                raise SystemExit(f"{status} {payload[:500]!r}")
        if args.garbage:
            await _count_garbage(app, bodies, headers, args.requests)
            return
        profiler = cProfile.Profile()
        started = time.perf_counter()
        cpu_started = time.process_time()
        if args.profile:
            profiler.enable()
        for index in range(args.requests):
            await _call(app, bodies[index % len(bodies)].encode(), headers)
        if args.profile:
            profiler.disable()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    # CPU time (every thread of the process) moves far less than wall time on a busy machine.
    print(
        f"{args.case}: {elapsed / args.requests * 1e6:,.0f} µs per request (one at a time), "
        f"{cpu / args.requests * 1e6:,.0f} µs of CPU"
    )
    if args.profile:
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.top)
            print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "case",
        choices=[
            "get",
            "page",
            "filtered",
            "counted",
            "counted-filtered",
            "deep",
            "counts",
            "create",
        ],
    )
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument(
        "--garbage",
        action="store_true",
        help="count what requests leave in reference cycles",
    )
    args = parser.parse_args()
    source = (
        args.db or Path(__file__).resolve().parent / ".data" / "bench-100000-5000.db"
    )
    if args.db is None and not seeding.is_current(
        source, requests=100_000, items=5_000, seed=1
    ):
        seeding.seed(source, requests=100_000, items=5_000)
    info = seeding.read_info(source)
    assert info is not None, f"{source} has no seed description beside it"
    with tempfile.TemporaryDirectory(prefix="profile-", dir=source.parent) as tmp:
        db = Path(tmp) / "profile.db"
        shutil.copyfile(source, db)
        asyncio.run(_profile(args, db, info))


if __name__ == "__main__":
    main()
