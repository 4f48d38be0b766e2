"""The cyclic garbage collector, set for a server whose requests leave no reference cycles.

CPython frees almost every object by reference counting; the cyclic collector is only needed
for objects in reference cycles. Its default pace suits scripts, not this server:

- a full collection walked the ~120,000 long-lived objects (modules, the schema, caches) and
  paused every request in flight for 80-100 ms: it was the latency tail of every case;
- a young collection ran every 700 net allocations, i.e. every few requests, and walked the
  objects of all the requests in flight each time (about a tenth of a create's CPU).

The requests leave no cycles (see app.graphql.execution and the context's loaders;
`python -m bench.profile CASE --garbage` counts what a case leaves), so once the server has
started, what is alive is moved out of the collector's sight (`gc.freeze()`) and young
collections wait for YOUNG_COLLECTION_THRESHOLD net allocations. A cycle that does appear is
still collected, only later.
"""

from __future__ import annotations

import gc

YOUNG_COLLECTION_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Call once the process has loaded what it keeps (after start-up)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)
