"""Demand benchmark: the demand queries, the export and a chart, at 1,000,000 requests.

On bench/seed.py's seeded database (seeded once, then copied for each run) this times
`backInStockDemand` and `backInStockRequestStats` (the app in-process, so a call's time is
the server's time; p50 and p90 of 50 calls after 5 warm-up calls), and `python -m app
export-requests` (rows per second, and the process's peak RSS: the kernel's VmHWM). With
`--postgres URL` it does the same on PostgreSQL, with the seeded rows copied into a
database of its own there. It draws what `backInStockRequestStats` shows of the seeded
year into docs/request-stats.png.

    .venv/bin/python -m bench.bench_demand [--requests N --items N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import httpx

from app.config import Settings
from app.main import create_app
from bench import seed as seeding
from bench.postgres_copy import copy_to_postgres

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "docs" / "request-stats.png"
MAIN_APP = seeding.APPS[0][0]
CALLS, WARMUP = 50, 5
DEMAND = """
query Demand($appId: String, $first: Int, $after: String) {
  backInStockDemand(appId: $appId, first: $first, after: $after) {
    edges { cursor node { appId catalogItemId receivedCount processingCount
      notificationSentCount failedCount waitingCount oldestWaitingDate
      newestWaitingDate } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
DEMAND_TOTAL = "query { backInStockDemand(first: 0) { totalCount } }"
STATS = """
query Stats($appId: String, $from: DateTime!, $to: DateTime!) {
  backInStockRequestStats(appId: $appId, from: $from, to: $to) {
    createdCount notifiedCount failedCount
    days { day createdCount notifiedCount failedCount }
  }
}
"""
EXPORT_FILTER = json.dumps(
    {"catalogReference": {"appId": {"eq": MAIN_APP}}, "status": {"eq": "RECEIVED"}}
)


class Service:
    """The app in-process, called over ASGI with the seed's API key."""

    def __init__(self, database_url: str, key: str) -> None:
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            dispatch_in_serve=False,
            migrate_on_start=False,
        )
        self.app = create_app(settings)
        self.headers = {"Authorization": f"Bearer {key}"}

    async def __aenter__(self) -> Self:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        transport = httpx.ASGITransport(app=self.app)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://bench")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()
        await self._lifespan.__aexit__(*exc)

    async def call(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers=self.headers,
        )
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return body["data"]

    async def timed(self, query: str, variables: dict[str, Any] | None = None) -> str:
        """p50 / p90 in ms of CALLS calls, after WARMUP."""
        for _ in range(WARMUP):
            await self.call(query, variables)
        times = []
        for _ in range(CALLS):
            started = time.perf_counter()
            await self.call(query, variables)
            times.append((time.perf_counter() - started) * 1000)
        deciles = statistics.quantiles(times, n=10)
        return f"{statistics.median(times):.1f} / {deciles[8]:.1f}"


def _year(info: seeding.SeedInfo | None = None) -> tuple[datetime, datetime]:
    """The last 366 days, today included: the seeded year."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=365), today


async def query_cases(service: Service) -> dict[str, str]:
    start, end = _year()
    year = {"from": start.isoformat(), "to": end.isoformat()}
    after = None
    for _ in range(19):  # the cursor of page 20
        page = await service.call(DEMAND, {"first": 50, "after": after})
        after = page["backInStockDemand"]["pageInfo"]["endCursor"]
    return {
        "backInStockDemand, first 50": await service.timed(DEMAND, {"first": 50}),
        "backInStockDemand, page 20 of 50 by cursor": await service.timed(
            DEMAND, {"first": 50, "after": after}
        ),
        "backInStockDemand(appId), first 50": await service.timed(
            DEMAND, {"first": 50, "appId": MAIN_APP}
        ),
        "backInStockDemand totalCount": await service.timed(DEMAND_TOTAL),
        "backInStockRequestStats, 366 days": await service.timed(STATS, year),
        "backInStockRequestStats(appId), 366 days": await service.timed(
            STATS, {**year, "appId": MAIN_APP}
        ),
    }


def _peak_rss_mib(pid: int) -> float:
    """The process's resident high-water mark (VmHWM), 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_export(database_url: str, output: Path, *args: str) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one `python -m app export-requests`.

    The peak is the kernel's high-water mark of the export's own memory, read every
    50 ms while it runs (`wait4`'s figure would also count this process's memory at the
    fork).
    """
    environment = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    environment["MIGRATE_ON_START"] = "false"
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "export-requests",
            "--output",
            str(output),
            *args,
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, _peak_rss_mib(process.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if process.returncode:
        raise RuntimeError(f"export-requests exited with {process.returncode}")
    return seconds, peak


def export_cases(database_url: str, work: Path) -> dict[str, str]:
    """Every request (CSV, JSON Lines) and a filtered export; rows/s over the run."""
    results = {}
    nothing, _ = run_export(
        database_url, work / "none.csv", "--filter", '{"id": {"exists": false}}'
    )
    results["export start-up (a filter matching nothing)"] = f"{nothing:.1f} s"
    for name, args in [
        ("csv", ["--format", "csv"]),
        ("jsonl", ["--format", "jsonl"]),
        ("csv, one app's RECEIVED", ["--format", "csv", "--filter", EXPORT_FILTER]),
    ]:
        output = work / "export.out"
        seconds, rss = run_export(database_url, output, *args)
        rows = sum(1 for _ in output.open()) - (1 if "csv" in name else 0)
        streaming = rows / max(seconds - nothing, 1e-9)
        results[f"export {name}: {rows:,} rows"] = (
            f"{seconds:.1f} s, {rows / seconds:,.0f} rows/s "
            f"({streaming:,.0f} after start-up), peak RSS {rss:.0f} MiB"
        )
        output.unlink()
    return results


def draw_chart(days: list[dict[str, Any]], requests: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [date.fromisoformat(day["day"]) for day in days]
    figure, axes = plt.subplots(figsize=(9, 3.6), dpi=110)
    for field, label in [
        ("createdCount", "created"),
        ("notifiedCount", "notified"),
        ("failedCount", "failed"),
    ]:
        axes.plot(x, [day[field] for day in days], label=label, linewidth=1.2)
    axes.set_title(
        f"backInStockRequestStats over the bench's seeded year ({requests:,} requests)"
    )
    axes.set_ylabel("requests per UTC day")
    axes.legend(loc="center right")
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


async def measure(
    database_url: str, key: str, chart: Path | None = None, requests: int = 0
) -> dict[str, str]:
    async with Service(database_url, key) as service:
        results = await query_cases(service)
        if chart is not None:
            start, end = _year()
            year = {"from": start.isoformat(), "to": end.isoformat()}
            stats = await service.call(STATS, year)
            draw_chart(stats["backInStockRequestStats"]["days"], requests, chart)
    return results


def table(title: str, results: dict[str, str]) -> str:
    lines = [f"### {title}", "", "| case | figure |", "|---|---|"]
    lines += [f"| {case} | {figure} |" for case, figure in results.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL to run there too")
    parser.add_argument("--chart", type=Path, default=CHART)
    args = parser.parse_args(argv)

    pristine = ROOT / "bench" / ".data" / f"bench-{args.requests}-{args.items}.db"
    if not seeding.is_current(
        pristine, requests=args.requests, items=args.items, seed=1
    ):
        print(f"seeding {args.requests:,} requests ...", flush=True)
        seeding.seed(pristine, requests=args.requests, items=args.items, seed=1)
    info = seeding.read_info(pristine)
    assert info is not None
    with tempfile.TemporaryDirectory(prefix="bench-demand-") as directory:
        work = Path(directory)
        db = work / "bench.db"
        shutil.copyfile(pristine, db)
        sqlite_url = f"sqlite+aiosqlite:///{db}"
        sqlite = asyncio.run(
            measure(sqlite_url, info.api_key, args.chart, args.requests)
        )
        sqlite.update(export_cases(sqlite_url, work))
        print(table(f"SQLite, {args.requests:,} requests", sqlite), flush=True)
        if args.postgres:
            started = time.perf_counter()
            postgres_url = asyncio.run(copy_to_postgres(db, args.postgres))
            print(f"(copied to PostgreSQL in {time.perf_counter() - started:.0f} s)")
            postgres = asyncio.run(measure(postgres_url, info.api_key))
            postgres.update(export_cases(postgres_url, work))
            print(table(f"PostgreSQL, {args.requests:,} requests", postgres))
    print(f"chart: {args.chart}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
