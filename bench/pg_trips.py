"""Round trips to PostgreSQL per request, and single-connection latency, in-process.

    .venv/bin/python -m bench.pg_trips                 # get and create, quick data
    .venv/bin/python -m bench.pg_trips --requests 300

The service's app is called directly (as bench/profile.py does) on a copy of the quick
run's PostgreSQL data. Its connections go through a small TCP proxy that reads the
frontend protocol: every Sync ('S') and simple Query ('Q') message is one round trip (the
client waits for ReadyForQuery), and every chunk the proxy receives is one socket send.
Then, without the proxy, the p50 and p90 of the same requests one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import statistics
import struct
import time
import uuid
from typing import Any

from bench import cases, run_databases
from bench.profile import _call

ROUND_TRIP_MESSAGES = {ord("S"): "Sync", ord("Q"): "Query"}


class Counts:
    """What the clients sent, by frontend message type, and how many sends it took."""

    def __init__(self) -> None:
        self.messages: collections.Counter[str] = collections.Counter()
        self.sends = 0

    def round_trips(self) -> int:
        return sum(self.messages[name] for name in ROUND_TRIP_MESSAGES.values())


class FrontendReader:
    """Splits one client's byte stream into protocol messages (startup ones untyped)."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.buffer = b""
        self.untyped = 1  # the StartupMessage (an SSLRequest adds one)

    def feed(self, data: bytes) -> None:
        self.counts.sends += 1
        self.buffer += data
        while True:
            if self.untyped:
                if len(self.buffer) < 8:
                    return
                length, code = struct.unpack("!ii", self.buffer[:8])
                if len(self.buffer) < length:
                    return
                if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                    self.untyped += 1
                self.untyped -= 1
                self.buffer = self.buffer[length:]
                continue
            if len(self.buffer) < 5:
                return
            kind = self.buffer[0]
            (length,) = struct.unpack("!i", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return
            self.counts.messages[ROUND_TRIP_MESSAGES.get(kind, chr(kind))] += 1
            self.buffer = self.buffer[1 + length :]


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tap: Any
) -> None:
    try:
        while data := await reader.read(65536):
            if tap is not None:
                tap.feed(data)
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def start_proxy(host: str, port: int, counts: Counts) -> asyncio.Server:
    async def handle(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        server_reader, server_writer = await asyncio.open_connection(host, port)
        await asyncio.gather(
            _pipe(client_reader, server_writer, FrontendReader(counts)),
            _pipe(server_reader, client_writer, None),
        )

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _bodies(samples: cases.Samples, rng: random.Random, n: int) -> dict[str, list[str]]:
    return {
        "get": [
            cases.body(cases.GET, {"id": id_}) for id_ in rng.sample(samples.ids, n)
        ],
        "create": [
            cases.body(
                cases.CREATE,
                {
                    "request": {
                        "catalogReference": reference,
                        "email": f"trips-{uuid.uuid4().hex}@example.com",
                    },
                    "itemDetails": {"name": "Blue shoe", "price": "24.50"},
                },
            )
            for reference in rng.choices(samples.collecting_references, k=n)
        ],
    }


async def _run(url: str, key: str, samples: cases.Samples, args: Any) -> None:
    from sqlalchemy.engine import make_url

    from app.config import Settings
    from app.main import create_app

    rng = random.Random(7)
    headers = {
        "get": [(b"authorization", f"Bearer {key}".encode())],
        "create": [],
    }
    counts = Counts()
    target = make_url(url)
    proxy = await start_proxy(target.host or "127.0.0.1", target.port or 5432, counts)
    proxy_port = proxy.sockets[0].getsockname()[1]
    for through_proxy in (True, False):
        database_url = url
        if through_proxy:
            database_url = target.set(
                host="127.0.0.1", port=proxy_port
            ).render_as_string(hide_password=False)
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            dispatch_in_serve=False,
            migrate_on_start=False,
            db_pool_size=1,
            db_max_overflow=0,
            rate_limit_per_client="",  # as bench/run_servers.py: one client makes them all
            public_base_url="https://bench.example.com",
        )
        app = create_app(settings)
        bodies = _bodies(samples, rng, args.requests + 50)
        async with app.router.lifespan_context(app):
            for case in ("get", "create"):
                for body in bodies[case][:50]:  # warm up: caches, prepared statements
                    status, payload = await _call(app, body.encode(), headers[case])
                    if status != 200 or b'"errors"' in payload:
                        raise SystemExit(f"{case}: {status} {payload[:300]!r}")
                counts.messages.clear()
                counts.sends = 0
                times = []
                for body in bodies[case][50:]:
                    started = time.perf_counter()
                    await _call(app, body.encode(), headers[case])
                    times.append(time.perf_counter() - started)
                n = args.requests
                if through_proxy:
                    by_kind = ", ".join(
                        f"{kind} {count / n:.1f}"
                        for kind, count in sorted(counts.messages.items())
                    )
                    print(
                        f"{case}: {counts.round_trips() / n:.2f} round trips and "
                        f"{counts.sends / n:.2f} socket sends per request "
                        f"(messages per request: {by_kind})"
                    )
                else:
                    quantiles = statistics.quantiles(times, n=10)
                    print(
                        f"{case}: p50 {statistics.median(times) * 1e3:.2f} ms, "
                        f"p90 {quantiles[-1] * 1e3:.2f} ms (one at a time, no proxy)"
                    )
    proxy.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server-url", default="postgresql://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--requests", type=int, default=200, help="per case")
    args = parser.parse_args()
    seed_args = argparse.Namespace(
        server_url=args.server_url,
        requests=100_000,
        items=5_000,
        reseed=False,
        report=0,
    )
    with run_databases.postgresql_run_database(
        seed_args, deep_page=2, rng=random.Random(5)
    ) as (url, key, samples):
        asyncio.run(_run(url, key, samples, args))


if __name__ == "__main__":
    main()
