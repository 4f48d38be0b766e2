"""A graphql-transport-ws client for tests (the `websockets` package), and the app served
by uvicorn on a loopback port inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from tests.receiver import free_port

PROTOCOL = "graphql-transport-ws"

EVENTS = """
subscription Events($filter: BackInStockNotificationRequestFilter) {
  backInStockNotificationRequestEvents(filter: $filter) {
    id type requestId eventTime entityEventSequence
    request { id email status autoNotified deliveryAttempts }
  }
}
"""


class Client:
    """One graphql-transport-ws connection."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def receive(self, seconds: float = 10.0) -> dict[str, Any]:
        """The next message that is not a ping."""
        while True:
            message = json.loads(await asyncio.wait_for(self.socket.recv(), seconds))
            if message.get("type") == "ping":
                await self.send({"type": "pong"})
                continue
            return message

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.send({"type": "connection_init", "payload": payload or {}})
        return await self.receive()

    async def subscribe(
        self, id: str, query: str = EVENTS, variables: dict[str, Any] | None = None
    ) -> None:
        await self.send(
            {
                "id": id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )

    async def next_event(self, seconds: float = 10.0) -> dict[str, Any]:
        """The next `next` message's event (fails on anything else)."""
        message = await self.receive(seconds)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        return message["payload"]["data"]["backInStockNotificationRequestEvents"]

    async def nothing_for(self, seconds: float) -> bool:
        try:
            message = await self.receive(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected message {message}")


@contextlib.asynccontextmanager
async def ws_client(url: str, **options: Any) -> AsyncIterator[Client]:
    async with connect(url, subprotocols=[PROTOCOL], **options) as socket:  # type: ignore[list-item]
        yield Client(socket)


async def listening(
    app: Starlette, subscribers: int = 1, seconds: float = 10.0
) -> None:
    """Until `app`'s event feed has `subscribers`. A subscription sees the events from
    when the server took it on, which a write sent right after `subscribe` (on another
    connection) may precede when the machine is busy."""
    feed = app.state.events
    deadline = asyncio.get_running_loop().time() + seconds
    while len(feed.subscribers) < subscribers:
        assert asyncio.get_running_loop().time() < deadline, "no subscription started"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def served(app: Starlette) -> AsyncIterator[str]:
    """Serve `app` (its lifespan already running) on a loopback port: its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
