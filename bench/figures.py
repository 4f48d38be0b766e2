"""The bench's figures: cases combined over rounds, the issues' targets, the printed table."""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.cases import CaseSpec
from bench.load import LoadResult


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
    database: str = "sqlite"
    pinning: str = ""
    cases: list[Case] = field(default_factory=list)
    report: Report | None = None
    service_peak_rss_mb: float = 0.0
    targets: list[tuple[str, bool | None, str]] = field(default_factory=list)


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


Target = tuple[str, bool | None, str]


def _find(run: Run, prefix: str) -> Case | None:
    return next((case for case in run.cases if case.name.startswith(prefix)), None)


def _ratio_at_least(case: Case | None, label: str, bar: float) -> list[Target]:
    if case is None:
        return []
    ratio = case.ratio or 0
    return [
        (f"{label} >= {bar} of in-memory {case.base}", ratio >= bar, f"{ratio:.2f}")
    ]


def issue_16_targets(run: Run) -> list[Target]:
    """Issue 16's ratios to the in-memory reference in the same run, and zero errors."""
    targets = [
        *_ratio_at_least(_find(run, "get by id"), "issue 16: get by id", 0.8),
        *_ratio_at_least(_find(run, "create"), "issue 16: create", 0.5),
    ]
    for case in run.cases:
        if "+ totalCount" in case.name:
            targets += _ratio_at_least(case, f"issue 16: {case.name}", 0.8)
    errors = sum(case.result.errors for case in run.cases)
    errors += run.report.errors if run.report else 0
    targets.append(("issue 16: zero errors", errors == 0, f"{errors} errors"))
    return targets


def issue_5_targets(run: Run) -> list[Target]:
    targets: list[Target] = []
    get = _find(run, "get by id")
    if get:
        targets.append(
            (
                "get by id >= 0.6 of in-memory, p99 <= 25 ms",
                (get.ratio or 0) >= 0.6 and get.result.p99_ms <= 25,
                f"{get.ratio or 0:.2f}, p99 {get.result.p99_ms:.1f} ms",
            )
        )
    create = _find(run, "create")
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
    filtered = _find(run, "page of 100, filtered")
    if filtered:
        targets.append(
            (
                "filtered page of 100 >= 0.8 of in-memory page",
                (filtered.ratio or 0) >= 0.8,
                f"{filtered.ratio or 0:.2f}",
            )
        )
    return targets + _deep_and_counts(run) + _memory(run)


def _deep_and_counts(run: Run) -> list[Target]:
    targets: list[Target] = []
    first = _find(run, "page 1 of")
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
    counts = _find(run, "counts")
    if counts:
        targets.append(
            (
                "counts for 100 references <= 20 ms server time",
                counts.result.p50_ms <= 20,
                f"p50 {counts.result.p50_ms:.1f} ms, p99 {counts.result.p99_ms:.1f} ms",
            )
        )
    return targets


def _memory(run: Run) -> list[Target]:
    if not run.service_peak_rss_mb:
        return []
    report = run.report
    flat = report is not None and report.rss_peak_mb - report.rss_before_mb <= 20
    return [
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
    ]


def compute(run: Run) -> None:
    run.targets = issue_16_targets(run) + issue_5_targets(run)


def table(run: Run) -> str:
    def load(moment: str) -> str:
        return ", ".join(
            f"{x:.1f}" for x in run.machine.get(f"load_average_at_{moment}", ())
        )

    lines = [
        f"{run.database}, {run.rows:,} rows; load average at start {load('start')}, "
        f"at end {load('end')}; {run.pinning}",
        "",
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
    text += "\n\n| target | result | figure |\n|---|---|---|\n" + "\n".join(
        f"| {name} | {'pass' if ok else '**fail**' if ok is not None else '-'} | {figure} |"
        for name, ok, figure in run.targets
    )
    return text
