"""Helpers of the sign-up safety tests (limits, unsubscribe, confirmation, privacy)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette

from tests.documents import CREATE_REQUEST, QUERY_REQUESTS, new_request

# The start of a day: every window (minute, hour, day) starts here too.
MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)


def asgi_client(app: Starlette, client: tuple[str, int] = ("127.0.0.1", 123)) -> Any:
    """An HTTP client of the app whose connections come from `client`."""
    transport = httpx.ASGITransport(app=app, client=client)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def sign_up(
    http: httpx.AsyncClient,
    email: str,
    item_id: str = "shoe-1",
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A visitor's create, as the raw HTTP response (its headers are asserted on)."""
    return await http.post(
        "/graphql",
        json={
            "query": CREATE_REQUEST,
            "variables": new_request(email, item_id=item_id),
        },
        headers=headers or {},
    )


def codes(response: httpx.Response) -> list[str]:
    return [
        error.get("extensions", {}).get("code")
        for error in response.json().get("errors") or []
    ]


async def all_emails(gql: Any, key: str) -> list[str]:
    """The email of every stored request, sorted (at most 100)."""
    result = await gql(QUERY_REQUESTS, {"first": 100}, key=key)
    assert result.errors == [], result.errors
    edges = result.data["backInStockNotificationRequests"]["edges"]
    return sorted(edge["node"]["email"] for edge in edges)
