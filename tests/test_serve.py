"""End to end as a new user: `python -m app serve` on a loopback port, a key from the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.documents import (
    CREATE_REQUEST,
    QUERY_REQUESTS,
    START_COLLECTING,
    new_request,
)

# What a new user has not set: the server's defaults apply (./backinstock.db, ./outbox).
UNSET = {"DATABASE_URL", "MAIL_URL"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    pytest.fail(f"server did not start: {process.communicate()[0]}")


@pytest.fixture
def new_user(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An empty working directory, and an environment with none of the service's settings."""
    env = {name: value for name, value in os.environ.items() if name not in UNSET}
    return tmp_path, env


@pytest.fixture
def server(
    new_user: tuple[Path, dict[str, str]],
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m app serve` started in the new user's directory (it may still be starting)."""
    directory, env = new_user
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=15)


def post(
    base: str, query: str, variables: dict[str, Any], key: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables},
        headers=headers,
        timeout=10,
    )
    body: dict[str, Any] = response.json()
    return body


def test_a_new_user_serves_creates_as_visitor_and_queries_with_a_key(
    new_user: tuple[Path, dict[str, str]], server: tuple[str, subprocess.Popen[str]]
):
    # given: a key minted (as the README's first session does) while the server starts
    directory, env = new_user
    base, process = server
    minted = subprocess.run(
        [sys.executable, "-m", "app", "create-api-key", "--name", "me"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert minted.returncode == 0, minted.stderr
    key = minted.stdout.strip().splitlines()[-1]
    wait_until_up(base, process)

    # when
    started = post(base, START_COLLECTING, {"appId": "stores"}, key)
    created = post(base, CREATE_REQUEST, new_request())
    listed = post(base, QUERY_REQUESTS, {}, key)

    # then
    assert "errors" not in started, started
    assert "errors" not in created, created
    assert listed["data"]["backInStockNotificationRequests"]["totalCount"] == 1
    assert (directory / "backinstock.db").exists()
    graphiql = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"}, timeout=10)
    assert "graphiql" in graphiql.text.lower()
