"""The HTTP edge: malformed bodies, size and depth limits, health, GraphiQL."""

from __future__ import annotations

import pytest
from graphql import get_introspection_query

from app.config import Settings
from tests.documents import SETTINGS

# The HTTP layer is the same on every database.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_healthz_answers_ok(http):
    response = await http.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database(http):
    response = await http.get("/readyz")

    assert response.status_code == 200


async def test_graphiql_opens_in_a_browser(http):
    response = await http.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\xfa not utf-8",
        b"{not json",
        b"[1, 2]",
        b"[]",
        b'"just a string"',
        b'{"query": "{ backInStockSettings { collectionStates { appId } } }", "variables": [1]}',
        b'{"query": "{ backInStockSettings { collectionStates { appId } } }", "variables": "x"}',
        b'{"variables": {}}',
        b'{"query": 42}',
        b"",
    ],
)
async def test_malformed_bodies_get_a_client_error_not_a_server_error(http, body):
    response = await http.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )

    assert 400 <= response.status_code < 500 or (
        response.status_code == 200 and response.json().get("errors")
    )
    health = await http.get("/healthz")
    assert health.status_code == 200


async def test_body_over_the_limit_is_refused_and_server_stays_healthy(http, settings):
    padding = "x" * (settings.max_request_bytes + 1)
    body = '{"query": "{ __typename }", "variables": {"pad": "' + padding + '"}}'

    response = await http.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert (await http.get("/healthz")).status_code == 200


async def test_streamed_body_over_the_limit_is_refused(http, settings):
    async def chunks():
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        for _ in range(settings.max_request_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"}}'

    response = await http.post(
        "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413


async def test_graphiql_introspection_query_passes_the_limits(gql):
    result = await gql(get_introspection_query(descriptions=True))

    assert result.errors == []
    assert result.data["__schema"]["queryType"]["name"] == "Query"


async def test_unknown_field_is_a_validation_error(gql):
    result = await gql("{ nope }")

    assert result.codes == ["GRAPHQL_VALIDATION_FAILED"]


async def test_syntax_error_is_a_parse_error(gql):
    result = await gql("{ backInStockSettings ")

    assert result.codes == ["GRAPHQL_PARSE_FAILED"]


async def test_variable_of_the_wrong_type_is_invalid_argument(gql, admin_key):
    result = await gql(
        "query($first: Int) { backInStockNotificationRequests(first: $first) { totalCount } }",
        {"first": "many"},
        key=admin_key,
    )

    assert result.codes == ["INVALID_ARGUMENT"]


async def test_bad_datetime_literal_is_invalid_argument(gql, admin_key):
    result = await gql(
        '{ backInStockNotificationRequests(filter: {createdDate: {gt: "yesterday"}}) '
        "{ totalCount } }",
        key=admin_key,
    )

    assert result.codes == ["INVALID_ARGUMENT"]


async def test_too_many_aliases_are_refused(gql, settings):
    aliases = " ".join(
        f"a{i}: backInStockSettings {{ __typename }}"
        for i in range(settings.max_aliases + 1)
    )

    result = await gql(f"{{ {aliases} }}")

    assert result.codes == ["GRAPHQL_VALIDATION_FAILED"]


async def test_too_many_tokens_are_refused(gql, settings):
    fields = " ".join("__typename" for _ in range(settings.max_tokens))

    result = await gql(f"{{ {fields} }}")

    assert result.errors
    assert result.data is None


class TestShallowDepthLimit:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"max_query_depth": 1})

    async def test_query_deeper_than_the_limit_is_refused(self, gql):
        result = await gql(SETTINGS)

        assert set(result.codes) == {"GRAPHQL_VALIDATION_FAILED"}
        assert result.data is None
        assert "depth" in result.errors[0]["message"]


async def test_unexpected_errors_are_masked_as_internal(gql, app, monkeypatch):
    from app.services import settings as settings_service

    async def broken(session):
        raise RuntimeError("SELECT secret FROM passwords")

    monkeypatch.setattr(settings_service, "list_collection_states", broken)

    result = await gql(SETTINGS)

    assert result.codes == ["INTERNAL"]
    assert "secret" not in str(result.body)
    assert "Traceback" not in str(result.body)


async def test_storefronts_on_other_origins_may_call_the_api(http):
    preflight = await http.options(
        "/graphql",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    response = await http.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"Origin": "https://shop.example"},
    )

    assert preflight.status_code == 200
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert response.headers["access-control-allow-origin"] in (
        "*",
        "https://shop.example",
    )
