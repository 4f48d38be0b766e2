"""Trusted documents: requests naming their document (APQ, `documentId`), the manifests
`python -m app trust-documents` registers, and TRUSTED_DOCUMENTS_ONLY."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.config import Settings
from app.main import create_app
from tests.conftest import mint_key

SETTINGS = "query Settings { backInStockSettings { collectionStates { appId } } }"
SETTINGS_DATA = {"backInStockSettings": {"collectionStates": []}}
TYPENAME = "query Typename { __typename }"
INTROSPECTION = "query Introspection { __schema { queryType { name } } }"
NOT_VALID = "query Broken { noSuchField }"
START = "mutation Start { startCollectingRequests(appId: \"stores\") { collectionStates { appId } } }"
GRAPHQL_RESPONSE = "application/graphql-response+json"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(text: str, *, with_query: bool = False, digest: str | None = None) -> dict[str, Any]:
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
            {"id": (ids or [])[i] if ids else sha256(body), "name": f"Op{i}",
             "type": "query", "body": body}
            for i, body in enumerate(bodies)
        ],
    }


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - Relay's default id


def trust(manifest: object, tmp_path: Path, database_url: str, name: str = "m.json"):
    """`python -m app trust-documents` on `manifest`, written to a file."""
    path = tmp_path / name
    path.write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return subprocess.run(
        [sys.executable, "-m", "app", "trust-documents", str(path)],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """Another app (another server process, as far as the database can tell)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield application, http


@pytest.fixture
async def trusted_only(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """An app with TRUSTED_DOCUMENTS_ONLY=true."""
    async with serving(settings.model_copy(update={"trusted_documents_only": True})) as served:
        yield served


# ---------------------------------------------------------------- APQ, as Apollo Client


async def test_apq_hash_of_an_unknown_document_is_persisted_query_not_found(http):
    response = await post(http, apq(SETTINGS))

    assert response.status_code == 200
    assert response.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
    assert response.headers["cache-control"] == "private, no-cache, must-revalidate"


async def test_apq_not_found_is_404_when_graphql_response_json_is_accepted(http):
    response = await post(http, apq(SETTINGS), accept=GRAPHQL_RESPONSE)

    assert response.status_code == 404
    assert codes(response) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert "data" not in response.json()


async def test_apq_round_trip_registers_then_runs_the_hash_alone(http):
    missed = await post(http, apq(SETTINGS))

    registered = await post(http, apq(SETTINGS, with_query=True))
    by_hash = await post(http, apq(SETTINGS))

    assert codes(missed) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert registered.json() == {"data": SETTINGS_DATA}
    assert by_hash.status_code == 200
    assert by_hash.json() == {"data": SETTINGS_DATA}


async def test_apq_document_registered_by_one_server_runs_on_another(http, settings):
    await post(http, apq(SETTINGS, with_query=True))

    async with serving(settings) as (_, other):
        response = await post(other, apq(SETTINGS))

    assert response.json() == {"data": SETTINGS_DATA}


async def test_apq_hash_that_is_not_the_query_sha256_is_refused_and_not_kept(http):
    wrong = await post(http, apq(SETTINGS, with_query=True, digest=sha256(TYPENAME)))

    later = await post(http, apq(TYPENAME))

    assert wrong.status_code == 400
    assert codes(wrong) == ["BAD_REQUEST"]
    assert wrong.json()["errors"][0]["message"] == "provided sha does not match query"
    assert codes(later) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_apq_document_that_does_not_validate_is_not_kept(http):
    refused = await post(http, apq(NOT_VALID, with_query=True))

    later = await post(http, apq(NOT_VALID))

    assert codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]
    assert codes(later) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize(
    "persisted",
    [
        {"version": 2, "sha256Hash": sha256(SETTINGS)},
        {"version": 1, "sha256Hash": "not-a-hash"},
        {"version": 1},
        "sha256",
    ],
)
async def test_malformed_apq_extension_is_a_bad_request(http, persisted):
    response = await post(http, {"extensions": {"persistedQuery": persisted}})

    assert response.status_code == 400
    assert codes(response) == ["BAD_REQUEST"]


async def test_apq_hash_alone_over_get_runs_the_document_not_graphiql(http):
    await post(http, apq(SETTINGS, with_query=True))

    response = await http.get(
        "/graphql",
        params={"extensions": json.dumps(apq(SETTINGS)["extensions"])},
        headers={"Accept": "*/*"},
    )

    assert response.status_code == 200
    assert response.json() == {"data": SETTINGS_DATA}


async def test_apq_mutation_over_get_is_405(http, admin_key):
    await post(http, apq(START, with_query=True), key=admin_key)

    response = await http.get(
        "/graphql",
        params={"extensions": json.dumps(apq(START)["extensions"])},
        headers={"Authorization": f"Bearer {admin_key}"},
    )

    assert response.status_code == 405
    assert codes(response) == ["BAD_REQUEST"]


# ------------------------------------------------------------ GraphQL over HTTP documentId


async def test_document_id_runs_the_document_over_post_and_get(http):
    await post(http, apq(SETTINGS, with_query=True))
    document_id = f"sha256:{sha256(SETTINGS)}"

    posted = await post(http, {"documentId": document_id})
    fetched = await http.get("/graphql", params={"documentId": document_id})

    assert posted.json() == {"data": SETTINGS_DATA}
    assert fetched.json() == {"data": SETTINGS_DATA}


async def test_unknown_document_id_is_persisted_query_not_found(http):
    document_id = f"sha256:{sha256(SETTINGS)}"

    response = await post(http, {"documentId": document_id}, accept=GRAPHQL_RESPONSE)

    assert response.status_code == 404
    assert response.json() == {
        "errors": [
            {
                "message": f"No document is registered as {document_id}.",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }


@pytest.mark.parametrize(
    "document_id", ["md5:" + md5(SETTINGS), "sha256:abc", "has space", 12, ""]
)
async def test_malformed_document_id_is_a_bad_request(http, document_id):
    response = await post(http, {"documentId": document_id})

    assert response.status_code == 400
    assert codes(response) == ["BAD_REQUEST"]


async def test_relay_ids_run_the_documents_their_manifest_registered(
    http, tmp_path, database_url
):
    relay_id = md5(SETTINGS)
    done = trust({relay_id: SETTINGS}, tmp_path, database_url, "persisted_queries.json")

    as_document_id = await post(http, {"documentId": relay_id})
    as_doc_id = await post(http, {"doc_id": relay_id, "variables": {}})
    as_sha256 = await post(http, {"documentId": f"sha256:{sha256(SETTINGS)}"})

    assert done.returncode == 0, done.stderr
    assert as_document_id.json() == {"data": SETTINGS_DATA}
    assert as_doc_id.json() == {"data": SETTINGS_DATA}
    assert as_sha256.json() == {"data": SETTINGS_DATA}


# -------------------------------------------------------------------- the manifests


async def test_cli_registers_an_apollo_manifest_once(app, tmp_path, database_url):
    manifest = apollo_manifest(SETTINGS, TYPENAME)

    first = trust(manifest, tmp_path, database_url)
    again = trust(manifest, tmp_path, database_url)

    assert first.returncode == 0, first.stderr
    assert "2 documents; 2 added, 0 known through APQ and now trusted" in first.stdout
    assert "0 added, 0 known through APQ and now trusted, 2 already trusted" in again.stdout


async def test_cli_refuses_an_apollo_manifest_whose_id_is_not_its_body_sha256(
    http, tmp_path, database_url
):
    manifest = apollo_manifest(TYPENAME, SETTINGS, ids=[sha256(TYPENAME), md5(SETTINGS)])

    refused = trust(manifest, tmp_path, database_url)
    typename = await post(http, {"documentId": f"sha256:{sha256(TYPENAME)}"})

    assert refused.returncode == 1
    assert "Op1" in refused.stderr and "not the sha256 of its body" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert codes(typename) == ["PERSISTED_QUERY_NOT_FOUND"]  # nothing registered


@pytest.mark.parametrize(
    "manifest",
    [
        "not json",
        [SETTINGS],
        {"format": "apollo-persisted-query-manifest", "version": 2, "operations": []},
        {"id": {"body": SETTINGS}},
        {md5("{"): "{"},
    ],
)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_refuses_a_file_that_is_not_a_manifest(tmp_path, database_url, manifest):
    refused = trust(manifest, tmp_path, database_url)

    assert refused.returncode == 1
    assert "nothing registered" in refused.stderr
    assert "Traceback" not in refused.stderr


async def test_cli_refuses_a_relay_id_that_already_names_another_document(
    http, tmp_path, database_url
):
    trust({"abc": SETTINGS}, tmp_path, database_url)

    refused = trust({"abc": TYPENAME}, tmp_path, database_url)
    response = await post(http, {"documentId": "abc"})

    assert refused.returncode == 1
    assert "already names another document" in refused.stderr
    assert response.json() == {"data": SETTINGS_DATA}


# --------------------------------------------------------------- TRUSTED_DOCUMENTS_ONLY


async def test_trusted_only_runs_a_visitor_manifest_document_in_every_form(
    trusted_only, tmp_path, database_url
):
    _, http = trusted_only
    trust(apollo_manifest(SETTINGS), tmp_path, database_url)

    as_text = await post(http, {"query": SETTINGS})
    as_hash = await post(http, apq(SETTINGS))
    as_document_id = await post(http, {"documentId": f"sha256:{sha256(SETTINGS)}"})

    assert as_text.json() == {"data": SETTINGS_DATA}
    assert as_hash.json() == {"data": SETTINGS_DATA}
    assert as_document_id.json() == {"data": SETTINGS_DATA}


async def test_trusted_only_refuses_a_visitor_document_no_manifest_registered(
    trusted_only,
):
    _, http = trusted_only

    as_text = await post(http, {"query": SETTINGS})
    introspection = await post(http, {"query": INTROSPECTION})
    as_hash = await post(http, apq(SETTINGS))

    for response in (as_text, introspection, as_hash):
        assert response.status_code == 403
        assert codes(response) == ["TRUSTED_DOCUMENT_REQUIRED"]
        assert "data" not in response.json()


async def test_trusted_only_refuses_apq_registration_by_a_visitor(trusted_only):
    _, http = trusted_only

    registering = await post(http, apq(SETTINGS, with_query=True))
    as_key_holder_would = await post(http, apq(SETTINGS))

    assert registering.status_code == 403
    assert codes(registering) == ["TRUSTED_DOCUMENT_REQUIRED"]
    assert codes(as_key_holder_would) == ["TRUSTED_DOCUMENT_REQUIRED"]


async def test_trusted_only_lets_a_key_holder_send_and_register_any_document(
    trusted_only,
):
    app, http = trusted_only
    key = await mint_key(app)

    introspection = await post(http, {"query": INTROSPECTION}, key=key)
    registered = await post(http, apq(SETTINGS, with_query=True), key=key)
    by_hash = await post(http, apq(SETTINGS), key=key)
    visitor = await post(http, apq(SETTINGS))

    assert introspection.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    assert registered.json() == {"data": SETTINGS_DATA}
    assert by_hash.json() == {"data": SETTINGS_DATA}
    # A key holder's registration is not the operator's: visitors still may not run it.
    assert codes(visitor) == ["TRUSTED_DOCUMENT_REQUIRED"]


async def test_trusted_only_answers_an_unknown_key_unauthenticated(trusted_only):
    _, http = trusted_only

    response = await post(http, {"query": SETTINGS}, key="bis_not-a-key")

    assert response.status_code == 401
    assert codes(response) == ["UNAUTHENTICATED"]
    assert response.headers["www-authenticate"] == "Bearer"


async def test_document_known_through_apq_is_trusted_once_a_manifest_lists_it(
    trusted_only, tmp_path, database_url
):
    # given: a key holder registered it through APQ, and visitors were refused it
    app, http = trusted_only
    await post(http, apq(SETTINGS, with_query=True), key=await mint_key(app))
    before = await post(http, apq(SETTINGS))

    # when
    done = trust(apollo_manifest(SETTINGS), tmp_path, database_url)
    after = await post(http, apq(SETTINGS))

    # then
    assert codes(before) == ["TRUSTED_DOCUMENT_REQUIRED"]
    assert "0 added, 1 known through APQ and now trusted" in done.stdout
    assert after.json() == {"data": SETTINGS_DATA}
