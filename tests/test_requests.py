"""Get, delete and mark-as-sent of single notification requests."""

from __future__ import annotations

import uuid

import pytest

from tests.documents import (
    DELETE_REQUEST,
    GET_REQUEST,
    MARK_AS_SENT,
    RELAY_NODE,
    REPORT,
    create,
    start_collecting,
)


@pytest.fixture
async def created(gql, admin_key):
    await start_collecting(gql, admin_key)
    return await create(gql)


async def test_get_returns_the_request(gql, admin_key, created):
    result = await gql(GET_REQUEST, {"id": created["id"]}, key=admin_key)

    assert result.data["backInStockNotificationRequest"]["id"] == created["id"]


async def test_get_matches_id_case_insensitively(gql, admin_key, created):
    result = await gql(GET_REQUEST, {"id": created["id"].upper()}, key=admin_key)

    assert result.data["backInStockNotificationRequest"]["id"] == created["id"]


async def test_get_of_unknown_id_is_null(gql, admin_key, created):
    result = await gql(GET_REQUEST, {"id": str(uuid.uuid4())}, key=admin_key)

    assert result.errors == []
    assert result.data == {"backInStockNotificationRequest": None}


@pytest.mark.parametrize("document", [GET_REQUEST, DELETE_REQUEST, MARK_AS_SENT])
# A fixed one digit too long: parallel workers (pytest-xdist) must collect the same ids.
@pytest.mark.parametrize(
    "bad_id", ["nope", "", "1234", "9f1c2e4a-5b6d-4e7f-8a9b-0c1d2e3f4a5b0"]
)
async def test_malformed_id_is_invalid_argument(gql, admin_key, document, bad_id):
    result = await gql(document, {"id": bad_id}, key=admin_key)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["id"]


async def test_delete_removes_the_request_and_returns_its_id(gql, admin_key, created):
    result = await gql(DELETE_REQUEST, {"id": created["id"].upper()}, key=admin_key)

    assert result.data == {"deleteBackInStockNotificationRequest": created["id"]}
    after = await gql(GET_REQUEST, {"id": created["id"]}, key=admin_key)
    assert after.data == {"backInStockNotificationRequest": None}


async def test_delete_of_unknown_id_is_not_found(gql, admin_key, created):
    result = await gql(DELETE_REQUEST, {"id": str(uuid.uuid4())}, key=admin_key)

    assert result.codes == ["BACK_IN_STOCK_NOTIFICATION_REQUEST_NOT_FOUND"]


async def test_delete_of_a_queued_request_drops_its_notification(
    gql, admin_key, created
):
    await gql(
        REPORT,
        {
            "itemDetails": {"name": "x", "price": "1"},
            "options": {"requestIds": [created["id"]]},
        },
        key=admin_key,
    )

    result = await gql(DELETE_REQUEST, {"id": created["id"]}, key=admin_key)

    assert result.errors == []


async def test_mark_as_sent_sets_status_and_auto_notified_false(
    gql, admin_key, created
):
    result = await gql(MARK_AS_SENT, {"id": created["id"]}, key=admin_key)

    assert result.data["markAsNotificationSent"] == {
        "id": created["id"],
        "status": "NOTIFICATION_SENT",
        "autoNotified": False,
    }


async def test_mark_as_sent_on_a_sent_request_changes_nothing(gql, admin_key, created):
    await gql(MARK_AS_SENT, {"id": created["id"]}, key=admin_key)
    before = await gql(GET_REQUEST, {"id": created["id"]}, key=admin_key)

    again = await gql(MARK_AS_SENT, {"id": created["id"]}, key=admin_key)

    after = await gql(GET_REQUEST, {"id": created["id"]}, key=admin_key)
    assert again.errors == []
    assert after.data == before.data


async def test_mark_as_sent_of_unknown_id_is_not_found(gql, admin_key, created):
    result = await gql(MARK_AS_SENT, {"id": str(uuid.uuid4())}, key=admin_key)

    assert result.codes == ["BACK_IN_STOCK_NOTIFICATION_REQUEST_NOT_FOUND"]


async def test_marking_a_queued_request_sent_keeps_it_from_a_second_email(
    gql, admin_key, created
):
    report = {
        "itemDetails": {"name": "x", "price": "1"},
        "options": {"requestIds": [created["id"]]},
    }
    await gql(REPORT, report, key=admin_key)

    marked = await gql(MARK_AS_SENT, {"id": created["id"]}, key=admin_key)
    again = await gql(REPORT, report, key=admin_key)

    assert marked.data["markAsNotificationSent"]["status"] == "NOTIFICATION_SENT"
    assert again.data == {"reportItemsBackInStock": {"queuedCount": 0}}


async def test_relay_node_refetches_a_request_by_id(gql, admin_key, created):
    result = await gql(RELAY_NODE, {"id": created["id"]}, key=admin_key)

    assert result.data["node"] == {
        "id": created["id"],
        "email": created["email"],
        "status": "RECEIVED",
    }


async def test_relay_node_of_unknown_id_is_null(gql, admin_key, created):
    result = await gql(RELAY_NODE, {"id": str(uuid.uuid4())}, key=admin_key)

    assert result.data == {"node": None}


async def test_relay_node_needs_the_read_permission(gql, created):
    result = await gql(RELAY_NODE, {"id": created["id"]})

    assert result.codes == ["FORBIDDEN"]
