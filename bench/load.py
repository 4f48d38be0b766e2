"""Servers under test and the load generators that drive them (loopback only, bounded).

`Server` starts one uvicorn worker pinned to one core, on uvloop and httptools (the stack
`python -m app serve` runs on by default), and samples its RSS; `drive` sends a closed-loop
load of GraphQL POSTs for a bounded time with wrk (pinned to the other core) or, when wrk
is missing, with a small asyncio HTTP/1.1 client, over one server or alternately several.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

HOST = "127.0.0.1"  # the only address the bench ever sends to
LUA_SCRIPT = Path(__file__).with_name("lua") / "graphql.lua"
MAX_DURATION_S = 120.0


def cores() -> tuple[str | None, str | None]:
    """(server core, load core) for taskset, or (None, None) where pinning is impossible."""
    if not shutil.which("taskset"):
        return None, None
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, None
    return str(available[0]), str(available[1])


def _pinned(command: list[str], core: str | None) -> list[str]:
    return ["taskset", "-c", core, *command] if core is not None else command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One uvicorn worker serving `factory` on 127.0.0.1, pinned to `core`.

    With `serve`, the service as its users run it (`python -m app serve`, no access log);
    `factory` then only names it.
    """

    factory: str
    env: dict[str, str] = field(default_factory=dict)
    core: str | None = None
    serve: bool = False
    http: str = "httptools"
    loop: str = "uvloop"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _peak_rss: int = 0
    _sampling: bool = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/graphql"

    def start(self, log_dir: Path) -> None:
        self.log_path = (
            log_dir / f"server-{self.factory.rsplit(':', 1)[-1]}-{self.port}.log"
        )
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                _pinned(self.command(), self.core),
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server {self.factory} exited: {self.log_path.read_text()[-2000:]}"
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server {self.factory} did not start within 60 s")

    def command(self) -> list[str]:
        stack = ["--http", self.http, "--loop", self.loop, "--no-access-log"]
        address = ["--host", HOST, "--port", str(self.port)]
        if self.serve:
            return [sys.executable, "-m", "app", "serve", *address, *stack]
        return [
            *(sys.executable, "-m", "uvicorn", "--factory", self.factory),
            *(*address, *stack, "--workers", "1", "--log-level", "warning"),
        ]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_mb(self) -> float:
        return psutil.Process(self.pid).memory_info().rss / 2**20

    def peak_rss_mb(self) -> float:
        """The kernel's high-water mark of resident memory over the process's life."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else self.rss_mb()

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return times.user + times.system

    def wait_idle(self, max_seconds: float = 180.0) -> float:
        """Wait until the server stops using CPU (work left over from the last case)."""
        started = time.monotonic()
        last = self.cpu_seconds()
        while time.monotonic() - started < max_seconds:
            time.sleep(0.5)
            now = self.cpu_seconds()
            if now - last < 0.02:
                break
            last = now
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class HasRss(Protocol):
    def rss_mb(self) -> float: ...


class RssSampler:
    """Samples a server's RSS every `interval` seconds while a block runs."""

    def __init__(self, server: HasRss, interval: float = 0.1) -> None:
        self.server = server
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self.server.rss_mb())
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(psutil.Error):
            self.samples.append(self.server.rss_mb())

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    first_error: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def drive(
    urls: str | list[str],
    bodies: list[str],
    *,
    connections: int,
    seconds: float,
    key: str | None,
    work_dir: Path,
    core: str | None,
    use_wrk: bool = True,
) -> LoadResult:
    """A closed-loop load of `connections` keep-alive connections for `seconds`.

    Over several servers (same path), connection i goes to server i modulo their number.
    """
    urls = [urls] if isinstance(urls, str) else urls
    for url in urls:
        assert url.startswith(f"http://{HOST}:"), "the bench only targets 127.0.0.1"
    seconds = min(seconds, MAX_DURATION_S)
    if use_wrk and shutil.which("wrk"):
        return _drive_wrk(urls, bodies, connections, seconds, key, work_dir, core)
    return asyncio.run(_drive_python(urls, bodies, connections, seconds, key))


def _port(url: str) -> str:
    return url.removeprefix("http://").split("/", 1)[0].rsplit(":", 1)[1]


def _drive_wrk(
    urls: list[str],
    bodies: list[str],
    connections: int,
    seconds: float,
    key: str | None,
    work_dir: Path,
    core: str | None,
) -> LoadResult:
    bodies_file = work_dir / f"bodies-{time.monotonic_ns()}.jsonl"
    bodies_file.write_text("\n".join(bodies) + "\n")
    # One wrk thread per server (bench/lua/graphql.lua points thread i at BENCH_PORTS[i]);
    # a single connection goes to the first.
    command = [
        "wrk",
        f"-t{min(len(urls), connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(LUA_SCRIPT),
        urls[0],
        "--",
        str(bodies_file),
        key or "",
    ]
    ports = ",".join(_port(url) for url in urls)
    finished = subprocess.run(
        _pinned(command, core),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        env={**os.environ, "BENCH_PORTS": ports},
    )
    bodies_file.unlink(missing_ok=True)
    line = next(
        (line for line in finished.stdout.splitlines() if line.startswith("RESULT ")),
        None,
    )
    if line is None:
        raise RuntimeError(f"wrk failed: {finished.stdout}\n{finished.stderr}")
    raw = json.loads(line.removeprefix("RESULT "))
    return LoadResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=raw["socket_errors"]
        + raw["timeouts"]
        + raw["http_errors"]
        + raw["graphql_errors"],
        first_error=raw["first_error"],
    )


async def _drive_python(
    urls: list[str],
    bodies: list[str],
    connections: int,
    seconds: float,
    key: str | None,
) -> LoadResult:
    """The fallback generator: raw HTTP/1.1 keep-alive over asyncio streams."""
    path = "/" + urls[0].removeprefix("http://").split("/", 1)[1]
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    latencies: list[float] = []
    errors = 0
    first_error = ""
    deadline = time.perf_counter() + seconds
    counter = 0

    async def connection(index: int) -> None:
        nonlocal errors, first_error, counter
        offset = index * 7919
        port = int(_port(urls[index % len(urls)]))
        host_port = f"{HOST}:{port}"
        reader, writer = await asyncio.open_connection(HOST, port)
        position = offset
        try:
            while time.perf_counter() < deadline:
                body = bodies[position % len(bodies)]
                position += 1
                if "__N__" in body:
                    counter += 1
                    body = body.replace("__N__", f"py{offset}x{counter}")
                data = body.encode()
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: {host_port}\r\n"
                    f"Content-Type: application/json\r\n{auth}Content-Length: {len(data)}\r\n\r\n"
                )
                started = time.perf_counter()
                writer.write(head.encode() + data)
                status_line = await reader.readline()
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                payload = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if b" 200 " not in status_line or b'"errors"' in payload:
                    errors += 1
                    first_error = first_error or payload[:300].decode(errors="replace")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection(index) for index in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
            if latencies
            else 0.0
        )

    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=pct(0.5),
        p90_ms=pct(0.9),
        p99_ms=pct(0.99),
        max_ms=latencies[-1] * 1000 if latencies else 0.0,
        errors=errors,
        first_error=first_error,
    )
