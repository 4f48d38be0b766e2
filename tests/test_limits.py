"""Limits on visitors' creates: per client, per email address, and the open-request cap.

Time is the app's injected clock: windows are moved through, never slept through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.config import Settings
from tests.conftest import GraphQLClient, ManualClock
from tests.documents import SETTINGS
from tests.signup import MIDNIGHT, all_emails, asgi_client, codes, sign_up


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MIDNIGHT)


@pytest.fixture
def limits() -> dict[str, Any]:
    """The limits under test (tests override this fixture's values by parametrising)."""
    return {"rate_limit_per_client": "3/minute"}


@pytest.fixture
def settings(settings: Settings, limits: dict[str, Any]) -> Settings:
    return settings.model_copy(update=limits)


@pytest.fixture
async def visitor(
    app: Starlette, collecting: None, clock: ManualClock
) -> AsyncIterator[httpx.AsyncClient]:
    """A visitor's HTTP client; the app runs on `clock` (windows start at MIDNIGHT)."""
    async with asgi_client(app) as client:
        yield client


def retry_after(response: httpx.Response) -> int:
    (error,) = response.json()["errors"]
    return error["extensions"]["retryAfterSeconds"]


async def test_fourth_create_of_a_client_in_a_minute_is_rate_limited(
    visitor: httpx.AsyncClient,
):
    for index in range(3):
        assert codes(await sign_up(visitor, f"shopper{index}@example.com")) == []

    refused = await sign_up(visitor, "shopper3@example.com")

    assert codes(refused) == ["RATE_LIMITED"]
    assert refused.status_code == 200
    assert refused.json()["data"] is None
    # Three hits at the window's start: one more fits once a third of them slid out.
    assert retry_after(refused) == 80
    assert refused.headers["Retry-After"] == "80"


async def test_a_create_fits_again_once_the_retry_time_has_passed(
    visitor: httpx.AsyncClient, clock: ManualClock
):
    # given
    for index in range(3):
        await sign_up(visitor, f"shopper{index}@example.com")
    wait = retry_after(await sign_up(visitor, "late@example.com"))
    # when / then
    clock.advance(seconds=wait - 1)
    assert codes(await sign_up(visitor, "late@example.com")) == ["RATE_LIMITED"]
    clock.advance(seconds=1)
    assert codes(await sign_up(visitor, "late@example.com")) == []


async def test_keyed_create_is_not_limited(visitor: httpx.AsyncClient, admin_key: str):
    for index in range(3):
        await sign_up(visitor, f"shopper{index}@example.com")
    keyed = {"Authorization": f"Bearer {admin_key}"}

    created = [
        await sign_up(visitor, f"k{i}@example.com", headers=keyed) for i in range(5)
    ]

    assert [codes(response) for response in created] == [[]] * 5
    assert "Retry-After" not in created[-1].headers


async def test_refused_create_stores_nothing(
    visitor: httpx.AsyncClient, gql: GraphQLClient, admin_key: str
):
    for index in range(3):
        await sign_up(visitor, f"shopper{index}@example.com")

    await sign_up(visitor, "refused@example.com")

    assert await all_emails(gql, admin_key) == [
        "shopper0@example.com",
        "shopper1@example.com",
        "shopper2@example.com",
    ]


async def test_clients_are_limited_separately(app: Starlette, collecting: None):
    async with asgi_client(app, ("192.0.2.1", 5000)) as first:
        for index in range(3):
            await sign_up(first, f"first{index}@example.com")
        assert codes(await sign_up(first, "first3@example.com")) == ["RATE_LIMITED"]
    async with asgi_client(app, ("192.0.2.2", 5000)) as second:
        assert codes(await sign_up(second, "second@example.com")) == []


async def test_ipv6_clients_of_one_64_network_share_a_limit(
    app: Starlette, collecting: None
):
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"):
        async with asgi_client(app, (host, 5000)) as client:
            assert codes(await sign_up(client, f"{host[-1]}@example.com")) == []
    async with asgi_client(app, ("2001:db8:1:2::99", 5000)) as same_network:
        assert codes(await sign_up(same_network, "x@example.com")) == ["RATE_LIMITED"]
    async with asgi_client(app, ("2001:db8:1:3::1", 5000)) as other_network:
        assert codes(await sign_up(other_network, "y@example.com")) == []


async def test_forwarded_for_is_ignored_without_trusted_proxies(
    visitor: httpx.AsyncClient,
):
    for index in range(3):
        forwarded = {"X-Forwarded-For": f"198.51.100.{index}"}
        await sign_up(visitor, f"shopper{index}@example.com", headers=forwarded)

    refused = await sign_up(
        visitor, "next@example.com", headers={"X-Forwarded-For": "198.51.100.99"}
    )

    assert codes(refused) == ["RATE_LIMITED"]


@pytest.mark.parametrize(
    "limits",
    [{"rate_limit_per_client": "3/minute", "trusted_proxies": "10.0.0.0/8,127.0.0.1"}],
)
async def test_behind_trusted_proxies_the_forwarded_client_is_limited(
    visitor: httpx.AsyncClient,
):
    # The client wrote the first entry itself; each trusted proxy appended one.
    chain = "203.0.113.{forged}, 198.51.100.7, 10.1.2.3"
    for index in range(3):
        forwarded = {"X-Forwarded-For": chain.format(forged=index)}
        assert (
            codes(await sign_up(visitor, f"s{index}@example.com", headers=forwarded))
            == []
        )

    same_client = await sign_up(
        visitor, "s3@example.com", headers={"X-Forwarded-For": chain.format(forged=9)}
    )
    other_client = await sign_up(
        visitor, "s4@example.com", headers={"X-Forwarded-For": "198.51.100.8, 10.1.2.3"}
    )

    assert codes(same_client) == ["RATE_LIMITED"]
    assert codes(other_client) == []


@pytest.mark.parametrize("limits", [{"rate_limit_per_email": "2/minute"}])
async def test_third_sign_up_of_one_address_is_refused_and_another_address_is_not(
    visitor: httpx.AsyncClient,
):
    assert codes(await sign_up(visitor, "ann@example.com", "shoe-1")) == []
    assert codes(await sign_up(visitor, " Ann@Example.com", "shoe-2")) == []

    third = await sign_up(visitor, "ann@example.com", "shoe-3")
    other = await sign_up(visitor, "bob@example.com", "shoe-3")

    assert codes(third) == ["RATE_LIMITED"]
    assert retry_after(third) > 0
    assert codes(other) == []


@pytest.mark.parametrize("limits", [{"rate_limit_per_email": "2/minute"}])
async def test_refusal_does_not_tell_whether_the_address_already_waits(
    visitor: httpx.AsyncClient,
):
    # given: one address waits for shoe-1 (asked twice), another for nothing of it
    await sign_up(visitor, "waits@example.com", "shoe-1")
    await sign_up(visitor, "waits@example.com", "shoe-1")
    await sign_up(visitor, "other@example.com", "shoe-8")
    await sign_up(visitor, "other@example.com", "shoe-9")
    # when
    waiting = await sign_up(visitor, "waits@example.com", "shoe-1")
    not_waiting = await sign_up(visitor, "other@example.com", "shoe-1")
    # then
    assert waiting.json() == not_waiting.json()
    assert codes(waiting) == ["RATE_LIMITED"]


@pytest.mark.parametrize(
    "limits", [{"rate_limit_per_client": "", "max_open_requests_per_email": 2}]
)
async def test_open_requests_of_an_address_are_capped_for_visitors(
    visitor: httpx.AsyncClient, admin_key: str
):
    await sign_up(visitor, "ann@example.com", "shoe-1")
    await sign_up(visitor, "ann@example.com", "shoe-2")

    capped = await sign_up(visitor, "ann@example.com", "shoe-3")
    keyed = await sign_up(
        visitor,
        "ann@example.com",
        "shoe-3",
        headers={"Authorization": f"Bearer {admin_key}"},
    )

    assert codes(capped) == ["RATE_LIMITED"]
    assert capped.headers["Retry-After"] == "3600"
    assert codes(keyed) == []


@pytest.mark.parametrize(
    "limits", [{"rate_limit_per_client": "", "rate_limit_per_email": ""}]
)
async def test_empty_limits_turn_the_limits_off(visitor: httpx.AsyncClient):
    responses = [
        await sign_up(visitor, "ann@example.com", f"shoe-{i}") for i in range(12)
    ]

    assert [codes(response) for response in responses] == [[]] * 12


def test_limits_are_on_by_default():
    settings = Settings(_env_file=None)

    assert (settings.client_rate, settings.email_rate) == ((10, 60), (5, 3600))
    assert settings.max_open_requests_per_email == 50


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("rate_limit_per_client", "10/fortnight"),
        ("rate_limit_per_email", "0/hour"),
        ("trusted_proxies", "10.0.0.0/8, proxy.internal"),
    ],
)
def test_a_malformed_limit_setting_stops_the_start(name: str, value: str):
    with pytest.raises(ValueError, match=name.upper()):
        Settings(_env_file=None, **{name: value})


async def test_a_visitor_over_the_limit_still_reads_settings(
    visitor: httpx.AsyncClient,
):
    for index in range(4):
        await sign_up(visitor, f"shopper{index}@example.com")

    result = await GraphQLClient(visitor)(SETTINGS)

    assert result.errors == []
    assert (
        result.data["backInStockSettings"]["collectionStates"][0]["appId"] == "stores"
    )
