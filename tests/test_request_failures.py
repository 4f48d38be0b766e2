"""Failures outside GraphQL execution are GraphQL JSON errors with a code, never plain text.

The API key is looked up while the request's context is built, before graphql-core's error
handling: a database outage there used to be a plain-text 500 and a closed connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.routing import Route

from app.config import Settings
from app.graphql.schema import build_schema
from app.http.view import GraphQLView
from tests.documents import SETTINGS


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Every keyed request looks its key up, so the outage is met at once.
    return settings.model_copy(update={"api_key_cache_seconds": 0})


@contextlib.asynccontextmanager
async def database_outage(database_url: str) -> AsyncIterator[None]:
    """The test's database fails every read of the key lookup.

    PostgreSQL: the database stops accepting connections and its open ones are cut.
    SQLite: the file is overwritten with bytes that are not a database (a restore or disk
    mishap); a file put back that way is not trusted again, so only the PostgreSQL
    outage is followed by a recovery test.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        saved = path.read_bytes()
        path.write_bytes(b"not a database" * 512)
        try:
            yield
        finally:
            path.write_bytes(saved)
        return
    server = make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql")
    admin = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        await admin.execute(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            url.database,
        )
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS true')
        await admin.close()


async def test_key_lookup_during_a_database_outage_is_a_coded_503(
    gql, admin_key, settings
):
    # given: the database is out when a keyed request comes
    async with database_outage(settings.database_url):
        # when
        result = await gql(SETTINGS, key=admin_key)

    # then
    assert result.status == 503
    assert result.codes == ["SERVICE_UNAVAILABLE"]
    assert "data" not in result.body


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_keyed_requests_work_again_after_the_outage(gql, admin_key, settings):
    async with database_outage(settings.database_url):
        await gql(SETTINGS, key=admin_key)

    result = await gql(SETTINGS, key=admin_key)

    assert result.status == 200
    assert result.errors == []


async def test_outage_answer_says_when_to_retry(http, admin_key, settings):
    async with database_outage(settings.database_url):
        response = await http.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {admin_key}"},
        )

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["retry-after"]) > 0


class BrokenAuthenticator:
    """An authenticator whose every check fails in a way nobody planned for."""

    async def principal_for(self, authorization: str | None) -> object:
        raise RuntimeError("SELECT key_hash FROM api_keys: secret detail")


@pytest.fixture
async def broken_http(
    app: Starlette, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """A GraphQL view given a failing authenticator through its constructor."""
    state = SimpleNamespace(
        store=app.state.store,
        clock=app.state.clock,
        settings=settings,
        authenticator=BrokenAuthenticator(),
        notify_queued=lambda: None,
    )
    view = GraphQLView(build_schema(settings), state=state)
    broken = Starlette(routes=[Route("/graphql", view)])
    transport = httpx.ASGITransport(app=broken)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1"
    ) as client:
        yield client


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_unexpected_failure_building_the_context_is_a_coded_500(broken_http):
    response = await broken_http.post("/graphql", json={"query": "{ __typename }"})

    assert response.status_code == 500
    assert response.json() == {
        "errors": [
            {"message": "Internal server error.", "extensions": {"code": "INTERNAL"}}
        ]
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_unexpected_failure_is_logged_once_with_its_trace(broken_http, caplog):
    with caplog.at_level(logging.INFO, logger="app"):
        await broken_http.post("/graphql", json={"query": "{ __typename }"})

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "secret detail" in str(errors[0].exc_info[1])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_graphiql_opens_even_when_the_context_cannot_be_built(broken_http):
    response = await broken_http.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert "graphiql" in response.text
