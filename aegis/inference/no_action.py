"""A policy runtime's "no action this tick" that is not a failure: its answer is still on its way (the pipelined MCU tick).

A runtime's ``act`` raises :class:`NoActionYet` when it has nothing to give at this tick by design (aegis hil --mcu:
the emulated MCU's answer to the request before has not come yet). The policy node publishes no nominal and counts
the tick as it counts a failed inference (``error_ticks``), but logs it as a warning, once, without a traceback: it
is an expected fallback (the filter holds the last nominal up to its staleness bound, then filters a hover).
"""

from __future__ import annotations


class NoActionYet(RuntimeError):
    """The runtime has no action at this tick (not a failure: its answer is still on its way)."""
