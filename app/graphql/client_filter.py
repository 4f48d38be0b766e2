"""A request filter as a client writes it (the JSON of the API's `filter` variable, in
camelCase), turned into the domain's filter the way the GraphQL layer turns a variable.

graphql-core coerces it against the schema's input type (scalars parsed, enums checked),
Strawberry builds the input objects, and `filter_to_domain` makes plain dicts of them:
the very steps of a `backInStockNotificationRequests(filter: $filter)` call.
"""

from __future__ import annotations

import json
from typing import cast

from graphql import GraphQLError, Undefined
from graphql.utilities import coerce_input_value, validate_input_value
from strawberry.types.arguments import convert_argument

from app.graphql.inputs import BackInStockNotificationRequestFilter, filter_to_domain
from app.graphql.schema import build_schema
from app.services.request_filters import RequestFilter


class FilterError(ValueError):
    """The text is not a filter the API would accept (not JSON, or not the type)."""


def filter_from_json(text: str) -> RequestFilter | None:
    """The domain filter of a client's JSON filter; raises FilterError if it is bad."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise FilterError(f"not JSON: {error}") from None
    schema = build_schema()
    converter = schema.schema_converter
    input_type = converter.from_input_object(BackInStockNotificationRequestFilter)
    problems: list[str] = []

    def complain(error: GraphQLError, path: list[str | int]) -> None:
        where = ".".join(str(key) for key in ["filter", *path])
        problems.append(f"{where}: {error.message}")

    validate_input_value(value, input_type, complain)
    coerced = coerce_input_value(value, input_type)
    if problems or coerced is Undefined:
        raise FilterError("; ".join(problems) or "not a filter")
    converted = convert_argument(
        coerced,
        BackInStockNotificationRequestFilter,
        converter.scalar_registry,
        schema.config,
    )
    return filter_to_domain(cast(BackInStockNotificationRequestFilter, converted))
