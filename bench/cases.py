"""What the bench sends: the GraphQL documents, samples read from the seeded database, and
the cases (which document to which server, compared with which reference)."""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from bench import seed as seeding

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
# What every admin grid asks: a page and how many match (issue 16).
COUNTED_PAGE = (
    "query Counted($first: Int, $filter: BackInStockNotificationRequestFilter) { "
    "backInStockNotificationRequests(first: $first, filter: $filter) "
    f"{{ totalCount {PAGE_SELECTION} }} }}"
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
FILTER = {
    "status": {"in": ["RECEIVED", "FAILED"]},
    "catalogReference": {"appId": {"eq": MAIN_APP}},
}
# The service signs cursors with this key (SECRET_KEYS), so the bench can make deep ones.
BENCH_SECRET_KEY = "bench-only-key-that-signs-the-deep-page-cursors"


def body(query: str, variables: dict[str, Any] | None = None) -> str:
    return orjson.dumps({"query": query, "variables": variables or {}}).decode()


# ------------------------------------------------------------------------------ samples


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


def _samples(
    ids: list[str],
    refs: list[tuple[str, str, str | None, bool]],
    waiting: list[tuple[str, str, str | None, int]],
    deep: list[tuple[Any, Any]],
    *,
    deep_page: int,
    report_target: int,
    rng: random.Random,
) -> Samples:
    references = [_reference(a, i, o) for a, i, o, _ in refs]
    collecting = [_reference(a, i, o) for a, i, o, on in refs if on]
    report_references: list[tuple[dict[str, Any], int]] = []
    total = 0
    for app_id, item_id, options, count in waiting:
        if total >= report_target:
            break
        report_references.append((_reference(app_id, item_id, options), count))
        total += count
    deep_rows = [
        (
            (datetime.fromisoformat(c) if isinstance(c, str) else c).replace(
                tzinfo=UTC
            ),
            uuid.UUID(str(id_)),
        )
        for c, id_ in deep
    ]
    rng.shuffle(references)
    return Samples(ids, references, collecting, report_references, deep_rows, deep_page)


def collect_samples(
    db: Path, *, deep_page: int, report_target: int, rng: random.Random
) -> Samples:
    """Ids, references and keyset positions to ask for, read straight from SQLite."""
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
        waiting = connection.execute(
            "SELECT app_id, catalog_item_id, options, count(*) AS n FROM notification_requests "
            "WHERE status IN ('RECEIVED', 'FAILED') GROUP BY catalog_reference_key "
            "ORDER BY n DESC LIMIT 2000"
        ).fetchall()
        # The last row of pages deep_page-1 .. deep_page+8 in the default order (newest first).
        deep = connection.execute(
            "SELECT created_date, id FROM notification_requests "
            "ORDER BY created_date DESC, id DESC LIMIT 10 OFFSET ?",
            ((deep_page - 1) * 100 - 1,),
        ).fetchall()
    return _samples(
        ids,
        refs,
        waiting,
        deep,
        deep_page=deep_page,
        report_target=report_target,
        rng=rng,
    )


async def collect_samples_postgresql(
    dsn: str, *, deep_page: int, report_target: int, rng: random.Random
) -> Samples:
    """The same samples, read from a PostgreSQL database of the bench."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f"SELECT setseed({rng.random() * 2 - 1})")
        ids = [
            row[0]
            for row in await connection.fetch(
                "SELECT id::text FROM notification_requests ORDER BY random() LIMIT 5000"
            )
        ]
        refs = await connection.fetch(
            "SELECT app_id, catalog_item_id, options, c.collecting_requests "
            "FROM (SELECT DISTINCT ON (catalog_reference_key) app_id, catalog_item_id, "
            "      options::text AS options FROM notification_requests "
            "      ORDER BY catalog_reference_key) r "
            "JOIN collection_states c USING (app_id) ORDER BY r.catalog_item_id, r.options"
        )
        waiting = await connection.fetch(
            "SELECT min(app_id), min(catalog_item_id), min(options::text), count(*) AS n "
            "FROM notification_requests WHERE status IN ('RECEIVED', 'FAILED') "
            "GROUP BY catalog_reference_key ORDER BY n DESC LIMIT 2000"
        )
        deep = await connection.fetch(
            "SELECT created_date, id FROM notification_requests "
            "ORDER BY created_date DESC, id DESC LIMIT 10 OFFSET $1",
            (deep_page - 1) * 100 - 1,
        )
    finally:
        await connection.close()
    return _samples(
        ids,
        [tuple(r) for r in refs],
        [tuple(r) for r in waiting],
        [tuple(r) for r in deep],
        deep_page=deep_page,
        report_target=report_target,
        rng=rng,
    )


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


# ------------------------------------------------------------------------------ cases


@dataclass
class CaseSpec:
    """One measured case: what to send to which server, and what to compare it with."""

    name: str
    server: str  # "bare", "memory" or "service"
    base: str  # "one" or "page": the in-memory figure it is divided by
    bodies: Callable[[], list[str]]
    connections: int
    key: bool = False


REFERENCE_SPECS = [
    CaseSpec(
        "bare Starlette, fixed JSON",
        "bare",
        "one",
        lambda: [body(GET, {"id": str(uuid.uuid4())})],
        16,
    ),
    CaseSpec(
        "in-memory Strawberry, one object",
        "memory",
        "one",
        lambda: [body(GET, {"id": str(uuid.uuid4())})],
        16,
    ),
    CaseSpec(
        "in-memory Strawberry, page of 100",
        "memory",
        "page",
        lambda: [body(PAGE, {"first": 100})],
        16,
    ),
]


def check_deep_cursor(url: str, key: str, cursor: str) -> None:
    """Fail early when the service refuses the bench's cursors (keys, order changed)."""
    check = httpx.post(
        url,
        content=body(PAGE, {"first": 100, "after": cursor}),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=300,
    ).json()
    if check.get("errors"):
        raise RuntimeError(f"deep cursor refused: {check['errors']}")


def service_specs(
    samples: Samples, connections: int, rng: random.Random
) -> list[CaseSpec]:
    c = connections
    gets = [body(GET, {"id": id_}) for id_ in samples.ids]
    filtered = body(FILTERED_PAGE, {"first": 100, "filter": FILTER})
    counted = body(COUNTED_PAGE, {"first": 100})
    counted_filtered = body(COUNTED_PAGE, {"first": 100, "filter": FILTER})
    deep = [body(PAGE, {"first": 100, "after": x}) for x in deep_cursors(samples)]
    refs = samples.references
    counts = [
        body(COUNT, {"refs": rng.sample(refs, min(100, len(refs)))}) for _ in range(20)
    ]
    collecting = samples.collecting_references

    def creates() -> list[str]:
        nonce = uuid.uuid4().hex[:8]  # every load gets emails of its own: each inserts
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
            for reference in rng.sample(collecting, min(500, len(collecting)))
        ]

    def service(name: str, base: str, bodies: list[str], conns: int = c) -> CaseSpec:
        return CaseSpec(name, "service", base, lambda: bodies, conns, key=True)

    return [
        service("get by id", "one", gets),
        service("page of 100, filtered (status in, appId eq)", "page", [filtered]),
        service("page 1 of 100 (default order)", "page", [body(PAGE, {"first": 100})]),
        service("page of 100 + totalCount (default order)", "page", [counted]),
        service(
            "page of 100 + totalCount, filtered (status in, appId eq)",
            "page",
            [counted_filtered],
        ),
        service(f"page {samples.deep_page:,} of 100 (by cursor)", "page", deep),
        service("counts for 100 references (1 connection)", "one", counts, 1),
        CaseSpec("create (distinct emails, anonymous)", "service", "one", creates, c),
    ]
