"""The dispatcher: claims queued notifications, sends them and records the outcome."""

from __future__ import annotations

import asyncio

from app.config import Settings
from app.db import Database


class Dispatcher:
    """Runs the delivery loop in the background of the current event loop."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Look at the queue now rather than at the next poll."""
        self._wakeup.set()

    async def start(self) -> None:
        """Start delivering in the background (delivery arrives with the next issue)."""

    async def stop(self) -> None:
        """Stop delivering; claims in flight expire with their lease."""
