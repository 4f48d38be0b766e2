"""End to end as a new user: `python -m app serve` on a loopback port, a key from the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.documents import (
    CREATE_REQUEST,
    QUERY_REQUESTS,
    START_COLLECTING,
    new_request,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MAIL_URL": f"file://{tmp_path / 'outbox'}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            process.kill()
            pytest.fail(f"server did not start: {process.communicate()[0]}")
        yield base, env
    finally:
        process.terminate()
        process.wait(timeout=15)


def post(base: str, query: str, variables: dict, key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables},
        headers=headers,
        timeout=10,
    )
    return response.json()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_new_user_serves_creates_as_visitor_and_queries_with_a_key(server):
    base, env = server
    minted = subprocess.run(
        [sys.executable, "-m", "app", "create-api-key", "--name", "me"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    key = minted.stdout.strip().splitlines()[-1]

    started = post(base, START_COLLECTING, {"appId": "stores"}, key)
    created = post(base, CREATE_REQUEST, new_request())
    listed = post(base, QUERY_REQUESTS, {}, key)

    assert "errors" not in started and "errors" not in created, (started, created)
    assert listed["data"]["backInStockNotificationRequests"]["totalCount"] == 1
    graphiql = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"}, timeout=10)
    assert "graphiql" in graphiql.text.lower()
