"""Each distinct GraphQL document is parsed and validated once, within the service's limits.

One extension in place of Strawberry's MaxTokensLimiter, ParserCache, AddValidationRules and
ValidationCache, which did the same in four: every request ran each one's hooks, and
ValidationCache keyed its cache by the parsed document, whose hash walks every node of it
(about sixty per request), where a query text's hash is computed once and kept.

The cache is bounded by entries and by bytes (its own estimate of what an entry holds), a
document over MAX_DOCUMENT_BYTES is refused before it is parsed, and large documents are
parsed and validated in a worker thread and never kept: a client cannot pin memory with
distinct documents, nor hold the event loop with one (each such parse still takes its
turns with the loop for the interpreter, a few milliseconds at a time). The limit rules
(depth, aliases) run only on documents the specification's rules accept, so a client's
mistake gets the specification's message rather than a limiter's failure; then the
checks that need the request's variables (the cost budget, app.graphql.cost) run.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    parse,
    validate,
)
from strawberry.extensions import SchemaExtension

from app.fast_paths import graphql_core_schema
from app.graphql.errors import request_error_code

T = TypeVar("T")
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
# Bytes an entry holds per token of its document (its AST nodes and tokens), measured
# with tracemalloc on this service's documents (430-520 bytes).
BYTES_PER_TOKEN = 512
# Documents larger than this are parsed in a worker thread, and not cached.
LARGE_DOCUMENT_CHARACTERS = 16 * 1024


@dataclass
class ParsedDocument:
    """A document, its validation errors (once validated) and what was derived from it."""

    document: DocumentNode
    size: int
    errors: list[GraphQLError] | None = None
    rules: tuple[type[ASTValidationRule], ...] = ()
    derived: dict[Callable[..., Any], Any] = field(default_factory=dict)

    def derived_from(
        self, make: Callable[[GraphQLSchema, DocumentNode], T], schema: GraphQLSchema
    ) -> T:
        """`make(schema, document)`, computed once for this document (one schema each)."""
        try:
            return self.derived[make]  # type: ignore[no-any-return]
        except KeyError:
            value = self.derived[make] = make(schema, self.document)
            return value


# Run once a document is valid; an error refuses the request before it executes.
DocumentCheck = Callable[[Any, ParsedDocument], GraphQLError | None]


def _token_count(document: DocumentNode) -> int:
    location = document.loc
    token = location.start_token if location is not None else None
    count = 0
    while token is not None:
        count += 1
        token = token.next
    return count


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    if error.extensions and "code" in error.extensions:
        return error
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), "code": code},
    )


class DocumentCache:
    """Parsed documents and their validation errors by query text: an LRU bounded twice.

    `bytes` is the cache's own account of what its entries hold (their text twice, as
    key and as the tokens' values, and BYTES_PER_TOKEN per token); it never exceeds
    `max_bytes`, nor `len(cache)` `max_entries`.
    """

    def __init__(
        self,
        *,
        max_tokens: int,
        max_document_bytes: int,
        rules: Sequence[type[ASTValidationRule]],
        max_entries: int,
        max_bytes: int,
        checks: Sequence[DocumentCheck] = (),
    ) -> None:
        self.max_tokens = max_tokens
        self.max_document_bytes = max_document_bytes
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        # One entry may take at most this share of the budget, so no few fill it.
        self.max_entry_bytes = max_bytes // 16
        # Made once: a limiter's rule classes made per request would differ each time.
        self._limit_rules = tuple(rules)
        self.checks = tuple(checks)
        self._entries: OrderedDict[str, ParsedDocument] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _parse(self, query: str) -> ParsedDocument:
        if len(query) * 4 > self.max_document_bytes:  # else it fits whatever its text
            size = len(query.encode("utf-8", "surrogatepass"))
            if size > self.max_document_bytes:
                raise GraphQLError(
                    f"Document is larger than {self.max_document_bytes} bytes "
                    f"({size}); send a smaller one.",
                    extensions={"code": PARSE_FAILED},
                )
        document = parse(query, max_tokens=self.max_tokens)
        size = 2 * len(query) + BYTES_PER_TOKEN * _token_count(document)
        return ParsedDocument(document, size)

    def _validate(
        self,
        parsed: ParsedDocument,
        schema: GraphQLSchema,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> None:
        """The specification's rules first; the limits only on what they accept."""
        errors = validate(schema, parsed.document, rules)
        if not errors:
            errors = validate(schema, parsed.document, self._limit_rules)
        # Coded once here (an argument's literal of the wrong type: INVALID_ARGUMENT).
        parsed.errors = [
            _with_code(error, request_error_code(error)) for error in errors
        ]
        parsed.rules = rules

    def _keep(self, query: str, parsed: ParsedDocument) -> None:
        if parsed.size > self.max_entry_bytes or query in self._entries:
            return
        self._entries[query] = parsed
        self.bytes += parsed.size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.size

    async def prepare(
        self,
        query: str,
        schema: GraphQLSchema,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> ParsedDocument:
        """The parsed and validated document of `query` (raises GraphQLError if it does
        not parse)."""
        parsed = self._entries.get(query)
        if parsed is not None:
            self._entries.move_to_end(query)
            if parsed.rules != rules:  # another rule set: validated again, not kept
                parsed = ParsedDocument(parsed.document, parsed.size)
                self._validate(parsed, schema, rules)
            return parsed
        if len(query) > LARGE_DOCUMENT_CHARACTERS:
            # Off the event loop (it still takes turns with it for the interpreter).
            return await asyncio.to_thread(self._prepared, query, schema, rules)
        parsed = self._prepared(query, schema, rules)
        self._keep(query, parsed)
        return parsed

    def _prepared(
        self,
        query: str,
        schema: GraphQLSchema,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> ParsedDocument:
        parsed = self._parse(query)
        self._validate(parsed, schema, rules)
        return parsed

    def extension(self) -> CachedDocuments:
        """A factory for Strawberry's `extensions=` (one extension object per request)."""
        return CachedDocuments(self)


class CachedDocuments(SchemaExtension):
    """Parses and validates through the cache; `parsed` is this request's document."""

    def __init__(self, cache: DocumentCache) -> None:
        self.cache = cache
        self.parsed: ParsedDocument | None = None

    async def on_parse(self) -> AsyncIterator[None]:
        context: Any = self.execution_context
        if context.query is not None:  # else Strawberry reports the missing query
            self.parsed = await self.cache.prepare(
                context.query,
                graphql_core_schema(context.schema),
                tuple(context.validation_rules),
            )
            context.graphql_document = self.parsed.document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        parsed = self.parsed
        if parsed is not None:
            context.pre_execution_errors = parsed.errors
            if not parsed.errors:
                for check in self.cache.checks:
                    error = check(context, parsed)
                    if error is not None:
                        context.pre_execution_errors = [error]
                        break
        yield
