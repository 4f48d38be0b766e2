"""Collection states: start, stop, list, and the app allow-list."""

from __future__ import annotations

import pytest

from app.config import Settings
from tests.documents import SETTINGS, START_COLLECTING, STOP_COLLECTING


async def test_fresh_install_collects_for_no_app(gql):
    result = await gql(SETTINGS)

    assert result.data == {"backInStockSettings": {"collectionStates": []}}


async def test_start_collecting_returns_the_whole_settings(gql, admin_key):
    await gql(START_COLLECTING, {"appId": "a"}, key=admin_key)

    result = await gql(START_COLLECTING, {"appId": "b"}, key=admin_key)

    assert result.data["startCollectingRequests"]["collectionStates"] == [
        {"appId": "a", "collectingRequests": True},
        {"appId": "b", "collectingRequests": True},
    ]


async def test_start_is_idempotent(gql, admin_key):
    first = await gql(START_COLLECTING, {"appId": "a"}, key=admin_key)
    second = await gql(START_COLLECTING, {"appId": "a"}, key=admin_key)

    assert (
        second.data["startCollectingRequests"] == first.data["startCollectingRequests"]
    )


async def test_stop_turns_collection_off(gql, admin_key):
    await gql(START_COLLECTING, {"appId": "a"}, key=admin_key)

    result = await gql(STOP_COLLECTING, {"appId": "a"}, key=admin_key)

    assert result.data["stopCollectingRequests"]["collectionStates"] == [
        {"appId": "a", "collectingRequests": False}
    ]


async def test_stopping_an_app_never_started_adds_it_not_collecting(gql, admin_key):
    result = await gql(STOP_COLLECTING, {"appId": "new"}, key=admin_key)
    again = await gql(STOP_COLLECTING, {"appId": "new"}, key=admin_key)

    expected = [{"appId": "new", "collectingRequests": False}]
    assert result.data["stopCollectingRequests"]["collectionStates"] == expected
    assert again.data["stopCollectingRequests"]["collectionStates"] == expected


async def test_visitors_can_read_settings(gql, admin_key):
    await gql(START_COLLECTING, {"appId": "a"}, key=admin_key)

    result = await gql(SETTINGS)

    assert result.data["backInStockSettings"]["collectionStates"] == [
        {"appId": "a", "collectingRequests": True}
    ]


@pytest.mark.parametrize("app_id", ["", "x" * 65])
async def test_app_id_of_bad_length_is_invalid_argument(gql, admin_key, app_id):
    started = await gql(START_COLLECTING, {"appId": app_id}, key=admin_key)
    stopped = await gql(STOP_COLLECTING, {"appId": app_id}, key=admin_key)

    assert started.codes == ["INVALID_ARGUMENT"]
    assert stopped.codes == ["INVALID_ARGUMENT"]
    assert started.violations == ["appId"]


class TestAllowList:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"supported_app_ids": "stores, bookings"})

    async def test_starting_an_app_outside_the_allow_list_is_refused(
        self, gql, admin_key
    ):
        result = await gql(START_COLLECTING, {"appId": "other"}, key=admin_key)

        assert result.codes == ["NOT_SUPPORTED_APP_DEF_ID"]
        after = await gql(SETTINGS)
        assert after.data["backInStockSettings"]["collectionStates"] == []

    async def test_apps_in_the_allow_list_can_start(self, gql, admin_key):
        result = await gql(START_COLLECTING, {"appId": "bookings"}, key=admin_key)

        assert result.errors == []

    async def test_allow_list_does_not_gate_stopping(self, gql, admin_key):
        result = await gql(STOP_COLLECTING, {"appId": "other"}, key=admin_key)

        assert result.errors == []
