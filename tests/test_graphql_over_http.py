"""GraphQL over HTTP: media type negotiation, request errors, GET, and graphql-http's audits.

The audits of graphql-http (the spec's reference audit suite, a node package) run against
the real server when node and the package are there (`.ci/run` installs it into
.ci/node_modules). The audits that matter most are mirrored below as plain tests, so the
behaviour is checked without node too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import running_server

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / ".ci" / "node_modules"
AUDIT_SCRIPT = Path(__file__).parent / "node" / "graphql_http_audit.cjs"

GRAPHQL_RESPONSE = "application/graphql-response+json"
TYPENAME = {"query": "{ __typename }"}
PARSE_FAILURE = {"query": "{"}
VALIDATION_FAILURE = {"query": "{ thisFieldDoesNotExist }"}
COERCION_FAILURE = {
    "query": "query CoerceFailure($name: String!) { __type(name: $name) { name } }",
    "variables": {"name": 5},
}
FORBIDDEN_FOR_VISITORS = {"query": "{ backInStockNotificationRequests { totalCount } }"}


async def post(http, body: object, accept: str | None = None):
    headers = {"Content-Type": "application/json"}
    if accept is not None:
        headers["Accept"] = accept
    return await http.post("/graphql", content=json.dumps(body), headers=headers)


def test_graphql_http_audits_pass_with_no_error_and_no_warning(database_url, tmp_path):
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "graphql-http").is_dir():
        pytest.skip(
            "node or graphql-http missing (.ci/run installs them: npm ci --prefix .ci)"
        )
    with running_server(database_url, tmp_path) as server:
        completed = subprocess.run(
            [node, str(AUDIT_SCRIPT), server.graphql],
            env={"PATH": "/usr/bin:/bin", "NODE_PATH": str(NODE_MODULES)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert completed.returncode == 0, completed.stderr
    results = [json.loads(line) for line in completed.stdout.splitlines()]
    not_ok = [r for r in results if r["status"] != "ok"]
    assert len(results) > 50
    assert not_ok == []


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        ("application/json", "application/json"),
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/html", "application/json"),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", "application/json"),
        (f"{GRAPHQL_RESPONSE};q=0, application/json", "application/json"),
    ],
)
async def test_response_media_type_follows_the_accept_header(http, accept, media_type):
    response = await post(http, TYPENAME, accept)

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (PARSE_FAILURE, "GRAPHQL_PARSE_FAILED"),
        (VALIDATION_FAILURE, "GRAPHQL_VALIDATION_FAILED"),
        (COERCION_FAILURE, "INVALID_ARGUMENT"),
    ],
)
async def test_request_error_is_400_without_data_for_graphql_response_json(
    http, body, code
):
    response = await post(http, body, GRAPHQL_RESPONSE)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in response.json()
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == [code]


@pytest.mark.parametrize("body", [PARSE_FAILURE, VALIDATION_FAILURE, COERCION_FAILURE])
async def test_request_error_is_200_with_null_data_for_application_json(http, body):
    response = await post(http, body, "application/json")

    assert response.status_code == 200
    assert response.json()["data"] is None
    assert response.json()["errors"]


async def test_field_error_keeps_data_and_200_for_graphql_response_json(http):
    response = await post(http, FORBIDDEN_FOR_VISITORS, GRAPHQL_RESPONSE)

    assert response.status_code == 200
    assert "data" in response.json()
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["FORBIDDEN"]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
async def test_mutation_over_get_is_refused_with_405(http, accept):
    response = await http.get(
        "/graphql",
        params={
            "query": 'mutation { startCollectingRequests(appId: "x") { __typename } }'
        },
        headers={"Accept": accept},
    )

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "data" not in response.json()


async def test_query_over_get_with_variables_runs(http):
    response = await http.get(
        "/graphql",
        params={
            "query": "query Type($name: String!) { __type(name: $name) { name } }",
            "variables": json.dumps({"name": "Query"}),
        },
        headers={"Accept": GRAPHQL_RESPONSE},
    )

    assert response.status_code == 200
    assert response.json() == {"data": {"__type": {"name": "Query"}}}


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
@pytest.mark.parametrize(
    "content",
    [
        '{ "not a JSON',
        json.dumps({"notquery": "{ __typename }"}),
        json.dumps({"query": {"obj": "ect"}}),
        json.dumps({"query": ["array"]}),
        json.dumps({"query": "{ __typename }", "variables": "string"}),
        json.dumps({"query": "{ __typename }", "variables": ["array"]}),
        json.dumps({"query": "{ __typename }", "extensions": 0}),
        json.dumps({"query": "{ __typename }", "operationName": "Other"}),
    ],
)
async def test_malformed_request_is_400_with_a_coded_json_error(http, accept, content):
    response = await http.post(
        "/graphql",
        content=content,
        headers={"Content-Type": "application/json", "Accept": accept},
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith(accept)
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "data" not in response.json()


async def test_post_without_content_type_is_a_client_error(http):
    response = await http.post("/graphql", content=json.dumps(TYPENAME))

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json; charset=utf-8", 200),
        ("application/json;charset=UTF-8", 200),
        ("Application/JSON", 200),
        ("text/plain; charset=utf-8", 400),
    ],
)
async def test_a_post_is_read_by_its_media_type_in_any_case_and_with_parameters(
    http, content_type, status
):
    for _ in range(2):  # the second time, as the server has seen the value before
        response = await http.post(
            "/graphql",
            content=json.dumps(TYPENAME),
            headers={"Content-Type": content_type},
        )

        assert response.status_code == status


@pytest.mark.parametrize("parameter", ["variables", "operationName", "extensions"])
async def test_null_parameters_are_allowed(http, parameter):
    response = await post(http, {**TYPENAME, parameter: None}, GRAPHQL_RESPONSE)

    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_other_methods_get_405_as_a_graphql_error(http):
    response = await http.put("/graphql", content=json.dumps(TYPENAME))

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_subscription_over_http_is_refused_and_pointed_at_the_websocket(
    http, method
):
    document = "subscription { backInStockNotificationRequestEvents { type } }"
    if method == "GET":
        response = await http.get("/graphql", params={"query": document})
    else:
        response = await http.post("/graphql", json={"query": document})

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "WebSocket" in error["message"]
