"""Statements built for one query, kept while the same query comes again.

An admin grid sends the same query again and again (a refresh, polling, the way back to a
page, each admin of a shop), and building its statements in Python (the plan's probes,
the page, the count, through SQLAlchemy's constructs) cost more than the database's work
for them: a third of a filtered page with its totalCount. Every statement is a pure
function of the query's inputs (filter, sort, page size, cursor's values, dialect), so
the last MAX_QUERIES queries keep theirs. Nothing read is kept: each statement still
runs, and the plan is still chosen from fresh probes. A kept statement also keeps its
compiled SQL and arguments (app/fast_paths.py, StatementCompiler.prepare).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

# Queries whose statements are kept: a filtered page with its totalCount keeps about
# 180 KiB (SQLAlchemy's constructs, their SQL and arguments), so at most about 11 MiB.
MAX_QUERIES = 64


class Built:
    """The statements of one query, each made the first time it is asked for."""

    __slots__ = ("_made", "key")

    def __init__(self, key: Hashable = None) -> None:
        self.key = key  # the query's; None: kept by nobody
        self._made: dict[Hashable, Any] = {}

    def narrowed(self, how: Hashable) -> Built:
        """The kept statements of this query narrowed `how` (another WHERE)."""
        return Built() if self.key is None else built_for((self.key, how))

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = build()
        return made


@functools.lru_cache(maxsize=MAX_QUERIES)
def _kept(query_key: Hashable) -> Built:
    return Built(query_key)


def built_for(query_key: Hashable) -> Built:
    """The kept statements of the query `query_key` names (new ones if it is not
    hashable: a value of an unusual type is never matched by accident)."""
    try:
        return _kept(query_key)
    except TypeError:
        return Built()


def forget_all() -> None:
    """Drop every kept statement (a test that changes a planner's threshold)."""
    _kept.cache_clear()
