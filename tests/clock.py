"""A clock tests set by hand, handed to `create_app(clock=...)`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from starlette.applications import Starlette

from app.config import Settings
from app.main import create_app
from tests.conftest import shared_schema


class TestClock:
    """Reads `now`; each read moves it on by `step` (zero: it stands still)."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, now: datetime, step: timedelta = timedelta(0)) -> None:
        self.now = now
        self.step = step

    def __call__(self) -> datetime:
        now = self.now
        self.now += self.step
        return now


async def app_with_clock(
    settings: Settings, clock: TestClock
) -> AsyncIterator[Starlette]:
    """The app of the `app` fixture, reading the time from `clock`."""
    application = create_app(settings, clock=clock, schema=shared_schema(settings))
    async with application.router.lifespan_context(application):
        yield application
