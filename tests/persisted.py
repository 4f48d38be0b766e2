"""Documents and helpers of the trusted-documents tests: bodies as Apollo Client sends
them, manifests as Apollo's and Relay's builds write them, and the CLI that registers them."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from app.config import Settings
from app.main import create_app
from tests.cli import CliResult, run_cli
from tests.conftest import shared_schema

SETTINGS = "query Settings { backInStockSettings { collectionStates { appId } } }"
SETTINGS_DATA = {"backInStockSettings": {"collectionStates": []}}
TYPENAME = "query Typename { __typename }"
INTROSPECTION = "query Introspection { __schema { queryType { name } } }"
NOT_VALID = "query Broken { noSuchField }"
START = """
mutation Start { startCollectingRequests(appId: "stores") { collectionStates { appId } } }
"""
GRAPHQL_RESPONSE = "application/graphql-response+json"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(
    text: str, *, with_query: bool = False, digest: str | None = None
) -> dict[str, Any]:
    """A body as Apollo Client's persisted-query link sends it (the retry adds `query`)."""
    body: dict[str, Any] = {
        "variables": {},
        "extensions": {
            "persistedQuery": {"version": 1, "sha256Hash": digest or sha256(text)}
        },
    }
    if with_query:
        body["query"] = text
    return body


async def post(
    http: httpx.AsyncClient,
    body: dict[str, Any],
    *,
    key: str | None = None,
    accept: str | None = None,
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if accept is not None:
        headers["Accept"] = accept
    return await http.post("/graphql", content=json.dumps(body), headers=headers)


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


def apollo_manifest(*bodies: str, ids: list[str] | None = None) -> dict[str, Any]:
    """The output of Apollo's `generate-persisted-query-manifest`."""
    return {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {
                "id": ids[i] if ids else sha256(body),
                "name": f"Op{i}",
                "type": "query",
                "body": body,
            }
            for i, body in enumerate(bodies)
        ],
    }


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # Relay's default id


def trust(
    manifest: object, tmp_path: Path, database_url: str, name: str = "m.json"
) -> CliResult:
    """`python -m app trust-documents` on `manifest`, written to a file."""
    path = tmp_path / name
    path.write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return run_cli("trust-documents", str(path), env={"DATABASE_URL": database_url})


@contextlib.asynccontextmanager
async def serving(
    settings: Settings,
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """Another app (another server process, as far as the database can tell)."""
    application = create_app(settings, schema=shared_schema(settings))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1"
        ) as http:
            yield application, http
