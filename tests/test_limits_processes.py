"""The limits hold across server processes: two `serve` processes on one PostgreSQL
database count one client's creates together, also when they arrive at once."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest

from tests.documents import CREATE_REQUEST, START_COLLECTING, new_request
from tests.servers import running_server

ATTEMPTS = 10


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_servers_share_one_limit_per_client(
    database_url: str, tmp_path: Path
):
    # given: two servers on one database, three creates a minute per client
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(
                running_server(database_url, tmp_path, RATE_LIMIT_PER_CLIENT="3/minute")
            )
            for _ in range(2)
        ]
        key = servers[0].mint_key()
        async with httpx.AsyncClient(timeout=30) as http:
            started = await http.post(
                servers[0].graphql,
                json={"query": START_COLLECTING, "variables": {"appId": "stores"}},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert "errors" not in started.json()

            # when: ten creates from one client at once, spread over both servers
            async def create(index: int) -> dict:
                variables = new_request(f"shopper{index}@example.com")
                response = await http.post(
                    servers[index % 2].graphql,
                    json={"query": CREATE_REQUEST, "variables": variables},
                )
                return {"body": response.json(), "headers": response.headers}

            outcomes = await asyncio.gather(*(create(i) for i in range(ATTEMPTS)))

    # then: three were stored, every other one was refused with a retry time
    created = [o for o in outcomes if not o["body"].get("errors")]
    refused = [o for o in outcomes if o["body"].get("errors")]
    assert len(created) == 3
    assert {
        error["extensions"]["code"] for o in refused for error in o["body"]["errors"]
    } == {"RATE_LIMITED"}
    assert all(int(o["headers"]["Retry-After"]) > 0 for o in refused)
