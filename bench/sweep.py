"""The query-shape sweep: what a merchant's dashboard sends, timed one request at a time.

For every filter field with each of its operators (alone, and-ed with `appId`, and-ed with
`status`), `or` and `not` forms, filters that match nothing, and every sort field in both
orders (page 2, by cursor): a page of 100, and `totalCount` alone; then counts for 100
references. One keep-alive connection, one request at a time, so the latency is the
server's time plus loopback. Prints a table, worst first, with the issue-16 targets.

    .venv/bin/python -m bench.sweep                      # SQLite, 1,000,000 rows
    .venv/bin/python -m bench.sweep --database postgresql
    .venv/bin/python -m bench.sweep --requests 250000 --items 12500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import pg_seed
from bench import seed as seeding
from bench.load import Server

BENCH_DIR = Path(__file__).resolve().parent
# A shape answering slower than this (ms) is timed once (its warm-up), not repeated.
SLOW_MS = 1000.0
FIELDS = (
    "id email contactId status autoNotified createdDate itemUrl "
    "catalogReference { appId catalogItemId options } itemDetails { name price image }"
)
PAGE = (
    "query Page($filter: BackInStockNotificationRequestFilter, "
    "$sort: [BackInStockNotificationRequestSort!], $after: String) { "
    "backInStockNotificationRequests(first: 100, filter: $filter, sort: $sort, "
    f"after: $after) {{ edges {{ cursor node {{ {FIELDS} }} }} "
    "pageInfo { hasNextPage endCursor } } }"
)
TOTAL = (
    "query Total($filter: BackInStockNotificationRequestFilter) { "
    "backInStockNotificationRequests(first: 0, filter: $filter) { totalCount } }"
)
COUNTS = (
    "query Counts($refs: [CatalogReferenceInput!]!) { "
    "backInStockNotificationRequestsCountByCatalogReferences(catalogReferences: $refs) "
    "{ count } }"
)
# Filter fields whose totalCount must take at most 20 ms (issue 16); others 100 ms.
FAST_COUNT_FIELDS = {"catalogReference", "status", "autoNotified", "and", "or", "not"}
SORT_FIELDS = [
    "ID",
    "CONTACT_ID",
    "STATUS",
    "AUTO_NOTIFIED",
    "CREATED_DATE",
    "ITEM_URL",
]
MAIN_APP = seeding.APPS[0][0]
EMPTY_APP = "bench-app-with-no-requests"


@dataclass
class Shape:
    name: str
    kind: str  # "page", "total", "page 2" or "counts"
    variables: dict[str, Any]
    target_ms: float


@dataclass
class Timing:
    shape: Shape
    p50_ms: float
    errors: str | None


class Client:
    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(
            headers={"Authorization": f"Bearer {key}"}, timeout=120.0
        )
        self.url = url

    def ask(
        self, query: str, variables: dict[str, Any]
    ) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        response = self.http.post(
            self.url, json={"query": query, "variables": variables}
        )
        elapsed = (time.perf_counter() - started) * 1000
        return elapsed, response.json()


def _only_fast_fields(filter: dict[str, Any]) -> bool:
    def fields(node: Any) -> set[str]:
        if isinstance(node, list):
            return set().union(*(fields(child) for child in node)) if node else set()
        if not isinstance(node, dict):
            return set()
        found = set(node)
        for name in ("and", "or"):
            found |= fields(node.get(name, []))
        if "not" in node:
            found |= fields(node["not"])
        return found

    return fields(filter) <= FAST_COUNT_FIELDS


def _samples(client: Client) -> dict[str, Any]:
    """Real values to filter on, read through the API."""
    _, page = client.ask(PAGE, {"filter": {"itemUrl": {"exists": True}}})
    nodes = [
        edge["node"]
        for edge in page["data"]["backInStockNotificationRequests"]["edges"]
    ]
    middle = nodes[len(nodes) // 2]
    return {
        "node": middle,
        "references": [node["catalogReference"] for node in nodes],
    }


def _operators(field: str, kind: str, value: Any, prefix: str) -> list[tuple[str, Any]]:
    if kind == "id":
        return [
            ("eq", value),
            ("ne", value),
            ("in", [value]),
            ("nin", [value]),
            ("startsWith", prefix),
            ("exists", True),
        ]
    if kind == "string":
        return [
            ("eq", value),
            ("ne", value),
            ("in", [value]),
            ("nin", [value]),
            ("startsWith", prefix),
            ("gt", value),
            ("gte", value),
            ("lt", value),
            ("lte", value),
            ("exists", True),
            ("exists", False),
        ]
    if kind == "date":
        return [
            ("eq", value),
            ("ne", value),
            ("gt", value),
            ("gte", value),
            ("lt", value),
            ("lte", value),
        ]
    if kind == "bool":
        return [("eq", True), ("eq", False), ("ne", True), ("exists", False)]
    return [
        ("eq", "RECEIVED"),
        ("ne", "NOTIFICATION_SENT"),
        ("in", ["RECEIVED", "FAILED"]),
        ("nin", ["NOTIFICATION_SENT"]),
        ("eq", "PROCESSING"),
    ]


def _named(kind: str, operand: Any) -> str:
    """The operand in a shape's name where it tells shapes apart (a status, a flag)."""
    if kind not in {"bool", "status"}:
        return ""
    values = operand if isinstance(operand, list) else [operand]
    return " " + ",".join(str(value).lower() for value in values)


def _leaf_filters(samples: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    node = samples["node"]
    reference = node["catalogReference"]
    leaves: list[tuple[str, str, Any, str, bool]] = [
        ("id", "id", node["id"], node["id"][:13], False),
        ("contactId", "id", node["contactId"], node["contactId"][:6], False),
        ("email", "string", node["email"], node["email"][:6].upper(), False),
        ("itemUrl", "string", node["itemUrl"], node["itemUrl"][:30].upper(), False),
        ("createdDate", "date", node["createdDate"], "", False),
        ("autoNotified", "bool", None, "", False),
        ("status", "status", None, "", False),
        ("appId", "string", reference["appId"], reference["appId"][:4], True),
        (
            "catalogItemId",
            "string",
            reference["catalogItemId"],
            reference["catalogItemId"][:4].upper(),
            True,
        ),
    ]
    filters = []
    for field, kind, value, prefix, in_reference in leaves:
        for operator, operand in _operators(field, kind, value, prefix):
            condition = {field: {operator: operand}}
            if in_reference:
                condition = {"catalogReference": condition}
            named = _named("bool" if operator == "exists" else kind, operand)
            filters.append((f"{field} {operator}{named}", condition))
    return filters


def shapes(samples: dict[str, Any]) -> list[Shape]:
    reference = samples["node"]["catalogReference"]
    app = {"catalogReference": {"appId": {"eq": MAIN_APP}}}
    received = {"status": {"eq": "RECEIVED"}}
    filters: list[tuple[str, dict[str, Any]]] = [("no filter", {})]
    leaves = _leaf_filters(samples)
    filters += leaves
    filters += [
        (f"{name} AND appId", {**condition, "and": [app]}) for name, condition in leaves
    ]
    filters += [
        (f"{name} AND status", {**condition, "and": [received]})
        for name, condition in leaves
    ]
    filters += [
        (
            "appId eq OR appId eq",
            {"or": [app, {"catalogReference": {"appId": {"eq": "bench-pos-catalog"}}}]},
        ),
        ("status OR autoNotified", {"or": [received, {"autoNotified": {"eq": False}}]}),
        ("NOT status eq SENT", {"not": {"status": {"eq": "NOTIFICATION_SENT"}}}),
        ("NOT appId eq", {"not": app}),
        (
            "item reference (app AND item)",
            {
                "catalogReference": {
                    "appId": {"eq": reference["appId"]},
                    "catalogItemId": {"eq": reference["catalogItemId"]},
                }
            },
        ),
        (
            "nothing: appId eq unknown",
            {"catalogReference": {"appId": {"eq": EMPTY_APP}}},
        ),
        ("nothing: email eq unknown", {"email": {"eq": "nobody@nowhere.example"}}),
        (
            "nothing: catalogItemId startsWith zz",
            {"catalogReference": {"catalogItemId": {"startsWith": "zz"}}},
        ),
        (
            "nothing: itemUrl startsWith unknown",
            {"itemUrl": {"startsWith": "https://nowhere."}},
        ),
        (
            "nothing: unknown app AND status",
            {"catalogReference": {"appId": {"eq": EMPTY_APP}}, **received},
        ),
    ]
    result = []
    for name, filter in filters:
        total_target = 20.0 if _only_fast_fields(filter) else 100.0
        result.append(Shape(f"page: {name}", "page", {"filter": filter}, 20.0))
        result.append(
            Shape(f"total: {name}", "total", {"filter": filter}, total_target)
        )
    for field in SORT_FIELDS:
        for order in ("ASC", "DESC"):
            sort = [{"field": field, "order": order}]
            result.append(
                Shape(f"page 2: sort {field} {order}", "page 2", {"sort": sort}, 20.0)
            )
    result.append(
        Shape("counts: 100 references", "counts", {"refs": samples["references"]}, 10.0)
    )
    return result


def time_shape(client: Client, shape: Shape, repeats: int) -> Timing:
    query = {"page": PAGE, "page 2": PAGE, "total": TOTAL, "counts": COUNTS}[shape.kind]
    variables = dict(shape.variables)
    if shape.kind == "page 2":
        _, first = client.ask(PAGE, variables)
        if first.get("errors"):
            return Timing(shape, float("nan"), str(first["errors"])[:200])
        variables["after"] = first["data"]["backInStockNotificationRequests"][
            "pageInfo"
        ]["endCursor"]
    times = []
    for attempt in range(repeats + 2):
        elapsed, answer = client.ask(query, variables)
        if answer.get("errors"):
            return Timing(shape, float("nan"), str(answer["errors"])[:200])
        if elapsed > SLOW_MS:  # far over any target: once tells enough
            return Timing(shape, elapsed, None)
        if attempt >= 2:  # two warm-ups
            times.append(elapsed)
    return Timing(shape, statistics.median(times), None)


def report(timings: list[Timing], label: str) -> str:
    timings = sorted(
        timings, key=lambda t: -(t.p50_ms if t.p50_ms == t.p50_ms else 1e9)
    )
    missed = [t for t in timings if t.errors or t.p50_ms > t.shape.target_ms]
    lines = [
        f"### {label}: {len(timings)} shapes, {len(missed)} over target",
        "",
        "| shape | p50 ms | target ms | met |",
        "|---|---:|---:|---|",
    ]
    for timing in timings:
        met = (
            "error"
            if timing.errors
            else ("yes" if timing.p50_ms <= timing.shape.target_ms else "**no**")
        )
        lines.append(
            f"| {timing.shape.name} | {timing.p50_ms:.1f} | {timing.shape.target_ms:.0f} | {met} |"
        )
    for timing in timings:
        if timing.errors:
            lines.append(f"\nerror in {timing.shape.name}: {timing.errors}")
    return "\n".join(lines)


def _serve(url: str, work: Path, core: str | None) -> Server:
    server = Server(
        "app.main:create_app",
        env={
            "DATABASE_URL": url,
            "DISPATCH_IN_SERVE": "false",
            "MIGRATE_ON_START": "true",
        },
        core=core,
    )
    server.start(work)
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database", choices=["sqlite", "postgresql"], default="sqlite"
    )
    parser.add_argument("--server-url", default=pg_seed.DEFAULT_SERVER)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--only", help="only shapes whose name contains this")
    parser.add_argument("--data-dir", type=Path, default=BENCH_DIR / ".data")
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sweep-", dir=args.data_dir) as tmp:
        work = Path(tmp)
        if args.database == "sqlite":
            pristine = args.data_dir / f"bench-{args.requests}-{args.items}.db"
            if not seeding.is_current(
                pristine, requests=args.requests, items=args.items, seed=1
            ):
                seeding.seed(pristine, requests=args.requests, items=args.items, seed=1)
            info = seeding.read_info(pristine)
            assert info is not None
            db = work / "sweep.db"
            shutil.copyfile(pristine, db)
            url, key = f"sqlite+aiosqlite:///{db}", info.api_key
        else:
            url, key = asyncio.run(
                pg_seed.seed(args.server_url, requests=args.requests, items=args.items)
            )
        server = _serve(url, work, os.environ.get("SWEEP_SERVER_CORE"))
        try:
            client = Client(server.url, key)
            all_shapes = shapes(_samples(client))
            if args.only:
                all_shapes = [s for s in all_shapes if args.only in s.name]
            timings = []
            for shape in all_shapes:
                timings.append(time_shape(client, shape, args.repeats))
                print(f"  {timings[-1].p50_ms:8.1f} ms  {shape.name}", flush=True)
        finally:
            server.stop()
    label = f"{args.database}, {args.requests:,} rows"
    output = report(timings, label)
    print(f"\n{output}")
    results = BENCH_DIR / "results"
    results.mkdir(exist_ok=True)
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-sweep-{args.database}-{args.requests}.md"
    (results / name).write_text(output + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
