"""JSON options: only values every layer keeps exactly are stored, and any stored row reads.

Every layer: the JSON body (orjson reads integers beyond 64 bits as floats), SQLite's JSON
text, PostgreSQL's JSONB (which prints 1e20 as 100000000000000000000), orjson on the way
out (64-bit integers) and JavaScript clients (2^53).
"""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.documents import (
    COUNT_BY_REFERENCES,
    CREATE_REQUEST,
    GET_REQUEST,
    ITEM,
    REPORT,
    create,
    new_request,
    reference,
)

PAGE_WITH_OPTIONS = """
{ backInStockNotificationRequests(first: 10) {
    nodes { id catalogReference { options } } } }
"""
SAFE_LIMIT = 2**53 - 1


def nested(levels: int) -> dict:
    """An object `levels` deep: {"a": {"a": ... 1}}."""
    value: object = 1
    for _ in range(levels):
        value = {"a": value}
    return value  # type: ignore[return-value]


def inline_create(options_literal: str) -> str:
    return (
        "mutation { createBackInStockNotificationRequest(request: {catalogReference: "
        f'{{appId: "stores", catalogItemId: "shoe-1", options: {options_literal}}}, '
        'email: "ann@example.com"}, itemDetails: {name: "Shoe", price: "1"}) { id } }'
    )


async def store_options(settings, request_id: str, json_text: str) -> None:
    """Write `json_text` as the request's options with SQL, around every rule."""
    engine = create_async_engine(settings.database_url)
    on_postgresql = engine.dialect.name == "postgresql"
    statement = (
        "UPDATE notification_requests SET options = CAST(:options AS JSONB) "
        "WHERE id = CAST(:id AS UUID)"
        if on_postgresql
        else "UPDATE notification_requests SET options = :options WHERE id = :id"
    )
    try:
        async with engine.begin() as connection:
            updated = await connection.execute(
                text(statement), {"options": json_text, "id": request_id}
            )
            assert updated.rowcount == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "number",
    [2**53, -(2**53), 2**63, 2**70, -(10**19), 1e308, 1e20, -1e300],
)
async def test_numbers_beyond_what_every_layer_keeps_are_refused(
    gql, collecting, number
):
    result = await gql(CREATE_REQUEST, new_request(options={"n": number}))

    assert result.codes == ["INVALID_CATALOG_REFERENCE_OPTIONS"]
    assert result.data is None


@pytest.mark.parametrize("literal", ["99999999999999999999999", "1e400", "-1e400"])
async def test_number_literals_beyond_the_range_are_refused(gql, collecting, literal):
    result = await gql(inline_create(f"{{n: {literal}}}"))

    assert result.codes == ["INVALID_CATALOG_REFERENCE_OPTIONS"]


@pytest.mark.parametrize(
    "number", [SAFE_LIMIT, -SAFE_LIMIT, 0.1, 1.5e-300, 0.30000000000000004, 12.5]
)
async def test_numbers_within_the_range_read_back_exactly(
    gql, admin_key, collecting, number
):
    created = await create(gql, options={"n": number, "list": [number]})

    stored = await gql(GET_REQUEST, {"id": created["id"]}, key=admin_key)

    options = stored.data["backInStockNotificationRequest"]["catalogReference"][
        "options"
    ]
    assert options == {"n": number, "list": [number]}
    assert type(options["n"]) is type(number)


async def test_options_nested_32_levels_are_kept(gql, collecting):
    created = await create(gql, options=nested(32))

    assert created["catalogReference"]["options"] == nested(32)


async def test_options_nested_deeper_than_32_levels_are_refused(gql, collecting):
    result = await gql(CREATE_REQUEST, new_request(options=nested(33)))

    assert result.codes == ["INVALID_CATALOG_REFERENCE_OPTIONS"]


async def test_options_nested_500_levels_in_variables_are_refused_not_internal(
    gql, collecting
):
    result = await gql(CREATE_REQUEST, new_request(options=nested(500)))

    assert result.codes == ["INVALID_CATALOG_REFERENCE_OPTIONS"]


async def test_options_nested_100_levels_inline_are_refused(gql, collecting):
    result = await gql(inline_create("{a: " * 100 + "1" + "}" * 100))

    assert result.codes == ["INVALID_CATALOG_REFERENCE_OPTIONS"]


async def test_options_nested_500_levels_inline_are_a_parse_error(gql, collecting):
    # graphql-core's parser stops at 200 levels of nesting, before any rule runs.
    result = await gql(inline_create("{a: " * 500 + "1" + "}" * 500))

    assert result.codes == ["GRAPHQL_PARSE_FAILED"]


async def test_options_with_thousands_of_values_are_refused_as_too_large(
    gql, collecting
):
    result = await gql(CREATE_REQUEST, new_request(options={"n": [0] * 5000}))

    assert result.codes == ["INVALID_CATALOG_REFERENCE_OPTIONS"]


async def test_count_by_references_applies_the_options_rules(gql, admin_key):
    refs = [reference(options={"n": 2**64}), reference(options=nested(40))]

    result = await gql(COUNT_BY_REFERENCES, {"refs": refs}, key=admin_key)

    assert result.codes == ["INVALID_CATALOG_REFERENCE_OPTIONS"]


async def test_report_applies_the_options_rules(gql, admin_key):
    options = {"catalogReference": reference(options={"n": 1e300})}

    result = await gql(REPORT, {"itemDetails": ITEM, "options": options}, key=admin_key)

    assert result.codes == ["INVALID_CATALOG_REFERENCE_OPTIONS"]


@pytest.mark.parametrize("value", [2**64, 1e300, -(2**53)])
async def test_template_parameters_apply_the_number_rule(gql, admin_key, value):
    options = {
        "catalogReference": reference(),
        "extraAutomationTemplateParameters": {"item.name": value},
    }

    result = await gql(REPORT, {"itemDetails": ITEM, "options": options}, key=admin_key)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["options.extraAutomationTemplateParameters"]


async def test_stored_options_no_reader_can_encode_never_break_a_page(
    gql, admin_key, collecting, settings
):
    # given a row whose options were written around the rules: an integer beyond 64
    # bits, one beyond 2^53, a number PostgreSQL prints with 309 digits, 40 levels
    first = await create(gql, email="first@example.com")
    second = await create(gql, email="second@example.com")
    await store_options(
        settings,
        first["id"],
        '{"big": 1180591620717411303424, "wide": 9007199254740993, "huge": 1e308, '
        '"ok": 7, "deep": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}",
    )

    # when the merchant lists the requests
    result = await gql(PAGE_WITH_OPTIONS, key=admin_key)

    # then the page answers, with those numbers as text and the depth cut
    assert result.status == 200 and result.errors == []
    page = result.data["backInStockNotificationRequests"]["nodes"]
    nodes = {node["id"]: node for node in page}
    options = nodes[first["id"]]["catalogReference"]["options"]
    # SQLite's reader (orjson) reads integers beyond 64 bits as floats: "1.18...e+21".
    assert isinstance(options["big"], str) and float(options["big"]) == 2**70
    assert options["wide"] == "9007199254740993"
    assert isinstance(options["huge"], str) and float(options["huge"]) == 1e308
    assert options["ok"] == 7
    depth, value = 0, options["deep"]
    while isinstance(value, dict):
        depth, value = depth + 1, value["a"]
    assert value is None and depth == 31  # 32 levels with the options object
    assert nodes[second["id"]]["catalogReference"]["options"] is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_stored_non_finite_numbers_read_as_null(
    gql, admin_key, collecting, settings
):
    # SQLite keeps any text; 1e400 reads back as infinity (PostgreSQL refuses it).
    created = await create(gql)
    await store_options(settings, created["id"], '{"inf": 1e400, "ok": 1}')

    result = await gql(GET_REQUEST, {"id": created["id"]}, key=admin_key)

    options = result.data["backInStockNotificationRequest"]["catalogReference"][
        "options"
    ]
    assert options == {"inf": None, "ok": 1}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_unencodable_response_is_a_json_error_not_plain_text(app):
    # What the JSON scalar lets through always encodes; the encoder's own fallback is
    # reached only by values that bypass it, as here.
    graphql_app = next(
        route for route in app.routes if route.path == "/graphql"
    ).endpoint

    body = graphql_app.encode_json({"data": {"n": 2**70}})

    assert orjson.loads(body)["errors"][0]["extensions"]["code"] == "INTERNAL"
