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

from app.graphql.execution import ServiceExecutionContext, leaf_plans
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


def _thing(**fields: Any) -> Thing:
    """A Thing holding whatever it is given, values its types refuse included."""
    return Thing(**fields)


def _things() -> list[Thing]:
    moment = datetime(2026, 11, 23, tzinfo=UTC)
    plain = {"nickname": None, "colour": Colour.RED, "when": moment, "extra": None}
    return [
        _thing(**{**plain, "name": "a", "count": 1, "extra": {"k": [1]}}),
        _thing(**{**plain, "name": None, "nickname": "n", "count": 2}),
        _thing(
            **{
                **plain,
                "name": "c",
                "nickname": ValueError("boom"),
                "colour": "BLUE",
                "count": "x",
            }
        ),
        _thing(**{**plain, "name": "d", "count": 2**40, "when": "soon"}),
        _thing(
            **{
                **plain,
                "name": "e",
                "nickname": _later("late"),
                "count": 3,
                "extra": _later(1),
            }
        ),
    ]


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        return list(_things())


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

    class Context(ServiceExecutionContext):
        """A context class of this schema's own, to hold its plans."""

    schema = strawberry.Schema(
        query=Query, execution_context_class=Context, extensions=extensions or []
    )
    # Strawberry's GraphQLSchema: what app.graphql.schema.build_schema plans from too.
    Context.plans = leaf_plans(schema._schema)
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
    context: type[Any] = build_schema().execution_context_class
    assert issubclass(context, ServiceExecutionContext)
    plans = context.plans
    request = "BackInStockNotificationRequest"
    assert plans[request, "email"].attribute == "email"
    assert plans[request, "createdDate"].attribute == "created_date"
    assert (request, "catalogReference") not in plans  # an object: graphql-core's path
    assert (request, "deliveryAttempts") not in plans  # guarded by a permission
