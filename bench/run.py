"""The benchmark: seed (once), then measure the reference servers and the service in one run.

    .venv/bin/python -m bench.run            # 1,000,000 requests, 10 s per case
    .venv/bin/python -m bench.run --quick    # 100,000 requests, 3 s per case (~2 minutes)

Every server is one uvicorn worker on 127.0.0.1 pinned to one core; the load generator (wrk,
or a Python client) is pinned to the other. Each figure is also printed as a ratio to the
in-memory Strawberry reference measured in the same run. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import seed as seeding
from bench.load import LoadResult, RssSampler, Server, cores, drive

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

REQUEST_FIELDS = (
    "id email contactId status autoNotified createdDate itemUrl "
    "catalogReference { appId catalogItemId options } itemDetails { name price image }"
)
GET = f"query Get($id: ID!) {{ backInStockNotificationRequest(id: $id) {{ {REQUEST_FIELDS} }} }}"
PAGE_SELECTION = (
    f"edges {{ cursor node {{ {REQUEST_FIELDS} }} }} "
    "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
)
PAGE = (
    "query Page($first: Int, $after: String) { backInStockNotificationRequests("
    f"first: $first, after: $after) {{ {PAGE_SELECTION} }} }}"
)
FILTERED_PAGE = (
    "query Filtered($first: Int, $filter: BackInStockNotificationRequestFilter) { "
    "backInStockNotificationRequests(first: $first, filter: $filter) "
    f"{{ {PAGE_SELECTION} }} }}"
)
COUNT = (
    "query Count($refs: [CatalogReferenceInput!]!) { "
    "backInStockNotificationRequestsCountByCatalogReferences(catalogReferences: $refs) "
    "{ catalogReference { appId catalogItemId options } count } }"
)
CREATE = (
    "mutation Create($request: BackInStockNotificationRequestInput!, "
    "$itemDetails: BackInStockItemDetailsInput!) { "
    "createBackInStockNotificationRequest(request: $request, itemDetails: $itemDetails) "
    f"{{ {REQUEST_FIELDS} }} }}"
)
REPORT = (
    "mutation Report($itemDetails: BackInStockItemDetailsInput!, "
    "$options: ReportItemsBackInStockOptions) { "
    "reportItemsBackInStock(itemDetails: $itemDetails, options: $options) { queuedCount } }"
)
MAIN_APP = seeding.APPS[0][0]


def body(query: str, variables: dict[str, Any] | None = None) -> str:
    return orjson.dumps({"query": query, "variables": variables or {}}).decode()


@dataclass
class Case:
    name: str
    base: str  # the in-memory reference it is compared with: "one" or "page"
    connections: int
    result: LoadResult
    peak_rss_mb: float = 0.0
    ratio: float | None = None
    note: str = ""


@dataclass
class Report:
    calls: int
    queued: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_before_mb: float
    rss_peak_mb: float
    rss_after_mb: float


@dataclass
class Run:
    started: str
    command: str
    machine: dict[str, Any]
    rows: int
    items: int
    seconds_per_case: float
    cases: list[Case] = field(default_factory=list)
    report: Report | None = None
    service_peak_rss_mb: float = 0.0
    targets: list[tuple[str, bool | None, str]] = field(default_factory=list)


# ------------------------------------------------------------------------------ data


@dataclass
class Samples:
    ids: list[str]
    references: list[dict[str, Any]]
    collecting_references: list[dict[str, Any]]
    report_references: list[tuple[dict[str, Any], int]]
    deep_rows: list[tuple[datetime, uuid.UUID]]
    deep_page: int


def _reference(app_id: str, item_id: str, options: str | None) -> dict[str, Any]:
    return {
        "appId": app_id,
        "catalogItemId": item_id,
        "options": json.loads(options) if options else None,
    }


def collect_samples(
    db: Path, *, deep_page: int, report_target: int, rng: random.Random
) -> Samples:
    """Ids, references and keyset positions to ask for, read straight from the database."""
    with sqlite3.connect(db) as connection:
        (max_rowid,) = connection.execute(
            "SELECT max(rowid) FROM notification_requests"
        ).fetchone()
        rowids = rng.sample(range(1, max_rowid + 1), min(5000, max_rowid))
        ids = [
            row[0]
            for row in connection.execute(
                f"SELECT id FROM notification_requests WHERE rowid IN ({','.join(map(str, rowids))})"
            )
        ]
        refs = connection.execute(
            "SELECT app_id, catalog_item_id, options, c.collecting_requests "
            "FROM (SELECT DISTINCT catalog_reference_key, app_id, catalog_item_id, options "
            "      FROM notification_requests) "
            "JOIN collection_states c USING (app_id)"
        ).fetchall()
        references = [_reference(a, i, o) for a, i, o, _ in refs]
        collecting = [_reference(a, i, o) for a, i, o, on in refs if on]
        waiting = connection.execute(
            "SELECT app_id, catalog_item_id, options, count(*) AS n FROM notification_requests "
            "WHERE status IN ('RECEIVED', 'FAILED') GROUP BY catalog_reference_key "
            "ORDER BY n DESC LIMIT 2000"
        ).fetchall()
        report_references: list[tuple[dict[str, Any], int]] = []
        total = 0
        for app_id, item_id, options, count in waiting:
            if total >= report_target:
                break
            report_references.append((_reference(app_id, item_id, options), count))
            total += count
        # The last row of pages deep_page-1 .. deep_page+8 in the default order (newest first).
        deep = connection.execute(
            "SELECT created_date, id FROM notification_requests "
            "ORDER BY created_date DESC, id DESC LIMIT 10 OFFSET ?",
            ((deep_page - 1) * 100 - 1,),
        ).fetchall()
        deep_rows = [
            (datetime.fromisoformat(created).replace(tzinfo=UTC), uuid.UUID(id_))
            for created, id_ in deep
        ]
    rng.shuffle(references)
    return Samples(ids, references, collecting, report_references, deep_rows, deep_page)


# The service signs cursors with this key (SECRET_KEYS), so the bench can make deep ones.
BENCH_SECRET_KEY = "bench-only-key-that-signs-the-deep-page-cursors"


def deep_cursors(samples: Samples) -> list[str]:
    """Cursors of the default order, made by the service's own cursor code."""
    from app.keys import ServerKeys
    from app.services.cursors import encode_cursor
    from app.services.request_query import prepare_query

    keys = ServerKeys([BENCH_SECRET_KEY.encode()])
    query = prepare_query(keys=keys, filter=None, sort=None, first=100, after=None)
    return [
        encode_cursor(query.signer, query.fingerprint, [created, id_])
        for created, id_ in samples.deep_rows
    ]


# ------------------------------------------------------------------------------ measuring


@dataclass
class CaseSpec:
    """One measured case: what to send to which server, and what to compare it with."""

    name: str
    server: str  # "bare", "memory" or "service"
    base: str  # "one" or "page": the in-memory figure it is divided by
    bodies: Callable[[], list[str]]
    connections: int
    key: bool = False


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.server_core, self.load_core = cores()
        self.rng = random.Random(7)

    def measure(
        self, spec: CaseSpec, server: Server, key: str | None, *, warm: bool
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
            drive(server.url, spec.bodies(), seconds=self.args.warmup, **common)
            server.wait_idle()
        with RssSampler(server) as rss:
            result = drive(
                server.url,
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

    def specs(self, samples: Samples, server: Server, key: str) -> list[CaseSpec]:
        one = [body(GET, {"id": str(uuid.uuid4())})]
        specs = [
            CaseSpec("bare Starlette, fixed JSON", "bare", "one", lambda: one, 16),
            CaseSpec(
                "in-memory Strawberry, one object", "memory", "one", lambda: one, 16
            ),
            CaseSpec(
                "in-memory Strawberry, page of 100",
                "memory",
                "page",
                lambda: [body(PAGE, {"first": 100})],
                16,
            ),
        ]
        if self.args.only_service:
            specs = []
        c = self.args.connections
        gets = [body(GET, {"id": id_}) for id_ in samples.ids]
        filtered = body(
            FILTERED_PAGE,
            {
                "first": 100,
                "filter": {
                    "status": {"in": ["RECEIVED", "FAILED"]},
                    "catalogReference": {"appId": {"eq": MAIN_APP}},
                },
            },
        )
        cursors = deep_cursors(samples)
        check = httpx.post(
            server.url,
            content=body(PAGE, {"first": 100, "after": cursors[0]}),
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
            },
            timeout=300,
        ).json()
        if check.get("errors"):
            raise RuntimeError(f"deep cursor refused: {check['errors']}")
        deep = [body(PAGE, {"first": 100, "after": cursor}) for cursor in cursors]
        refs = samples.references
        counts = [
            body(COUNT, {"refs": self.rng.sample(refs, min(100, len(refs)))})
            for _ in range(20)
        ]
        collecting = samples.collecting_references

        def creates() -> list[str]:
            nonce = uuid.uuid4().hex[
                :8
            ]  # every load gets emails of its own, so each inserts
            return [
                body(
                    CREATE,
                    {
                        "request": {
                            "catalogReference": reference,
                            "email": f"Bench-{nonce}-__N__@Load.Example.com",
                            "itemUrl": f"https://shop.example.com/p/{reference['catalogItemId']}",
                        },
                        "itemDetails": {
                            "name": "Blue shoe",
                            "price": "24.50",
                            "image": "https://static.example.com/shoe.jpg",
                        },
                    },
                )
                for reference in self.rng.sample(collecting, min(500, len(collecting)))
            ]

        return [
            *specs,
            CaseSpec("get by id", "service", "one", lambda: gets, c, key=True),
            CaseSpec(
                "page of 100, filtered (status in, appId eq)",
                "service",
                "page",
                lambda: [filtered],
                c,
                key=True,
            ),
            CaseSpec(
                "page 1 of 100 (default order)",
                "service",
                "page",
                lambda: [body(PAGE, {"first": 100})],
                c,
                key=True,
            ),
            CaseSpec(
                f"page {samples.deep_page:,} of 100 (by cursor)",
                "service",
                "page",
                lambda: deep,
                c,
                key=True,
            ),
            CaseSpec(
                "counts for 100 references (1 connection)",
                "service",
                "one",
                lambda: counts,
                1,
                key=True,
            ),
            CaseSpec(
                "create (distinct emails, anonymous)", "service", "one", creates, c
            ),
        ]

    def run(self, db: Path, info: seeding.SeedInfo, samples: Samples, run: Run) -> None:
        """All servers up at once (idle ones cost nothing); cases measured in rounds.

        Each round measures every case for `seconds / rounds`; a case's ratio is the median
        over rounds of its figure divided by the in-memory figure of the same round, which
        keeps the ratios steady on a machine whose load comes and goes.
        """
        servers = {
            "service": Server(
                "app.main:create_app",
                env={
                    "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
                    "DISPATCH_IN_SERVE": "false",
                    "MAIL_URL": f"file://{self.work / 'outbox'}",
                    "SECRET_KEYS": BENCH_SECRET_KEY,
                    # Every anonymous create comes from 127.0.0.1: the per-client limit
                    # would refuse all but ten a minute. The per-email one stays on
                    # (each create has an address of its own), so creates pay for counting.
                    "RATE_LIMIT_PER_CLIENT": "",
                },
                core=self.server_core,
            ),
        }
        if not self.args.only_service:
            servers["bare"] = Server(
                "bench.reference_servers:bare_app", core=self.server_core
            )
            servers["memory"] = Server(
                "bench.reference_servers:in_memory_app", core=self.server_core
            )
        try:
            for server in servers.values():
                server.start(self.work)
            service = servers["service"]
            specs = self.specs(samples, service, info.api_key)
            rounds: list[dict[str, tuple[LoadResult, float]]] = []
            for number in range(self.args.rounds):
                print(f"round {number + 1} of {self.args.rounds}", flush=True)
                rounds.append(
                    {
                        spec.name: self.measure(
                            spec, servers[spec.server], info.api_key, warm=number == 0
                        )
                        for spec in specs
                    }
                )
            run.cases = [
                combine(spec, [r[spec.name] for r in rounds], rounds) for spec in specs
            ]
            run.report = self.report(service, samples, info.api_key)
            run.service_peak_rss_mb = service.peak_rss_mb()
        finally:
            for server in servers.values():
                server.stop()

    def report(self, server: Server, samples: Samples, key: str) -> Report:
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


# ------------------------------------------------------------------------------ output


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "-"

    wrk = shutil.which("wrk")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
        ),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "wrk": subprocess.run(
            [wrk, "-v"], capture_output=True, text=True
        ).stdout.splitlines()[0]
        if wrk
        else None,
        "sqlite": sqlite3.sqlite_version,
        "packages": {
            name: version(name)
            for name in (
                "strawberry-graphql",
                "starlette",
                "uvicorn",
                "sqlalchemy",
                "sqlmodel",
                "aiosqlite",
                "orjson",
                "uvloop",
                "httptools",
            )
        },
    }


BASES = {
    "one": "in-memory Strawberry, one object",
    "page": "in-memory Strawberry, page of 100",
}


def combine(
    spec: CaseSpec,
    results: list[tuple[LoadResult, float]],
    rounds: list[dict[str, tuple[LoadResult, float]]],
) -> Case:
    """One case over all rounds: summed requests, median p50, worst p99, median ratio."""
    loads = [result for result, _ in results]
    requests = sum(r.requests for r in loads)
    seconds = sum(r.seconds for r in loads)
    merged = LoadResult(
        requests=requests,
        seconds=seconds,
        p50_ms=statistics.median(r.p50_ms for r in loads),
        p90_ms=statistics.median(r.p90_ms for r in loads),
        p99_ms=max(r.p99_ms for r in loads),
        max_ms=max(r.max_ms for r in loads),
        errors=sum(r.errors for r in loads),
        first_error=next((r.first_error for r in loads if r.first_error), ""),
    )
    ratios = [
        result.rps / r[BASES[spec.base]][0].rps
        for (result, _), r in zip(results, rounds, strict=True)
        if BASES[spec.base] in r and r[BASES[spec.base]][0].rps
    ]
    return Case(
        spec.name,
        spec.base,
        spec.connections,
        merged,
        max(rss for _, rss in results),
        ratio=statistics.median(ratios) if ratios else None,
        note=" ".join(f"{result.rps:.0f}" for result, _ in results),
    )


def compute(run: Run) -> None:

    def find(prefix: str) -> Case | None:
        return next((case for case in run.cases if case.name.startswith(prefix)), None)

    targets: list[tuple[str, bool | None, str]] = []
    get = find("get by id")
    if get:
        targets.append(
            (
                "get by id >= 0.6 of in-memory, p99 <= 25 ms",
                (get.ratio or 0) >= 0.6 and get.result.p99_ms <= 25,
                f"{get.ratio or 0:.2f}, p99 {get.result.p99_ms:.1f} ms",
            )
        )
    create = find("create")
    if create:
        targets.append(
            (
                "create >= 0.4, zero errors, p99 <= 60 ms",
                (create.ratio or 0) >= 0.4
                and create.result.errors == 0
                and create.result.p99_ms <= 60,
                f"{create.ratio or 0:.2f}, {create.result.errors} errors, p99 {create.result.p99_ms:.1f} ms",
            )
        )
    filtered = find("page of 100, filtered")
    if filtered:
        targets.append(
            (
                "filtered page of 100 >= 0.8 of in-memory page",
                (filtered.ratio or 0) >= 0.8,
                f"{filtered.ratio or 0:.2f}",
            )
        )
    first = find("page 1 of")
    deep = next((c for c in run.cases if "(by cursor)" in c.name), None)
    if first and deep and deep.result.rps:
        slower = first.result.rps / deep.result.rps
        targets.append(
            (
                "deep page (by cursor) within 1.5x of page 1",
                slower <= 1.5,
                f"{slower:.2f}x (p50 {deep.result.p50_ms:.1f} vs {first.result.p50_ms:.1f} ms)",
            )
        )
    counts = find("counts")
    if counts:
        targets.append(
            (
                "counts for 100 references <= 20 ms server time",
                counts.result.p50_ms <= 20,
                f"p50 {counts.result.p50_ms:.1f} ms, p99 {counts.result.p99_ms:.1f} ms",
            )
        )
    if run.service_peak_rss_mb:
        report = run.report
        flat = report is not None and report.rss_peak_mb - report.rss_before_mb <= 20
        targets.append(
            (
                "peak RSS <= 200 MB, flat (+<= 20 MB) while reporting",
                run.service_peak_rss_mb <= 200 and flat,
                f"peak {run.service_peak_rss_mb:.0f} MB"
                + (
                    f"; reporting {report.rss_before_mb:.0f} -> {report.rss_peak_mb:.0f} MB"
                    if report
                    else ""
                ),
            )
        )
    run.targets = targets


def table(run: Run) -> str:
    lines = [
        "| case | conns | req/s | ratio | p50 ms | p99 ms | errors | RSS MB | req/s by round |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for case in run.cases:
        r = case.result
        ratio = f"{case.ratio:.2f} ({case.base})" if case.ratio is not None else "-"
        lines.append(
            f"| {case.name} | {case.connections} | {r.rps:,.0f} | {ratio} | {r.p50_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.errors} | {case.peak_rss_mb:.0f} | {case.note} |"
        )
    text = "\n".join(lines)
    if run.report:
        rep = run.report
        text += (
            f"\n\nReport: {rep.calls} calls queued {rep.queued:,} requests in {rep.seconds:.1f} s "
            f"({rep.queued / rep.seconds if rep.seconds else 0:,.0f} requests/s; per call p50 "
            f"{rep.p50_ms:.1f} ms, p99 {rep.p99_ms:.1f} ms; {rep.errors} errors). Server RSS "
            f"{rep.rss_before_mb:.0f} MB before, {rep.rss_peak_mb:.0f} MB peak, "
            f"{rep.rss_after_mb:.0f} MB after."
        )
    text += (
        f"\n\nService peak RSS over the run (VmHWM): {run.service_peak_rss_mb:.0f} MB."
    )
    text += "\n\n| target | met | figure |\n|---|---|---|\n" + "\n".join(
        f"| {name} | {'yes' if ok else 'no' if ok is not None else '-'} | {figure} |"
        for name, ok, figure in run.targets
    )
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark the service against references."
    )
    parser.add_argument("--quick", action="store_true", help="100k rows, 3 s per case")
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
    deep_page = min(5_000, max(2, args.requests // 200))

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
    )
    with tempfile.TemporaryDirectory(prefix="bench-", dir=args.data_dir) as tmp:
        work = Path(tmp)
        db = work / "run.db"
        shutil.copyfile(pristine, db)  # every run starts from the same data
        # Written back now, or the server's first checkpoint pays for the whole copy.
        with open(db, "rb+") as copied:
            os.fsync(copied.fileno())
        bench = Bench(args, work)
        print(
            f"server core {bench.server_core}, load core {bench.load_core}; "
            f"{'python client' if args.python_client or not shutil.which('wrk') else 'wrk'}",
            flush=True,
        )
        samples = collect_samples(
            db, deep_page=deep_page, report_target=args.report, rng=bench.rng
        )
        bench.run(db, info, samples, run)
    compute(run)
    output = table(run)
    print()
    print(output)
    for case in run.cases:
        if case.result.first_error:
            print(f"first error in {case.name!r}: {case.result.first_error}")
    results = BENCH_DIR / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    (results / f"{stamp}{'-quick' if quick else ''}.json").write_text(
        json.dumps(asdict(run), indent=2, default=str)
    )
    (results / f"{stamp}{'-quick' if quick else ''}.md").write_text(output + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
