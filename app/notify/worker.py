"""`python -m app dispatch`: a dispatcher process that runs until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from app.config import ConfigurationError, Settings
from app.migrate import prepare_database
from app.notify.dispatcher import Dispatcher
from app.storage import open_store

log = logging.getLogger("app.notify")

EXIT_OK = 0
EXIT_CONFIGURATION = 2


async def run_worker(settings: Settings) -> int:
    """Deliver until told to stop; return the process exit code."""
    store = open_store(settings)
    dispatcher = Dispatcher(store, settings)
    try:
        dispatcher.prepare()
    except ConfigurationError as error:
        log.error("cannot start the dispatcher: %s", error)
        await store.dispose()
        return EXIT_CONFIGURATION
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await prepare_database(store, settings)
        await dispatcher.start()
        await stopping.wait()
        log.info("stopping: finishing the message in flight")
        await dispatcher.stop()
        return EXIT_OK
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await store.dispose()
