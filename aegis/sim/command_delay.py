"""Actuation latency in a simulator: each physics step's command reaches the actuators a fixed number of steps later."""

from __future__ import annotations

from collections import deque

import numpy as np


class CommandDelay:
    """A FIFO of ``steps`` commands: :meth:`delayed` takes this step's command and returns the one of ``steps`` steps ago.

    With 0 steps it returns the command it is given (no copy, no cost). :meth:`fill` (at reset)
    makes the commands "given before the start" the initial one, so the first ``steps`` steps apply
    it: a robot that starts hovering keeps hovering until its first real command arrives.
    """

    def __init__(self, steps: int) -> None:
        if steps < 0:
            raise ValueError(f"actuation delay must be >= 0 steps, got {steps}")
        self.steps = steps
        self._queue: deque[np.ndarray] = deque()

    def fill(self, command: np.ndarray) -> None:
        """Forget what is queued; the next ``steps`` steps apply ``command``."""
        self._queue = deque(np.array(command, dtype=float) for _ in range(self.steps))

    def delayed(self, command: np.ndarray) -> np.ndarray:
        """Queue ``command`` (copied) and return the command due now, given ``steps`` steps ago."""
        if self.steps == 0:
            return command
        self._queue.append(np.array(command, dtype=float))
        return self._queue.popleft()
