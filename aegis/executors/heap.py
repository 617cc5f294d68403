"""The garbage collector during a run: the heap that exists when a run starts is frozen, so a collection never pauses a step for long.

CPython's oldest-generation collection scans every tracked object of the process. In a process that
has run a few episodes it takes tens of milliseconds (89 ms measured in an ``aegis eval`` of
quadrotor_depth_sim), and it happens inside whichever step allocates when it is due: the depth node's
step took 56 and 70 ms on two of 192,000 frames of a 200-episode campaign, over its 10 ms budget, for
that alone. :func:`frozen_heap` moves what exists into the permanent generation (``gc.freeze``) for the
run, so collections during it scan only what the run allocated, and gives it back after. Both executors
use it: the realtime one with a full collection first (a run per process: it starts from a clean heap),
lockstep without (a full collection before every episode, tens of milliseconds each, would add up over an
eval and the test suite's thousands of short runs): cyclic garbage that exists when a run starts waits for
the first full collection after it (in a 12-episode eval of quadrotor_depth_sim, 2 or 3 came between runs,
none during one).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.RLock()  # re-entrant: a finalizer run by gc.collect() may start a run of its own
_depth = 0
"""Runs inside a frozen heap now (nested, or in other threads): only the last to end unfreezes."""


@contextmanager
def frozen_heap(collect_first: bool = False) -> Iterator[None]:
    """Freeze the objects that exist now for the ``with`` block (``gc.freeze``), after a full collection with ``collect_first`` (not
    when another run holds the heap frozen: it would not reach the frozen objects anyway); unfreeze after, even if the block raises,
    unless another block (nested, or another thread's run) is still inside: the last one out unfreezes."""
    global _depth
    with _lock:
        if collect_first and _depth == 0:
            gc.collect()
        gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.unfreeze()
