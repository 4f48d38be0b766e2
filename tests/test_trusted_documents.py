"""Requests that name their document: Apollo's APQ as Apollo Client sends it, and GraphQL
over HTTP's `documentId`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.persisted import (
    GRAPHQL_RESPONSE,
    NOT_VALID,
    SETTINGS,
    SETTINGS_DATA,
    START,
    TYPENAME,
    apq,
    codes,
    md5,
    post,
    serving,
    sha256,
)
from tests.servers import running_server

NODE_MODULES = Path(__file__).resolve().parent.parent / ".ci" / "node_modules"
APOLLO_CLIENT_SCRIPT = Path(__file__).parent / "node" / "apollo_client_apq.cjs"


def run_apollo_client(url: str, query: str, *arguments: str) -> dict:
    """Apollo Client 4 with its persisted-query link runs `query` twice (node)."""
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "@apollo" / "client").is_dir():
        pytest.skip("node or @apollo/client missing (.ci/run installs them)")
    completed = subprocess.run(
        [node, str(APOLLO_CLIENT_SCRIPT), url, query, *arguments],
        env={"PATH": "/usr/bin:/bin", "NODE_PATH": str(NODE_MODULES)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


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


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_apollo_clients_persisted_query_link_registers_then_sends_the_hash(
    database_url, tmp_path, method
):
    with running_server(database_url, tmp_path) as server:
        seen = run_apollo_client(server.graphql, SETTINGS, method.lower())

    first, second = seen["results"]
    assert first == second
    assert first["error"] is None
    assert first["data"]["backInStockSettings"]["collectionStates"] == []
    digest = seen["requests"][0]["sha256Hash"]
    assert seen["requests"] == [
        {"method": method, "withQuery": False, "sha256Hash": digest},
        {"method": "POST", "withQuery": True, "sha256Hash": digest},
        {"method": method, "withQuery": False, "sha256Hash": digest},
    ]


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
