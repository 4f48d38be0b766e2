"""The soak: a mixed load for minutes against a real server, watching errors and memory.

Visitors create requests (distinct and duplicate), merchants read them by id, page them
with filters and totalCount, count by references, report items back in stock, mark some
as sent and delete others, while the server's dispatcher delivers to a file outbox. Every
answer must be HTTP 200 with no error but NOT_FOUND (a request another lane deleted). The
server's RSS is sampled every second, and the soak passes when RSS has stopped growing:
over the second half of the run (from the second minute on), the least-squares slope of RSS
is at most `--rss-slope` MB a minute. The first half warms bounded caches up (SQLite's page
caches, about 26 MB, fill as the database grows and the load reads it, which on a busy
machine takes until the fourth to sixth minute); a leak, or a heap that keeps fragmenting,
still grows through the second half.

The service runs as its users run it (`python -m app serve`: uvloop and httptools).
`--loop asyncio` runs it on asyncio's own loop instead, where PostgreSQL's load grows RSS by
fragmenting glibc's heap (bench/RESULTS.md, "Soak: RSS on PostgreSQL").

    .venv/bin/python -m bench.soak --minutes 5                       # SQLite
    .venv/bin/python -m bench.soak --minutes 5 --database postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.load import Server
from bench.pg_seed import DEFAULT_SERVER, _dsn, service_url

BENCH_DIR = Path(__file__).resolve().parent
FIELDS = "id status autoNotified createdDate catalogReference { appId catalogItemId options }"
CREATE = (
    "mutation C($r: BackInStockNotificationRequestInput!, $d: BackInStockItemDetailsInput!)"
    f" {{ createBackInStockNotificationRequest(request: $r, itemDetails: $d) {{ {FIELDS} }} }}"
)
GET = f"query G($id: ID!) {{ backInStockNotificationRequest(id: $id) {{ {FIELDS} }} }}"
PAGE = (
    "query P($f: BackInStockNotificationRequestFilter) { backInStockNotificationRequests("
    f"first: 100, filter: $f) {{ totalCount nodes {{ {FIELDS} }} }} }}"
)
COUNTS = (
    "query N($refs: [CatalogReferenceInput!]!) { "
    "backInStockNotificationRequestsCountByCatalogReferences(catalogReferences: $refs) "
    "{ count } }"
)
REPORT = (
    "mutation R($d: BackInStockItemDetailsInput!, $o: ReportItemsBackInStockOptions) { "
    "reportItemsBackInStock(itemDetails: $d, options: $o) { queuedCount } }"
)
MARK = "mutation M($id: ID!) { markAsNotificationSent(id: $id) { id status } }"
DELETE = "mutation D($id: ID!) { deleteBackInStockNotificationRequest(id: $id) }"
START = 'mutation { startCollectingRequests(appId: "soak") { __typename } }'
ITEM = {"name": "Soak shoe", "price": "10.00"}
ITEMS = 200
# What lanes racing one another may rightly be told: a request another lane deleted.
EXPECTED_CODES = {"BACK_IN_STOCK_NOTIFICATION_REQUEST_NOT_FOUND"}


class Soak:
    def __init__(self, url: str, key: str, seed: int) -> None:
        self.url = url
        self.key = key
        self.rng = random.Random(seed)
        self.ids: list[str] = []
        self.answers = 0
        self.errors: list[str] = []

    async def ask(
        self,
        http: httpx.AsyncClient,
        query: str,
        variables: dict[str, Any],
        keyed: bool,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.key}"} if keyed else {}
        response = await http.post(
            self.url, json={"query": query, "variables": variables}, headers=headers
        )
        self.answers += 1
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else None
        )
        if response.status_code != 200 or body is None:
            self.errors.append(f"{response.status_code} {response.text[:200]}")
            return None
        codes = {
            (error.get("extensions") or {}).get("code")
            for error in body.get("errors", [])
        }
        if codes - EXPECTED_CODES:
            self.errors.append(f"{response.status_code} {response.text[:200]}")
        return None if codes else body["data"]

    def reference(self) -> dict[str, Any]:
        item = self.rng.randrange(ITEMS)
        options = {"size": 36 + item % 10} if item % 3 else None
        return {"appId": "soak", "catalogItemId": f"item-{item}", "options": options}

    async def one(self, http: httpx.AsyncClient) -> None:
        roll = self.rng.random()
        if roll < 0.35 or not self.ids:
            email = f"shopper{self.rng.randrange(5000)}@example.com"
            variables = {
                "r": {"catalogReference": self.reference(), "email": email},
                "d": ITEM,
            }
            data = await self.ask(http, CREATE, variables, keyed=False)
            if data:
                self.ids.append(data["createBackInStockNotificationRequest"]["id"])
                del self.ids[:-20_000]
        elif roll < 0.60:
            await self.ask(http, GET, {"id": self.rng.choice(self.ids)}, keyed=True)
        elif roll < 0.75:
            status = self.rng.choice(["RECEIVED", "PROCESSING", "NOTIFICATION_SENT"])
            variables = {
                "f": {
                    "status": {"eq": status},
                    "catalogReference": {"appId": {"eq": "soak"}},
                }
            }
            await self.ask(http, PAGE, variables, keyed=True)
        elif roll < 0.83:
            refs = [self.reference() for _ in range(20)]
            await self.ask(http, COUNTS, {"refs": refs}, keyed=True)
        elif roll < 0.88:
            options = {"catalogReference": self.reference()}
            await self.ask(http, REPORT, {"d": ITEM, "o": options}, keyed=True)
        elif roll < 0.95:
            await self.ask(http, MARK, {"id": self.rng.choice(self.ids)}, keyed=True)
        else:
            id_ = self.ids.pop(self.rng.randrange(len(self.ids)))
            await self.ask(http, DELETE, {"id": id_}, keyed=True)

    async def run(self, seconds: float, connections: int) -> None:
        deadline = time.monotonic() + seconds

        async def lane() -> None:
            async with httpx.AsyncClient(timeout=60) as http:
                while time.monotonic() < deadline:
                    await self.one(http)

        await asyncio.gather(*(lane() for _ in range(connections)))


async def _postgres_database(server_url: str) -> str:
    name = f"soak_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return service_url(server_url, name)


def _mint_key(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app", "create-api-key", "--name", "soak"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="soak-", dir=BENCH_DIR / ".data") as tmp:
        work = Path(tmp)
        url = (
            f"sqlite+aiosqlite:///{work / 'soak.db'}"
            if args.database == "sqlite"
            else await _postgres_database(args.server_url)
        )
        env = {
            "DATABASE_URL": url,
            "MAIL_URL": f"file://{work / 'outbox'}",
            "RATE_LIMIT_PER_CLIENT": "",
            "RATE_LIMIT_PER_EMAIL": "",
            "MAX_OPEN_REQUESTS_PER_EMAIL": "0",
            "DELIVERY_RETRY_BASE_SECONDS": "0.5",
        }
        full_env = {**os.environ, **env}
        # Set-up, before any load runs: blocking the loop here delays nothing measured.
        subprocess.run(  # noqa: ASYNC221
            [sys.executable, "-m", "app", "migrate"],
            env=full_env,
            check=True,
            capture_output=True,
        )
        key = _mint_key(full_env)
        server = Server("app-serve", env=env, serve=True, loop=args.loop)
        server.start(work)
        samples: list[tuple[float, float]] = []
        stop = asyncio.Event()

        async def sample() -> None:
            started = time.monotonic()
            while not stop.is_set():
                samples.append((time.monotonic() - started, server.rss_mb()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

        try:
            soak = Soak(server.url, key, seed=7)
            async with httpx.AsyncClient() as http:
                await soak.ask(http, START, {}, keyed=True)
            sampler = asyncio.ensure_future(sample())
            await soak.run(args.minutes * 60, args.connections)
            stop.set()
            await sampler
        finally:
            server.stop()
    passed = report(samples, soak, args)
    return 0 if passed else 1


def median_between(
    samples: list[tuple[float, float]], start: float, end: float
) -> float:
    return statistics.median(
        [rss for at, rss in samples if start <= at < end] or [samples[0][1]]
    )


def report(
    samples: list[tuple[float, float]], soak: Soak, args: argparse.Namespace
) -> bool:
    """Print the answers, errors and RSS by minute; whether the soak passed."""
    end = samples[-1][0]
    half = max(60.0, min(end / 2, end - 60))
    second_half = [(at / 60, rss) for at, rss in samples if at >= half]
    slope = statistics.linear_regression(*zip(*second_half, strict=True)).slope
    print(
        f"{args.database} ({args.loop}): {soak.answers:,} answers in {args.minutes:g} min, "
        f"{len(soak.errors)} errors"
    )
    print(
        f"RSS: second minute {median_between(samples, 60, 120):.0f} MB, last minute "
        f"{median_between(samples, end - 60, end + 1):.0f} MB, peak "
        f"{max(rss for _, rss in samples):.0f} MB; from {half / 60:.1f} min on "
        f"{slope:+.2f} MB a minute"
    )
    by_minute = [
        median_between(samples, m * 60, (m + 1) * 60) for m in range(int(end // 60) + 1)
    ]
    print("RSS by minute (MB):", " ".join(f"{rss:.0f}" for rss in by_minute))
    for error in soak.errors[:5]:
        print("  error:", error)
    passed = not soak.errors and slope <= args.rss_slope
    print("soak:", "passed" if passed else "FAILED")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database", choices=["sqlite", "postgresql"], default="sqlite"
    )
    parser.add_argument("--server-url", default=DEFAULT_SERVER)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rss-slope", type=float, default=1.0)
    args = parser.parse_args()
    (BENCH_DIR / ".data").mkdir(exist_ok=True)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
