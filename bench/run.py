"""The benchmark: seed (once), then measure the reference servers and the service in one run.

    .venv/bin/python -m bench.run            # 1,000,000 requests, 15 s per case
    .venv/bin/python -m bench.run --quick    # 100,000 requests, 4 s per case (~3 minutes)
    .venv/bin/python -m bench.run --quick --database postgresql

Every server runs on uvloop and httptools: the references as uvicorn factories, the service
as its users run it (`python -m app serve`): one process on SQLite, two on one PostgreSQL
database (the load alternates connections between them). Servers are pinned to one core,
the load generator (wrk, or a Python client) to the other. Each figure is also printed as a
ratio to the in-memory Strawberry reference measured in the same run. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import pg_seed
from bench.cases import (
    BENCH_SECRET_KEY,
    REFERENCE_SPECS,
    REPORT,
    CaseSpec,
    Samples,
    body,
    check_deep_cursor,
    deep_cursors,
    service_specs,
)
from bench.figures import Report, Run, combine, compute, machine, table
from bench.load import LoadResult, RssSampler, cores, drive
from bench.run_servers import ServerGroup, pinning, references, service

BENCH_DIR = Path(__file__).resolve().parent


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.server_core, self.load_core = cores()
        self.rng = random.Random(7)

    def measure(
        self, spec: CaseSpec, server: ServerGroup, key: str | None, *, warm: bool
    ) -> tuple[LoadResult, float]:
        """(Warm up,) then measure; returns the result and the RSS peak while measuring."""
        common = {
            "connections": spec.connections,
            "key": key if spec.key else None,
            "work_dir": self.work,
            "core": self.load_core,
            "use_wrk": not self.args.python_client,
        }
        server.wait_idle()
        if warm:
            drive(server.urls, spec.bodies(), seconds=self.args.warmup, **common)
            server.wait_idle()
        with RssSampler(server) as rss:
            result = drive(
                server.urls,
                spec.bodies(),
                seconds=self.args.seconds / self.args.rounds,
                **common,
            )
        print(
            f"  {spec.name[:44]:44s} {result.rps:9,.0f} req/s  p50 {result.p50_ms:7.2f} ms  "
            f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}  RSS {rss.peak:.0f} MB",
            flush=True,
        )
        return result, rss.peak

    def run(self, database_url: str, key: str, samples: Samples, run: Run) -> None:
        """All servers up at once (idle ones cost nothing); cases measured in rounds.

        Each round measures every case for `seconds / rounds`; a case's ratio is the median
        over rounds of its figure divided by the in-memory figure of the same round, which
        keeps the ratios steady on a machine whose load comes and goes.
        """
        processes = 2 if self.args.database == "postgresql" else 1
        servers = {
            "service": service(
                database_url,
                self.work,
                processes=processes,
                core=self.server_core,
                secret_key=BENCH_SECRET_KEY,
            )
        }
        if not self.args.only_service:
            servers.update(references(self.server_core))
        try:
            for server in servers.values():
                server.start(self.work)
            group = servers["service"]
            check_deep_cursor(group.url, key, deep_cursors(samples)[0])
            specs = [] if self.args.only_service else list(REFERENCE_SPECS)
            specs += service_specs(samples, self.args.connections, self.rng)
            rounds: list[dict[str, tuple[LoadResult, float]]] = []
            for number in range(self.args.rounds):
                print(f"round {number + 1} of {self.args.rounds}", flush=True)
                rounds.append(
                    {
                        spec.name: self.measure(
                            spec, servers[spec.server], key, warm=number == 0
                        )
                        for spec in specs
                    }
                )
            run.cases = [
                combine(spec, [r[spec.name] for r in rounds], rounds) for spec in specs
            ]
            run.report = self.report(group, samples, key)
            run.service_peak_rss_mb = group.peak_rss_mb()
        finally:
            for server in servers.values():
                server.stop()

    def report(self, server: ServerGroup, samples: Samples, key: str) -> Report:
        """Report items back in stock until `--report` requests are queued; watch RSS."""
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        latencies: list[float] = []
        queued = errors = 0
        before = server.rss_mb()
        started = time.perf_counter()
        with httpx.Client(timeout=120) as client, RssSampler(server, 0.05) as rss:
            for reference, _ in samples.report_references:
                if time.perf_counter() - started > self.args.report_timeout:
                    break
                t0 = time.perf_counter()
                response = client.post(
                    server.url,
                    content=body(
                        REPORT,
                        {
                            "itemDetails": {"name": "Back again", "price": "19.99"},
                            "options": {"catalogReference": reference},
                        },
                    ),
                    headers=headers,
                )
                latencies.append(time.perf_counter() - t0)
                payload = response.json()
                if response.status_code != 200 or payload.get("errors"):
                    errors += 1
                    continue
                queued += payload["data"]["reportItemsBackInStock"]["queuedCount"]
        elapsed = time.perf_counter() - started
        latencies.sort()
        return Report(
            calls=len(latencies),
            queued=queued,
            seconds=elapsed,
            p50_ms=latencies[len(latencies) // 2] * 1000 if latencies else 0,
            p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
            if latencies
            else 0,
            errors=errors,
            rss_before_mb=before,
            rss_peak_mb=rss.peak,
            rss_after_mb=server.rss_mb(),
        )


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the service against references."
    )
    parser.add_argument("--quick", action="store_true", help="100k rows, 4 s per case")
    parser.add_argument(
        "--database", choices=["sqlite", "postgresql"], default="sqlite"
    )
    parser.add_argument(
        "--server-url",
        default=pg_seed.DEFAULT_SERVER,
        help="the PostgreSQL server (--database postgresql)",
    )
    parser.add_argument("--requests", type=int, help="rows to seed (default 1,000,000)")
    parser.add_argument("--items", type=int, help="catalog references (default 50,000)")
    parser.add_argument(
        "--seconds",
        type=float,
        help="measured seconds per case, over all rounds (default 15; quick 4)",
    )
    parser.add_argument(
        "--warmup", type=float, help="warm-up seconds per case (default 2)"
    )
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds (default 3; quick 2)"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--report", type=int, help="requests to report (default 100,000)"
    )
    parser.add_argument("--report-timeout", type=float, default=300.0)
    parser.add_argument("--data-dir", type=Path, default=BENCH_DIR / ".data")
    parser.add_argument(
        "--reseed", action="store_true", help="seed again even if current"
    )
    parser.add_argument("--python-client", action="store_true", help="do not use wrk")
    parser.add_argument(
        "--only-service", action="store_true", help="skip the references"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.requests = args.requests or (100_000 if quick else 1_000_000)
    args.items = args.items or (5_000 if quick else 50_000)
    args.seconds = args.seconds or (4.0 if quick else 15.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 2.0)
    args.rounds = args.rounds or (2 if quick else 3)
    args.report = args.report or (10_000 if quick else 100_000)
    return args


def main(argv: list[str] | None = None) -> int:
    from bench.run_databases import postgresql_run_database, sqlite_run_database

    args = arguments(argv)
    deep_page = min(5_000, max(2, args.requests // 200))
    args.data_dir.mkdir(parents=True, exist_ok=True)
    run = Run(
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        command=" ".join(
            [
                ".venv/bin/python -m bench.run",
                *(argv if argv is not None else sys.argv[1:]),
            ]
        ),
        machine=machine(),
        rows=args.requests,
        items=args.items,
        seconds_per_case=args.seconds,
        database=args.database,
    )
    with tempfile.TemporaryDirectory(prefix="bench-", dir=args.data_dir) as tmp:
        work = Path(tmp)
        bench = Bench(args, work)
        run.pinning = pinning(args.database, bench.server_core, bench.load_core)
        client = (
            "python client" if args.python_client or not shutil.which("wrk") else "wrk"
        )
        print(f"{run.pinning}; {client}", flush=True)
        opened = (
            postgresql_run_database(args, deep_page, bench.rng)
            if args.database == "postgresql"
            else sqlite_run_database(args, work, deep_page, bench.rng)
        )
        with opened as (database_url, key, samples):
            bench.run(database_url, key, samples, run)
    run.machine["load_average_at_end"] = os.getloadavg()
    compute(run)
    return write_results(run, args)


def write_results(run: Run, args: argparse.Namespace) -> int:
    output = table(run)
    print()
    print(output)
    for case in run.cases:
        if case.result.first_error:
            print(f"first error in {case.name!r}: {case.result.first_error}")
    results = BENCH_DIR / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}{'-quick' if args.quick else ''}-{args.database}"
    (results / f"{name}.json").write_text(
        json.dumps(asdict(run), indent=2, default=str)
    )
    (results / f"{name}.md").write_text(output + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
