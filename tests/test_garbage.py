"""Requests leave nothing for the cyclic garbage collector, and the server sets its pace.

Objects in reference cycles are freed only by the collector, whose passes paused every
request in flight (see app.gc_tuning). The requests are sent straight to the ASGI app, so
that the HTTP client's own objects are not counted.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest

from app.config import Settings
from app.gc_tuning import YOUNG_COLLECTION_THRESHOLD
from app.main import create_app
from tests.documents import CREATE_REQUEST, GET_REQUEST, QUERY_REQUESTS, new_request

# Acyclic requests are a fast path's doing (app/fast_paths.py); with them off (the second
# CI run) Strawberry's own execution leaves its cycles, and nothing here applies.
pytestmark = pytest.mark.skipif(
    not Settings(_env_file=None).fast_paths, reason="FAST_PATHS is off"
)


async def post(
    app: Any, query: str, variables: dict[str, Any], key: str
) -> dict[str, Any]:
    """One POST /graphql through the ASGI interface, nothing else around it."""
    body = orjson.dumps({"query": query, "variables": variables})
    sent: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(message.get("body", b""))

    headers = [
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {key}".encode()),
    ]
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
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    result = orjson.loads(b"".join(sent))
    assert "errors" not in result, result
    data: dict[str, Any] = result["data"]
    return data


# A socket transport in the garbage is never the requests' own: they go straight to the
# ASGI app and open no socket. It is a connection of another thread (a test server of an
# earlier test) torn down during the block: its cycle is left out of what is counted.
_FOREIGN_KINDS = {"_SelectorSocketTransport", "_SSLProtocolTransport"}


def without_foreign_cycles(garbage: list[Any]) -> list[Any]:
    """`garbage` less every object linked (either way) to a foreign socket transport."""
    by_id = {id(thing): thing for thing in garbage}
    foreign = {
        id(thing) for thing in garbage if type(thing).__qualname__ in _FOREIGN_KINDS
    }
    pending = list(foreign)
    while pending:
        thing = by_id[pending.pop()]
        linked = [*gc.get_referents(thing), *gc.get_referrers(thing)]
        for other in linked:
            if id(other) in by_id and id(other) not in foreign:
                foreign.add(id(other))
                pending.append(id(other))
    return [thing for thing in garbage if id(thing) not in foreign]


async def cycles_of(make_requests: Callable[[], Awaitable[None]]) -> list[Any]:
    """The cyclic garbage `make_requests` leaves, other threads' connections left out."""
    with garbage_cycles() as cycles:
        await make_requests()
    return without_foreign_cycles(cycles)


@contextmanager
def garbage_cycles() -> Iterator[list[Any]]:
    """The objects that became unreachable cyclic garbage within the block."""
    found: list[Any] = []
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def kinds(objects: list[Any]) -> set[str]:
    return {type(thing).__qualname__ for thing in objects}


async def test_creating_a_request_leaves_no_reference_cycles(
    app, admin_key, collecting
):
    await post(app, CREATE_REQUEST, new_request(email="first@example.com"), admin_key)

    emails = iter(range(3))

    async def three_creates() -> None:
        for number in [next(emails) for _ in range(3)]:
            await post(
                app,
                CREATE_REQUEST,
                new_request(email=f"s{number}@example.com"),
                admin_key,
            )

    cycles = await cycles_of(three_creates)

    assert cycles == [], kinds(cycles)


async def test_reading_a_request_leaves_no_reference_cycles(app, admin_key, collecting):
    created = await post(app, CREATE_REQUEST, new_request(), admin_key)
    get = {"id": created["createBackInStockNotificationRequest"]["id"]}
    await post(app, GET_REQUEST, get, admin_key)

    async def three_gets() -> None:
        for _ in range(3):
            await post(app, GET_REQUEST, get, admin_key)

    cycles = await cycles_of(three_gets)

    assert cycles == [], kinds(cycles)


async def test_a_page_leaves_few_objects_in_cycles(app, admin_key, collecting):
    for number in range(5):
        await post(
            app, CREATE_REQUEST, new_request(email=f"s{number}@example.com"), admin_key
        )
    page = {"first": 3, "filter": {"status": {"in": ["RECEIVED", "FAILED"]}}}
    await post(app, QUERY_REQUESTS, page, admin_key)

    async def three_pages() -> None:
        for _ in range(3):
            await post(app, QUERY_REQUESTS, page, admin_key)

    cycles = await cycles_of(three_pages)

    # The statement built for a filter holds a few small cycles of its own (SQLAlchemy's
    # bind parameters); what matters is that the execution state of the page is not there.
    assert len(cycles) <= 3 * 20, kinds(cycles)


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_started_server_freezes_what_it_loaded_and_collects_less_often(
    settings, restored_collector
):
    tuned = Settings(**{**settings.model_dump(), "tune_garbage_collector": True})
    app = create_app(tuned)

    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_collector_can_be_left_as_python_sets_it(
    settings, restored_collector
):
    gc.unfreeze()
    before = gc.get_threshold()
    app = create_app(settings)  # tune_garbage_collector=False

    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == before
