"""One place that gives every error its `extensions.code` and hides the unexpected."""

from __future__ import annotations

import logging
import re

from strawberry.utils.str_converters import to_camel_case

from app.services.errors import InvalidArgument, ServiceError
from graphql import GraphQLError

log = logging.getLogger("app.graphql")

INTERNAL_MESSAGE = "Internal server error."
# graphql-core's wording for input values that do not fit their type.
_BAD_VALUE_MARKERS = (
    "got invalid value",
    "Expected value of type",
    "cannot represent",
    "Expected type",
    "of required type",
    "was not provided",
)


def _with_code(
    error: GraphQLError, message: str, extensions: dict[str, object]
) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), **extensions},
    )


_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def graphql_path(field: str) -> str:
    """A violation's field path in the API's names: `request.catalog_reference.app_id`
    becomes `request.catalogReference.appId`, `filter.status.in_[0]` `filter.status.in[0]`.
    """
    return _SEGMENT.sub(lambda name: _api_name(name.group()), field)


def _api_name(name: str) -> str:
    # GraphQL's own names (`__typename`) are the same in both spellings.
    return name if name.startswith("__") else to_camel_case(name.rstrip("_"))


def _request_error_code(error: GraphQLError) -> str:
    """Errors raised before execution: the document or the variables are wrong."""
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if any(marker in error.message for marker in _BAD_VALUE_MARKERS):
        return "INVALID_ARGUMENT"
    return "GRAPHQL_VALIDATION_FAILED"


def coded(error: GraphQLError) -> GraphQLError:
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if isinstance(original, ServiceError):
        extensions: dict[str, object] = {"code": original.code}
        if isinstance(original, InvalidArgument):
            extensions["fieldViolations"] = [
                {"field": graphql_path(v.field), "description": v.description}
                for v in original.field_violations
            ]
        return _with_code(error, original.message, extensions)
    if original is None or error.path is None:
        return _with_code(error, error.message, {"code": _request_error_code(error)})
    masked = GraphQLError(
        INTERNAL_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "INTERNAL"},
    )
    return masked


def with_codes(errors: list[GraphQLError]) -> list[GraphQLError]:
    return [coded(error) for error in errors]


def log_errors(errors: list[GraphQLError]) -> None:
    """Expected errors are a client's business: logged quietly. The rest loudly."""
    for error in errors:
        original = error.original_error
        if original is None or isinstance(original, ServiceError):
            log.debug("request error: %s", error.message)
        else:
            log.error("unexpected error in %s", error.path, exc_info=original)
