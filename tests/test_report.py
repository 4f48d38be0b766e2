"""Reporting items back in stock: selection, validation, and queueing exactly once."""

from __future__ import annotations

import uuid

import pytest

from tests.documents import (
    GET_REQUEST,
    MARK_AS_SENT,
    REPORT,
    STOP_COLLECTING,
    create,
    reference,
)

ITEM = {"name": "Blue shoe", "price": "24.50"}


async def report(gql, key, **options):
    return await gql(REPORT, {"itemDetails": ITEM, "options": options}, key=key)


async def status_of(gql, key, request_id):
    result = await gql(GET_REQUEST, {"id": request_id}, key=key)
    return result.data["backInStockNotificationRequest"]["status"]


async def test_report_by_reference_queues_every_waiting_request(
    gql, admin_key, collecting
):
    first = await create(gql, email="a@x.com")
    second = await create(gql, email="b@x.com")
    other_item = await create(gql, email="a@x.com", item_id="other")

    result = await report(gql, admin_key, catalogReference=reference())

    assert result.data == {"reportItemsBackInStock": {"queuedCount": 2}}
    assert await status_of(gql, admin_key, first["id"]) == "PROCESSING"
    assert await status_of(gql, admin_key, second["id"]) == "PROCESSING"
    assert await status_of(gql, admin_key, other_item["id"]) == "RECEIVED"


async def test_report_by_reference_matches_options_exactly(gql, admin_key, collecting):
    await create(gql, options={"size": 1})
    await create(gql, email="b@x.com", options={"size": 2})

    result = await report(
        gql, admin_key, catalogReference=reference(options={"size": 1.0})
    )

    assert result.data == {"reportItemsBackInStock": {"queuedCount": 1}}


async def test_report_by_ids_queues_those_and_skips_unknown_ids(
    gql, admin_key, collecting
):
    first = await create(gql, email="a@x.com")
    second = await create(gql, email="b@x.com")

    result = await report(
        gql, admin_key, requestIds=[first["id"].upper(), str(uuid.uuid4())]
    )

    assert result.data == {"reportItemsBackInStock": {"queuedCount": 1}}
    assert await status_of(gql, admin_key, first["id"]) == "PROCESSING"
    assert await status_of(gql, admin_key, second["id"]) == "RECEIVED"


async def test_repeating_a_report_queues_nothing_twice(gql, admin_key, collecting):
    await create(gql)
    await report(gql, admin_key, catalogReference=reference())

    again = await report(gql, admin_key, catalogReference=reference())

    assert again.data == {"reportItemsBackInStock": {"queuedCount": 0}}


async def test_sent_requests_are_not_queued(gql, admin_key, collecting):
    sent = await create(gql)
    await gql(MARK_AS_SENT, {"id": sent["id"]}, key=admin_key)

    result = await report(gql, admin_key, requestIds=[sent["id"]])

    assert result.data == {"reportItemsBackInStock": {"queuedCount": 0}}
    assert await status_of(gql, admin_key, sent["id"]) == "NOTIFICATION_SENT"


async def test_report_works_after_collection_stopped(gql, admin_key, collecting):
    await create(gql)
    await gql(STOP_COLLECTING, {"appId": "stores"}, key=admin_key)

    result = await report(gql, admin_key, catalogReference=reference())

    assert result.data == {"reportItemsBackInStock": {"queuedCount": 1}}


async def test_report_with_both_selectors_is_refused(gql, admin_key, collecting):
    created = await create(gql)

    result = await report(
        gql, admin_key, catalogReference=reference(), requestIds=[created["id"]]
    )

    assert result.codes == ["REQUEST_CONTAINS_BOTH_CATALOG_REFERENCE_AND_REQUEST_IDS"]
    assert await status_of(gql, admin_key, created["id"]) == "RECEIVED"


async def test_report_with_no_selector_is_invalid_argument(gql, admin_key):
    without_options = await gql(REPORT, {"itemDetails": ITEM}, key=admin_key)
    empty_options = await report(gql, admin_key)

    assert without_options.codes == ["INVALID_ARGUMENT"]
    assert empty_options.codes == ["INVALID_ARGUMENT"]
    assert empty_options.violations == ["options"]


async def test_report_with_empty_id_list_is_invalid_argument(gql, admin_key):
    result = await report(gql, admin_key, requestIds=[])

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["options.requestIds"]


async def test_report_with_more_than_a_thousand_ids_is_invalid_argument(gql, admin_key):
    result = await report(
        gql, admin_key, requestIds=[str(uuid.uuid4()) for _ in range(1001)]
    )

    assert result.codes == ["INVALID_ARGUMENT"]


async def test_report_with_one_malformed_id_is_refused_whole(
    gql, admin_key, collecting
):
    created = await create(gql)

    result = await report(gql, admin_key, requestIds=[created["id"], "bad"])

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["options.requestIds[1]"]
    assert await status_of(gql, admin_key, created["id"]) == "RECEIVED"


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"name": "", "price": "1"}, "itemDetails.name"),
        ({"name": "x", "price": "-2"}, "itemDetails.price"),
    ],
)
async def test_report_with_bad_item_details_is_invalid_argument(
    gql, admin_key, item, field
):
    result = await gql(
        REPORT,
        {"itemDetails": item, "options": {"catalogReference": reference()}},
        key=admin_key,
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == [field]


async def test_report_with_bad_image_is_invalid_item_image_url(gql, admin_key):
    result = await gql(
        REPORT,
        {
            "itemDetails": {**ITEM, "image": "nope"},
            "options": {"catalogReference": reference()},
        },
        key=admin_key,
    )

    assert result.codes == ["INVALID_ITEM_IMAGE_URL"]


async def test_report_with_bad_reference_options_is_refused(gql, admin_key):
    result = await report(gql, admin_key, catalogReference=reference(options=[1]))

    assert result.codes == ["INVALID_CATALOG_REFERENCE_OPTIONS"]


@pytest.mark.parametrize("parameters", [[1], "x", {"nested": {"a": 1}}])
async def test_template_parameters_must_be_a_flat_object(gql, admin_key, parameters):
    result = await report(
        gql,
        admin_key,
        catalogReference=reference(),
        extraAutomationTemplateParameters=parameters,
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["options.extraAutomationTemplateParameters"]
