"""GraphQL over HTTP: which media type answers a request, and with which status.

The GraphQL-over-HTTP specification defines two response media types. With
`application/json` (the default, and what every client got before) a GraphQL request
error is a 200 with `errors` and `data: null`. With `application/graphql-response+json`
the status tells the story: a request error (the document does not parse or validate,
the variables do not fit) is a 4xx and the body has no `data` entry at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
_JSON_RANGES = (JSON, "application/*", "*/*")


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an Accept header with their quality (`q`), in order."""
    ranges = []
    for part in accept.split(","):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((media.lower(), quality))
    return ranges


# Clients send a handful of distinct Accept headers; each is read once per request or more.
@lru_cache(maxsize=256)
def response_media_type(accept: str | None) -> str:
    """The media type to answer with, as the spec's content negotiation says.

    `application/graphql-response+json` when the client asks for it at least as much as
    for JSON; otherwise `application/json`, which is also the answer when the header is
    missing, is `*/*`, or names nothing we serve (the spec lets a server disregard an
    Accept header it cannot satisfy and use `application/json`).
    """
    if not accept:
        return JSON
    graphql_quality = 0.0
    json_quality = dict.fromkeys(_JSON_RANGES, 0.0)
    listed = set()
    for media, quality in _media_ranges(accept):
        if media == GRAPHQL_RESPONSE_JSON:
            graphql_quality = max(graphql_quality, quality)
        elif media in json_quality:
            json_quality[media] = max(json_quality[media], quality)
            listed.add(media)
    # The most specific range that names JSON decides its quality (RFC 9110, 12.5.1).
    plain = next((json_quality[m] for m in _JSON_RANGES if m in listed), 0.0)
    if graphql_quality > 0 and graphql_quality >= plain:
        return GRAPHQL_RESPONSE_JSON
    return JSON


def is_request_error(response: Mapping[str, Any]) -> bool:
    """A GraphQL response whose request failed before execution began.

    Parse, validation and variable coercion errors come before execution: graphql-core
    then gives `data: null` and errors that point at no field (`path`). An execution
    that nulled its root field also has `data: null`, but its errors carry a path.
    """
    errors: Sequence[Mapping[str, Any]] = response.get("errors") or ()
    return (
        response.get("data") is None
        and bool(errors)
        and all(error.get("path") is None for error in errors)
    )


def request_error_status(response: Mapping[str, Any]) -> int:
    """400 for a client's request error; 500 when the server failed before executing."""
    codes = {
        (error.get("extensions") or {}).get("code") for error in response["errors"]
    }
    return 500 if "INTERNAL" in codes else 400


def error_body(message: str, code: str) -> dict[str, Any]:
    """A GraphQL response with one error and no `data`: the request never ran."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}
