"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread of its own,
verifying each POST's signature with the `standardwebhooks` package as a receiver would.

`answer(event)` decides each status (200 by default); `stop()` and `start()` take it
down and bring it back on the same port; `delay` slows every answer.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Delivery:
    """One POST as received, with what verifying it said."""

    headers: dict[str, str]
    body: bytes
    # The secret it verified with, or None when no secret did.
    verified_with: str | None
    status: int

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def type(self) -> str:
        return self.payload["type"].rsplit("_", 1)[-1]

    @property
    def request_id(self) -> str:
        return self.payload["data"]["metadata"]["entityId"]

    @property
    def sequence(self) -> int:
        return self.payload["data"]["metadata"]["entityEventSequence"]


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.secrets: list[str] = []
        self.answer: Callable[[Delivery], int] = lambda delivery: 200
        self.delay = 0.0
        self.received: list[Delivery] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def accepted(self) -> list[Delivery]:
        """The deliveries answered with 2xx, in arrival order."""
        with self._lock:
            return [d for d in self.received if 200 <= d.status < 300]

    def all(self) -> list[Delivery]:
        with self._lock:
            return list(self.received)

    def _verify(self, headers: dict[str, str], body: bytes) -> str | None:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except Exception:  # noqa: BLE001 - the next secret may verify it
                continue
            return secret
        return None

    def _handle(self, headers: dict[str, str], body: bytes) -> int:
        if self.delay:
            time.sleep(self.delay)
        verified = self._verify(headers, body)
        probe = Delivery(headers, body, verified, 0)
        status = self.answer(probe) if verified else 401
        with self._lock:
            self.received.append(Delivery(headers, body, verified, status))
        return status

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with receiver._lock:
                    receiver._connections.add(self.connection)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {key.lower(): value for key, value in self.headers.items()}
                status = receiver._handle(headers, body)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("location", "http://127.0.0.1:9/elsewhere")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Take the server down: connections are refused until `start()`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:  # kept alive by the sender: cut them too
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
