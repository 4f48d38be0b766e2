"""The real server for end-to-end tests: `python -m app serve` on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli import run_cli
from tests.conftest import LIMITS_OFF_ENV


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Server:
    base: str
    env: dict[str, str]

    @property
    def graphql(self) -> str:
        return f"{self.base}/graphql"

    def mint_key(self, *permissions: str) -> str:
        """A key minted by the CLI on the server's database (all five permissions by
        default); the command runs in the test's process (tests/cli.py)."""
        arguments = [f"--permission={p}" for p in permissions]
        minted = run_cli("create-api-key", "--name", "test", *arguments, env=self.env)
        assert minted.returncode == 0, minted.stderr
        return minted.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def running_server(
    database_url: str,
    tmp_path: Path,
    *serve_args: str,
    **environment: str,
) -> Iterator[Server]:
    """`python -m app serve` until the block ends; its output is shown if it never starts."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MAIL_URL": f"file://{tmp_path / 'outbox'}",
        "DISPATCH_IN_SERVE": "false",
        **LIMITS_OFF_ENV,
        **environment,
    }
    # A file, not a pipe: nobody reads a pipe while the test runs, and a full one stalls.
    log = (tmp_path / f"serve-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), *serve_args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
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
            process.wait()
            pytest.fail(f"server did not start: {Path(log.name).read_text()}")
        yield Server(base, env)
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
