"""The document cache and size limits: memory stays bounded whatever documents arrive."""

from __future__ import annotations

import threading

import pytest

from app.config import Settings
from app.graphql import documents as documents_module
from tests.documents import SETTINGS

# The document layer is the same on every database.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def padded(text: str, size: int, tag: int = 0) -> str:
    """`text` made `size` characters long with a comment (no tokens), distinct by `tag`."""
    head = f"{text}\n# {tag} "
    return head + "x" * (size - len(head))


def cache_of(app):
    graphql_app = next(
        route for route in app.routes if route.path == "/graphql"
    ).endpoint
    return graphql_app.schema.documents


class TestSmallCacheBudget:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"document_cache_bytes": 256 * 1024})

    async def test_cache_holds_no_more_bytes_than_its_budget(self, gql, app):
        cache = cache_of(app)

        for tag in range(100):
            result = await gql(padded(SETTINGS, 4 * 1024, tag))
            assert result.errors == []

        assert 0 < cache.bytes <= cache.max_bytes == 256 * 1024
        assert len(cache) < 100


async def test_cache_keeps_at_most_its_entries(gql, app):
    cache = cache_of(app)

    for tag in range(cache.max_entries + 50):
        await gql(f"{{ __typename }} # {tag}")

    assert len(cache) == cache.max_entries


async def test_large_documents_are_answered_but_not_cached(gql, app):
    cache = cache_of(app)
    before = (len(cache), cache.bytes)

    result = await gql(padded(SETTINGS, 40 * 1024))

    assert result.errors == []
    assert result.data["backInStockSettings"] == {"collectionStates": []}
    assert (len(cache), cache.bytes) == before


async def test_documents_over_max_document_bytes_are_refused_before_parsing(
    gql, settings, monkeypatch
):
    parsed: list[int] = []
    real_parse = documents_module.parse
    monkeypatch.setattr(
        documents_module,
        "parse",
        lambda query, **kw: parsed.append(1) or real_parse(query, **kw),
    )

    result = await gql(padded(SETTINGS, settings.max_document_bytes + 1))

    assert result.codes == ["GRAPHQL_PARSE_FAILED"]
    assert (
        f"larger than {settings.max_document_bytes} bytes"
        in result.errors[0]["message"]
    )
    assert parsed == []


async def test_document_size_counts_utf8_bytes(gql, settings):
    # Fewer characters than the limit, more bytes: each "é" is two bytes.
    query = SETTINGS + "# " + "é" * (settings.max_document_bytes // 2)

    result = await gql(query)

    assert result.codes == ["GRAPHQL_PARSE_FAILED"]


async def test_comment_padding_cannot_carry_a_document_past_the_size_limit(
    gql, settings
):
    # Comments are no tokens, so MAX_TOKENS alone would let this through.
    query = "{ __typename }" + "\n#" + " " * (2 * settings.max_document_bytes)

    result = await gql(query)

    assert result.codes == ["GRAPHQL_PARSE_FAILED"]


async def test_large_documents_are_parsed_in_a_worker_thread(gql, monkeypatch):
    threads: list[int] = []
    real_parse = documents_module.parse

    def spying_parse(query: str, **kwargs):
        threads.append(threading.get_ident())
        return real_parse(query, **kwargs)

    monkeypatch.setattr(documents_module, "parse", spying_parse)
    loop_thread = threading.get_ident()

    small = await gql("{ __typename } # small")
    large = await gql(padded(SETTINGS, 40 * 1024))

    assert small.errors == [] and large.errors == []
    assert threads[0] == loop_thread
    assert threads[1] != loop_thread


class TestTightLimits:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"max_document_bytes": 2048})

    async def test_max_document_bytes_is_a_setting(self, gql):
        within = await gql(padded(SETTINGS, 2000))
        beyond = await gql(padded(SETTINGS, 2100))

        assert within.errors == []
        assert beyond.codes == ["GRAPHQL_PARSE_FAILED"]
