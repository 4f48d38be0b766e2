"""The execution context's fast path for plain leaf fields gives graphql-core's results.

The whole suite runs through it; here, the cases the fast path hands back to graphql-core
(null for a non-null field, error values, awaitables, values a type refuses, resolve
middleware) give the same data and errors as Strawberry's own execution.
"""

from __future__ import annotations

import asyncio
import enum
from datetime import UTC, datetime
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.scalars import JSON

from app.config import Settings
from app.fast_paths import execution_context_for, graphql_core_schema, leaf_plans
from app.graphql.schema import build_schema


@strawberry.enum
class Colour(enum.Enum):
    RED = "RED"


async def _later(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


@strawberry.type
class Thing:
    name: str
    nickname: str | None
    colour: Colour
    count: int
    when: datetime
    extra: JSON | None


def _things() -> list[Thing]:
    moment = datetime(2026, 11, 23, tzinfo=UTC)
    fine = Thing(
        name="a",
        nickname=None,
        colour=Colour.RED,
        count=1,
        when=moment,
        extra={"k": [1]},
    )
    return [
        fine,
        Thing(
            name=None, nickname="n", colour=Colour.RED, count=2, when=moment, extra=None
        ),  # type: ignore[arg-type]
        Thing(
            name="c",
            nickname=ValueError("boom"),
            colour="BLUE",
            count="x",
            when=moment,
            extra=None,
        ),  # type: ignore[arg-type]
        Thing(
            name="d",
            nickname=None,
            colour=Colour.RED,
            count=2**40,
            when="soon",
            extra=None,
        ),  # type: ignore[arg-type]
        Thing(
            name="e",
            nickname=_later("late"),
            colour=Colour.RED,
            count=3,
            when=moment,
            extra=_later(1),
        ),  # type: ignore[arg-type]
    ]


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        return _things()  # type: ignore[return-value]


DOCUMENT = "{ things { name nickname colour count when extra alias: name } }"


class Shouting(SchemaExtension):
    def resolve(
        self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any
    ) -> Any:
        result = _next(root, info, *args, **kwargs)
        return result.upper() if isinstance(result, str) else result


def _schema(fast: bool, extensions: list[Any] | None = None) -> strawberry.Schema:
    if not fast:
        return strawberry.Schema(query=Query, extensions=extensions or [])
    context = execution_context_for()
    schema = strawberry.Schema(
        query=Query, execution_context_class=context, extensions=extensions or []
    )
    context.plans = leaf_plans(graphql_core_schema(schema))
    return schema


def _outcome(result: Any) -> tuple[Any, list[tuple[str, list[Any]]]]:
    errors = sorted((error.message, error.path) for error in result.errors or [])
    return result.data, errors


async def _run(schema: strawberry.Schema) -> Any:
    return _outcome(await schema.execute(DOCUMENT))


async def test_plain_leaf_fields_give_the_same_data_and_errors_as_strawberry() -> None:
    fast, stock = await _run(_schema(True)), await _run(_schema(False))
    assert fast == stock
    data, errors = fast
    assert data["things"][0] == {
        "name": "a",
        "nickname": None,
        "colour": "RED",
        "count": 1,
        "when": "2026-11-23T00:00:00+00:00",
        "extra": {"k": [1]},
        "alias": "a",
    }
    assert data["things"][1] is None  # a null name nulls the whole thing
    assert data["things"][4]["nickname"] == "late"  # awaited
    assert any("non-nullable" in message for message, _ in errors)


async def test_a_resolve_middleware_still_sees_every_plain_field() -> None:
    fast = await _run(_schema(True, [Shouting]))
    stock = await _run(_schema(False, [Shouting]))
    assert fast == stock
    assert fast[0]["things"][0]["name"] == "A"


def test_the_service_schema_plans_its_plain_leaf_fields_only() -> None:
    schema = build_schema(Settings(_env_file=None, fast_paths=True))
    plans = schema.execution_context_class.plans  # type: ignore[attr-defined]
    request = "BackInStockNotificationRequest"
    assert plans[request, "email"].attribute == "email"
    assert plans[request, "createdDate"].attribute == "created_date"
    assert (request, "catalogReference") not in plans  # an object: graphql-core's path
    assert (request, "deliveryAttempts") not in plans  # guarded by a permission
