"""Text with NUL (U+0000), which PostgreSQL cannot store, is INVALID_ARGUMENT everywhere.

SQLite would store it; one rule on both databases refuses it before any state is read.
"""

from __future__ import annotations

import copy

import pytest

from tests.documents import (
    COUNT_BY_REFERENCES,
    CREATE_REQUEST,
    ITEM,
    QUERY_REQUESTS,
    REPORT,
    START_COLLECTING,
    STOP_COLLECTING,
    new_request,
    reference,
)

NUL = "a\x00b"


def _create_with(path: tuple[str, ...], value: object) -> dict:
    variables = copy.deepcopy(new_request())
    target = variables
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return variables


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (
            ("request", "catalogReference", "catalogItemId"),
            "request.catalogReference.catalogItemId",
        ),
        (("request", "catalogReference", "appId"), "request.catalogReference.appId"),
        (("request", "email"), "request.email"),
        (("request", "itemUrl"), "request.itemUrl"),
        (("itemDetails", "name"), "itemDetails.name"),
        (("itemDetails", "price"), "itemDetails.price"),
        (("itemDetails", "image"), "itemDetails.image"),
    ],
)
async def test_create_refuses_nul_in_text(gql, collecting, path, field):
    result = await gql(CREATE_REQUEST, _create_with(path, NUL))

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == [field]


@pytest.mark.parametrize(
    "options", [{NUL: 1}, {"size": NUL}, {"a": [{"b": NUL}]}, {"a": {NUL: None}}]
)
async def test_create_refuses_nul_in_options_keys_and_values(gql, collecting, options):
    result = await gql(CREATE_REQUEST, new_request(options=options))

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["request.catalogReference.options"]


async def test_nul_in_text_is_refused_for_an_app_that_is_not_collecting(gql):
    result = await gql(CREATE_REQUEST, new_request(item_id=NUL))

    assert result.codes == ["INVALID_ARGUMENT"]


async def test_nothing_is_stored_when_text_holds_nul(gql, admin_key, collecting):
    await gql(CREATE_REQUEST, new_request(item_id=NUL))

    page = await gql(QUERY_REQUESTS, key=admin_key)

    assert page.data["backInStockNotificationRequests"]["totalCount"] == 0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (
            {"catalogReference": reference(item_id=NUL)},
            "options.catalogReference.catalogItemId",
        ),
        ({"catalogReference": reference(app_id=NUL)}, "options.catalogReference.appId"),
        (
            {"catalogReference": reference(options={"k": NUL})},
            "options.catalogReference.options",
        ),
        (
            {
                "catalogReference": reference(),
                "extraAutomationTemplateParameters": {"item.name": NUL},
            },
            "options.extraAutomationTemplateParameters",
        ),
        (
            {
                "catalogReference": reference(),
                "extraAutomationTemplateParameters": {NUL: "x"},
            },
            "options.extraAutomationTemplateParameters",
        ),
    ],
)
async def test_report_refuses_nul_in_its_options(gql, admin_key, options, field):
    result = await gql(REPORT, {"itemDetails": ITEM, "options": options}, key=admin_key)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == [field]


@pytest.mark.parametrize("key", ["name", "price", "image"])
async def test_report_refuses_nul_in_item_details(gql, admin_key, key):
    item = {**ITEM, key: NUL}

    result = await gql(
        REPORT,
        {"itemDetails": item, "options": {"catalogReference": reference()}},
        key=admin_key,
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == [f"itemDetails.{key}"]


@pytest.mark.parametrize("document", [START_COLLECTING, STOP_COLLECTING])
async def test_collecting_refuses_nul_in_the_app_id(gql, admin_key, document):
    result = await gql(document, {"appId": NUL}, key=admin_key)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["appId"]


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        (reference(item_id=NUL), "catalogReferences[0].catalogItemId"),
        (reference(app_id=NUL), "catalogReferences[0].appId"),
        (reference(options={NUL: 1}), "catalogReferences[0].options"),
    ],
)
async def test_count_by_references_refuses_nul(gql, admin_key, ref, field):
    result = await gql(COUNT_BY_REFERENCES, {"refs": [ref]}, key=admin_key)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == [field]


async def test_a_price_with_a_trailing_newline_is_refused(gql, collecting):
    result = await gql(
        CREATE_REQUEST, _create_with(("itemDetails", "price"), "24.50\n")
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["itemDetails.price"]
