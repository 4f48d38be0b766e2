"""Creating notification requests: storage, de-duplication, the collection gate, input rules."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.documents import (
    CREATE_REQUEST,
    GET_REQUEST,
    MARK_AS_SENT,
    REPORT,
    STOP_COLLECTING,
    create,
    new_request,
    reference,
)


async def test_create_stores_a_received_request(gql, admin_key, collecting):
    created = await create(gql)

    assert uuid.UUID(created["id"])
    assert created["status"] == "RECEIVED"
    assert created["autoNotified"] is None
    assert created["email"] == "shopper@example.com"
    assert created["catalogReference"] == {
        "appId": "stores",
        "catalogItemId": "shoe-1",
        "options": None,
    }
    assert created["itemUrl"] == "https://shop.example/shoe-1"
    stored = await gql(GET_REQUEST, {"id": created["id"]}, key=admin_key)
    assert stored.data["backInStockNotificationRequest"] == created


async def test_ids_are_version_7_uuids_in_creation_order(gql, collecting, clock):
    first = await create(gql, email="first@example.com")
    clock.advance(ms=1)  # the order is by the millisecond
    second = await create(gql, email="second@example.com")

    assert uuid.UUID(first["id"]).version == 7
    assert uuid.UUID(first["id"]) < uuid.UUID(second["id"])


async def test_an_id_begins_with_its_creation_time(gql, collecting, clock):
    clock.advance(seconds=3600)

    created = await create(gql)

    milliseconds = uuid.UUID(created["id"]).int >> 80
    assert datetime.fromtimestamp(milliseconds / 1000, UTC) == clock.now
    assert datetime.fromisoformat(created["createdDate"]) == clock.now


async def test_create_dates_are_utc(gql, collecting):
    created = await create(gql)

    created_date = datetime.fromisoformat(created["createdDate"])
    assert created["createdDate"].endswith("+00:00")
    assert abs(datetime.now(UTC) - created_date) < timedelta(minutes=1)


async def test_create_keeps_item_details(gql, collecting):
    created = await create(gql)

    assert created["itemDetails"] == {
        "name": "Blue shoe",
        "price": "24.50",
        "image": "https://img.example/shoe.png",
    }


async def test_email_is_stored_trimmed_and_lower_cased(gql, collecting):
    created = await create(gql, email="  Shopper@Example.COM ")

    assert created["email"] == "shopper@example.com"


async def test_contact_id_is_stable_per_email(gql, collecting):
    first = await create(gql, email="a@example.com", item_id="one")
    second = await create(gql, email=" A@EXAMPLE.com", item_id="two")
    other = await create(gql, email="b@example.com", item_id="one")

    assert uuid.UUID(first["contactId"])
    assert first["contactId"] == second["contactId"]
    assert other["contactId"] != first["contactId"]


async def test_duplicate_create_returns_existing_request(gql, collecting):
    first = await create(gql)
    again = await create(gql, email="SHOPPER@example.com ")

    assert again["id"] == first["id"]


async def test_options_equal_as_json_values_are_the_same_reference(gql, collecting):
    first = await create(gql, options={"size": 42, "color": {"a": 1, "b": [1, 2]}})
    again = await create(gql, options={"color": {"b": [1, 2], "a": 1}, "size": 42.0})

    assert again["id"] == first["id"]


async def test_null_and_empty_options_are_the_same_reference(gql, collecting):
    first = await create(gql, options=None)
    again = await create(gql, options={})

    assert again["id"] == first["id"]


async def test_different_options_make_a_new_request(gql, collecting):
    first = await create(gql, options={"size": 42})
    other = await create(gql, options={"size": 43})

    assert other["id"] != first["id"]


async def test_duplicate_of_failed_or_processing_request_returns_it(
    gql, admin_key, collecting
):
    first = await create(gql)
    await gql(
        REPORT,
        {
            "itemDetails": {"name": "x", "price": "1"},
            "options": {"catalogReference": reference()},
        },
        key=admin_key,
    )

    again = await create(gql)

    assert again["id"] == first["id"]
    assert again["status"] == "PROCESSING"


async def test_after_notification_sent_the_shopper_can_ask_again(
    gql, admin_key, collecting
):
    first = await create(gql)
    await gql(MARK_AS_SENT, {"id": first["id"]}, key=admin_key)

    again = await create(gql)

    assert again["id"] != first["id"]
    assert again["status"] == "RECEIVED"


async def test_simultaneous_identical_creates_leave_one_request(
    gql, admin_key, collecting
):
    results = await asyncio.gather(
        *(gql(CREATE_REQUEST, new_request()) for _ in range(50))
    )

    ids = {
        result.data["createBackInStockNotificationRequest"]["id"] for result in results
    }
    assert [r.errors for r in results if r.errors] == []
    assert len(ids) == 1


async def test_create_for_app_not_collecting_is_refused(gql):
    result = await gql(CREATE_REQUEST, new_request())

    assert result.codes == ["REQUEST_COLLECTION_DISABLED"]
    assert result.data is None


async def test_create_after_stop_is_refused_even_for_an_existing_request(
    gql, admin_key, collecting
):
    await create(gql)
    await gql(STOP_COLLECTING, {"appId": "stores"}, key=admin_key)

    result = await gql(CREATE_REQUEST, new_request())

    assert result.codes == ["REQUEST_COLLECTION_DISABLED"]


async def test_invalid_create_is_invalid_argument_even_when_not_collecting(gql):
    result = await gql(CREATE_REQUEST, new_request(email="not-an-email"))

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["request.email"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "no-at-sign"}, "request.email"),
        ({"email": ("x" * 250) + "@example.com"}, "request.email"),
        ({"email": ""}, "request.email"),
        ({"item_id": ""}, "request.catalogReference.catalogItemId"),
        ({"item_id": "x" * 37}, "request.catalogReference.catalogItemId"),
        ({"app_id": ""}, "request.catalogReference.appId"),
        ({"app_id": "a" * 65}, "request.catalogReference.appId"),
        ({"item_url": "/relative/path"}, "request.itemUrl"),
        ({"item_url": "ftp://shop.example/x"}, "request.itemUrl"),
        ({"item_url": "https://shop.example/" + "x" * 2048}, "request.itemUrl"),
        ({"item_url": "javascript:alert(1)"}, "request.itemUrl"),
    ],
)
async def test_broken_request_rule_names_the_field(gql, collecting, change, field):
    result = await gql(CREATE_REQUEST, new_request(**change))

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == [field]


@pytest.mark.parametrize(
    "email",
    [
        "two..dots@example.com",
        ".lead@example.com",
        "a b@example.com",
        '"q"@example.com',
    ],
)
async def test_email_is_checked_whole_when_its_domain_was_seen_before(
    gql, collecting, email
):
    await create(gql, email="shopper@example.com")  # example.com is now known good

    result = await gql(CREATE_REQUEST, new_request(email=email))

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["request.email"]


@pytest.mark.parametrize(
    "email", ["shopper@localhost", "shopper@shop.test", "shopper@exa_mple.com"]
)
async def test_email_at_a_domain_refused_before_is_refused_again(
    gql, collecting, email
):
    first = await gql(CREATE_REQUEST, new_request(email=email))
    again = await gql(
        CREATE_REQUEST, new_request(email=email.replace("shopper", "other"))
    )

    assert first.violations == again.violations == ["request.email"]
    assert descriptions(first) == descriptions(again)


def descriptions(result):
    return [
        violation["description"]
        for error in result.errors
        for violation in error["extensions"]["fieldViolations"]
    ]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"name": "", "price": "1"}, "itemDetails.name"),
        ({"name": "x" * 201, "price": "1"}, "itemDetails.name"),
        ({"name": "Shoe", "price": "-1"}, "itemDetails.price"),
        ({"name": "Shoe", "price": "abc"}, "itemDetails.price"),
        ({"name": "Shoe", "price": "1e5"}, "itemDetails.price"),
        ({"name": "Shoe", "price": ""}, "itemDetails.price"),
    ],
)
async def test_broken_item_details_rule_names_the_field(gql, collecting, item, field):
    variables = new_request()
    variables["itemDetails"] = item

    result = await gql(CREATE_REQUEST, variables)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == [field]


async def test_every_broken_rule_is_listed(gql, collecting):
    variables = new_request(email="bad", item_id="", item_url="nope")
    variables["itemDetails"] = {"name": "", "price": "x"}

    result = await gql(CREATE_REQUEST, variables)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert sorted(result.violations) == [
        "itemDetails.name",
        "itemDetails.price",
        "request.catalogReference.catalogItemId",
        "request.email",
        "request.itemUrl",
    ]


@pytest.mark.parametrize("options", [[1, 2], "text", 5, True, {"big": "x" * 5000}])
async def test_options_not_a_small_json_object_are_refused(gql, collecting, options):
    result = await gql(CREATE_REQUEST, new_request(options=options))

    assert result.codes == ["INVALID_CATALOG_REFERENCE_OPTIONS"]


@pytest.mark.parametrize("image", ["not a url", "/img.png", "data:image/png;base64,xx"])
async def test_image_not_an_http_url_is_refused(gql, collecting, image):
    variables = new_request()
    variables["itemDetails"]["image"] = image

    result = await gql(CREATE_REQUEST, variables)

    assert result.codes == ["INVALID_ITEM_IMAGE_URL"]


async def test_refused_create_stores_nothing(gql, admin_key, collecting):
    await gql(CREATE_REQUEST, new_request(email="bad"))
    created = await create(gql)

    again = await gql(CREATE_REQUEST, new_request(email="bad"))

    assert again.codes == ["INVALID_ARGUMENT"]
    stored = await gql(GET_REQUEST, {"id": created["id"]}, key=admin_key)
    assert stored.data["backInStockNotificationRequest"]["status"] == "RECEIVED"
