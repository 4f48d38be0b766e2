"""One place that gives every error its `extensions.code`, hides the unexpected and logs.

A client's mistake (a document that does not parse or validate, a variable of the wrong
type, input a rule refuses) keeps graphql-core's or the service's message, carries its
code and is logged below WARNING: it is the client's business. Anything else is a server
fault: the client sees INTERNAL and a generic message, the log gets it once, with its
trace, at ERROR.
"""

from __future__ import annotations

import logging
import re

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.utils.str_converters import to_camel_case

from app.services.errors import InvalidArgument, RateLimited, ServiceError

log = logging.getLogger("app.graphql")

INTERNAL = "INTERNAL"
INTERNAL_MESSAGE = "Internal server error."
# graphql-core's wording for input values that do not fit their type (in validation).
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


def request_error_code(error: GraphQLError) -> str:
    """Errors of the request itself, before execution: its document or its variables."""
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    # graphql-core's variable coercion: "Variable '$first' got invalid value ...".
    if error.message.startswith("Variable '$") or any(
        marker in error.message for marker in _BAD_VALUE_MARKERS
    ):
        return "INVALID_ARGUMENT"
    return "GRAPHQL_VALIDATION_FAILED"


def _is_request_error(error: GraphQLError) -> bool:
    """Raised by graphql-core about the request, not by a fault of the server's code."""
    original = error.original_error
    return error.path is None and (
        original is None or isinstance(original, GraphQLError)
    )


def coded(error: GraphQLError) -> GraphQLError:
    """`error` as the client sees it: with its code; INTERNAL and masked if unexpected."""
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if isinstance(original, ServiceError):
        extensions: dict[str, object] = {"code": original.code}
        message = original.message
        if isinstance(original, InvalidArgument):
            fields = [graphql_path(v.field) for v in original.field_violations]
            extensions["fieldViolations"] = [
                {"field": field, "description": v.description}
                for field, v in zip(fields, original.field_violations, strict=True)
            ]
            # The message names the fields as the API does, like fieldViolations.
            message = f"Invalid argument: {', '.join(fields)}"
        if isinstance(original, RateLimited):
            # The view repeats the longest of these as the HTTP Retry-After header.
            extensions["retryAfterSeconds"] = original.retry_after_seconds
        return _with_code(error, message, extensions)
    if _is_request_error(error):
        return _with_code(error, error.message, {"code": request_error_code(error)})
    return GraphQLError(
        INTERNAL_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": INTERNAL},
    )


def coded_and_logged(errors: list[GraphQLError]) -> list[GraphQLError]:
    """Every error coded; server faults logged at ERROR with their trace, the rest at DEBUG."""
    answered = []
    for error in errors:
        answer = coded(error)
        code = (answer.extensions or {}).get("code")
        if code == INTERNAL:
            fault = error.original_error or error
            log.error(
                "unexpected error in %s: %r",
                error.path or "the request",
                fault,
                exc_info=(type(fault), fault, fault.__traceback__),
            )
        else:
            log.debug("request error (%s): %s", code, answer.message)
        answered.append(answer)
    return answered
