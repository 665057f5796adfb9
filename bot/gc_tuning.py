"""The cyclic garbage collector's thresholds for a hipcoach process.

With CPython's defaults (a young collection every 700 net allocations) a turn, which builds
a few thousand short-lived dicts, lists and models, triggers young collections while its
objects are still alive. They are promoted and soon fill the oldest generation, so full
collections over the whole heap (content, SQLAlchemy, the kept user states: ~300k objects)
ran every couple of seconds under load. Measured with bench/engine_throughput.py and
`gc.callbacks`: ~12% of the process's CPU went to the collector, 80% of that to full
collections. With a young generation of 50,000 objects most of a turn's objects are freed by
reference counting before a collection comes, and the collector's share fell to ~2%.

The price is cyclic garbage kept until the next young collection: at most tens of
thousands of small objects, a few MB. Nothing here relies on prompt collection (files,
sockets and database connections are closed explicitly).
"""

from __future__ import annotations

import gc

__all__ = ["THRESHOLDS", "tune"]

# (young, middle, old): a young collection every 50,000 net allocations, a middle one every
# 20 young ones, an old (full) one every 10 middle ones (and only once the heap grew by a
# quarter since the last, CPython's own rule).
THRESHOLDS = (50_000, 20, 10)


def tune() -> None:
    """Set the process's collector thresholds (once, at start-up)."""
    gc.set_threshold(*THRESHOLDS)
