"""Checkpoints of SQLite's write-ahead log, on a thread of their own (docs/sqlite.md)."""

from __future__ import annotations

import sqlite3
import threading

# WAL frames (pages) past which the log is started over: under steady writes the background
# checkpoint always trails the latest commit, and the log only restarts when a write
# transaction begins with every frame copied.
WAL_RESTART_FRAMES = 16000
# A background pass that copied at most this many frames leaves few for the writer to copy.
RESTART_READY_FRAMES = 1000
# Least time between two background checkpoints: each one syncs the log and the database.
CHECKPOINT_INTERVAL_SECONDS = 0.05


class BackgroundCheckpoints:
    """Copies the write-ahead log into the database on a thread of its own.

    SQLite checkpoints inside the commit that crosses `wal_autocheckpoint` (1,000 pages): that
    commit copies the pages and syncs both files while every queued write waits. At a million
    rows a create's commit spent twice its CPU time waiting on those syncs, and creates ran at
    two thirds of the rate, with three times the p99, of the same writes without them. Here the
    writer's connection does not checkpoint; after its commits, this thread runs a PASSIVE
    checkpoint (it never blocks writers or readers) at most every CHECKPOINT_INTERVAL_SECONDS.

    Past WAL_RESTART_FRAMES the log is started over in two steps, so that the writer waits
    only for the frames of about one transaction (see `restart_begins`).
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None  # opened on first use
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._hurried = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.frames = 0  # the log's length at the last checkpoint
        self._passes_started = 0
        self._passes_done = 0
        self._restart_after: int | None = (
            None  # the passes started when a restart was due
        )
        self._last_copied = 0
        self._copied_before = 0

    def request(self) -> None:
        """Something was committed: checkpoint soon."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="sqlite-checkpoints", daemon=True
            )
            self._thread.start()
        self._wanted.set()

    def _checkpoint(self) -> tuple[int, int, int]:
        """(holding the lock) One PASSIVE checkpoint: (busy, log frames, frames copied)."""
        if self._connection is None:
            self._connection = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False
            )
            self._connection.execute("PRAGMA busy_timeout=0")
        busy, frames, copied = self._connection.execute(
            "PRAGMA wal_checkpoint(PASSIVE)"
        ).fetchone()
        return busy, frames, copied

    def restart_begins(self) -> bool:
        """(the writer's thread, before a transaction) Whether the log starts over with it.

        Whatever the writer copies itself (and syncs) stalls every queued write: 100-200 ms
        at a million rows when it was all the commits since the last background pass. So
        first background passes are asked for at once, without their pause, while the
        writer goes on; each copies what came during the one before. Once one that started
        after the request copied at most RESTART_READY_FRAMES, the writer copies the rest
        and holds the lock (True) until `restart_ends`: no background pass may hold the log
        while the writer's transaction begins, or the log would not start over.
        """
        if self._restart_after is None:
            self._restart_after = self._passes_started
            self._hurried.set()
            self.request()
            return False
        if self._passes_done <= self._restart_after:
            return False  # the pass asked for has not finished yet
        if self._last_copied > RESTART_READY_FRAMES:
            self._restart_after = (
                self._passes_started
            )  # one more pass, on the heels of that
            self._hurried.set()
            self.request()
            return False
        if not self._lock.acquire(blocking=False):
            return False
        try:
            busy, frames, copied = (1, 0, 0) if self._closed else self._checkpoint()
        except sqlite3.Error:
            busy = 1
        if (
            busy or copied != frames
        ):  # a reader still reads older frames: try again later
            self._restart_after = None
            self._lock.release()
            return False
        return True

    def restart_ends(self) -> None:
        """(the writer's thread, after the transaction restart_begins let begin)"""
        self.frames = 0
        self._copied_before = 0
        self._restart_after = None
        self._lock.release()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._closed:
                return
            self._wanted.clear()
            with self._lock:
                if self._closed:
                    return
                self._passes_started += 1
                try:
                    _, self.frames, copied = self._checkpoint()
                    self._last_copied = copied - self._copied_before
                    self._copied_before = copied
                except sqlite3.Error:
                    pass  # e.g. another process checkpointing: the next commit asks again
                self._passes_done += 1
            self._hurried.wait(CHECKPOINT_INTERVAL_SECONDS)  # cut short by a restart
            self._hurried.clear()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        self._wanted.set()
        self._hurried.set()
        if self._thread is not None:
            self._thread.join()
