"""Client mistakes: the specification's messages, a code, quiet logs. Faults: logged once."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from tests.documents import CREATE_REQUEST, SETTINGS

ENTITIES = """
query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on BackInStockNotificationRequest { id }
  }
}
"""
REQUEST_TYPE = "BackInStockNotificationRequest"


def loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


def fragment_bomb(levels: int, leaf: str) -> str:
    """Each fragment spreads the next twice: 2^levels copies of `leaf` when expanded."""
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    return f"query {{ ...F0 }} {fragments} fragment F{levels} on Query {{ {leaf} }}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
class TestClientMistakes:
    async def test_unknown_fragment_gets_the_specifications_message(self, gql, caplog):
        caplog.set_level(logging.DEBUG)

        result = await gql("{ ...Nope }")

        assert result.codes == ["GRAPHQL_VALIDATION_FAILED"]
        assert result.errors[0]["message"] == "Unknown fragment 'Nope'."
        assert loud(caplog) == []

    async def test_variable_of_the_wrong_type_is_logged_quietly(self, gql, caplog):
        caplog.set_level(logging.DEBUG)

        result = await gql(CREATE_REQUEST, {"request": 5})

        assert set(result.codes) == {"INVALID_ARGUMENT"}
        assert result.errors[0]["message"].startswith(
            "Variable '$request' has invalid value"
        )
        assert loud(caplog) == []

    async def test_missing_required_variable_is_invalid_argument(self, gql):
        result = await gql(CREATE_REQUEST, {})

        assert result.codes == ["INVALID_ARGUMENT", "INVALID_ARGUMENT"]

    @pytest.mark.parametrize(
        ("document", "code"),
        [
            ("{ backInStockSettings ", "GRAPHQL_PARSE_FAILED"),
            ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
            (
                "query A { __typename } query A { __typename }",
                "GRAPHQL_VALIDATION_FAILED",
            ),
            ("{ a" + " { a" * 300 + " }" * 301, "GRAPHQL_PARSE_FAILED"),
            ("fragment F on Query { ...F } { ...F }", "GRAPHQL_VALIDATION_FAILED"),
        ],
    )
    async def test_bad_documents_are_coded_and_logged_quietly(
        self, gql, caplog, document, code
    ):
        caplog.set_level(logging.DEBUG)

        result = await gql(document)

        assert result.codes == [code]
        assert loud(caplog) == []

    async def test_aliases_are_counted_at_every_spread_without_expanding(self, gql):
        # 2^30 aliases once expanded: counted per fragment, not by walking each copy.
        result = await gql(fragment_bomb(30, "a: __typename"))

        assert result.codes == ["GRAPHQL_VALIDATION_FAILED"]
        assert result.errors[0]["message"] == f"{2**30} aliases found. Allowed: 30"

    async def test_spreading_a_fragment_many_times_is_answered_once(self, gql):
        result = await gql(fragment_bomb(30, "__typename"))

        assert result.errors == []
        assert result.data == {"__typename": "Query"}

    async def test_fragments_nested_too_deep_are_refused(self, gql):
        chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(40))
        document = f"{{ ...F0 }} {chain} fragment F40 on Query {{ __typename }}"

        result = await gql(document)

        assert result.codes == ["GRAPHQL_VALIDATION_FAILED"]
        assert result.errors[0]["message"].startswith(
            "Fragments spread fragments 41 levels deep"
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
class TestShallowDepth:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"max_query_depth": 1})

    async def test_depth_is_counted_through_fragments(self, gql):
        result = await gql(
            "{ ...F } fragment F on Query { backInStockSettings { collectionStates { appId } } }"
        )

        assert result.codes == ["GRAPHQL_VALIDATION_FAILED"]
        assert "exceeds maximum operation depth of 1" in result.errors[0]["message"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "representation",
    [
        {"__typename": REQUEST_TYPE},
        {"__typename": REQUEST_TYPE, "id": 5},
        {"__typename": REQUEST_TYPE, "id": None},
        {
            "__typename": REQUEST_TYPE,
            "id": "01a2349f-d634-778f-978f-b09c88f424f0",
            "x": 1,
        },
        {"__typename": "Nope", "id": "x"},
        {"id": "x"},
        5,
        "text",
        [],
    ],
)
async def test_malformed_entity_representations_are_invalid_argument(
    gql, representation, caplog
):
    caplog.set_level(logging.DEBUG)

    result = await gql(ENTITIES, {"representations": [representation]})

    assert result.codes == ["INVALID_ARGUMENT"]
    assert all(field.startswith("representations[0]") for field in result.violations)
    assert loud(caplog) == []


async def test_a_server_fault_is_logged_once_with_its_trace(gql, settings, caplog):
    # given a database that lost a table under the server
    engine = create_async_engine(settings.database_url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE collection_states"))
    await engine.dispose()
    caplog.set_level(logging.DEBUG)

    # when a client reads the settings
    result = await gql(SETTINGS)

    # then it gets INTERNAL, and the log one ERROR with the trace (and no SQL to clients)
    assert result.codes == ["INTERNAL"]
    assert "collection_states" not in str(result.body)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "collection_states" in str(errors[0].exc_info[1])
