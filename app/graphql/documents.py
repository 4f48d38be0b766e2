"""Each distinct GraphQL document is parsed and validated once, with the service's limits.

One extension in place of Strawberry's MaxTokensLimiter, ParserCache, AddValidationRules and
ValidationCache, which did the same in four: every request ran each one's hooks, and
ValidationCache keyed its cache by the parsed document, whose hash walks every node of it
(about sixty per request), where a query text's hash is computed once and kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from strawberry.extensions import SchemaExtension

from app.fast_paths import graphql_core_schema

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    parse,
    validate,
)


class DocumentCache:
    """Parsed documents and their validation errors by query text (bounded LRU caches)."""

    def __init__(
        self, *, max_tokens: int, rules: Sequence[type[ASTValidationRule]], size: int
    ) -> None:
        self._max_tokens = max_tokens
        # Made once: the cache would miss if a limiter's rule classes were made per request.
        self._rules = tuple(rules)
        self.parse = lru_cache(maxsize=size)(self._parse)
        self.errors = lru_cache(maxsize=size)(self._errors)

    def _parse(self, query: str) -> DocumentNode:
        return parse(query, max_tokens=self._max_tokens)

    def _errors(
        self,
        query: str,
        schema: GraphQLSchema,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> list[GraphQLError]:
        return validate(schema, self.parse(query), (*rules, *self._rules))

    def extension(self) -> CachedDocuments:
        """A factory for Strawberry's `extensions=` (one extension object per request)."""
        return CachedDocuments(self)


class CachedDocuments(SchemaExtension):
    def __init__(self, cache: DocumentCache) -> None:
        self._cache = cache

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None:  # else Strawberry reports the missing query
            context.graphql_document = self._cache.parse(context.query)
        yield

    def on_validate(self) -> Iterator[None]:
        context: Any = self.execution_context
        if context.query is not None:
            context.pre_execution_errors = self._cache.errors(
                context.query,
                graphql_core_schema(context.schema),
                context.validation_rules,
            )
        yield
