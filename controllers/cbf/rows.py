"""One tick's barrier rows ``a . u >= b`` with their barrier values ``h``, and the choice of the QP's fixed K rows among them.

A model (aegis.controllers.cbf.double_integrator, .unicycle) refills :class:`ConstraintRows` every
tick with plain floats (lists are reused, never reallocated once grown); :class:`QpRows` copies
them into the QP's preallocated (K, m) and (K,) arrays, padding unused rows with ``a = 0``,
``b = INACTIVE_ROW_B``. When there are more candidate rows than K, the K kept are those closest
to being violated by the nominal command: smallest ``(a . u_nom - b) / |a|``, the distance from
the nominal to the row's half-space (negative when violated). That guess can be wrong:
where many rows are violated (a lidar's dozens of segments ahead of a drone the policy sends
forward at full acceleration), the answer that meets the K kept can miss one left out. The filter
checks every candidate against the answer and says so (aegis.controllers.cbf.filter); with
``swap_rounds`` it swaps the missed ones in for the kept rows the answer meets with the most room
(:meth:`QpRows.swap_in`) and solves again (constraint generation). At most as many rows as
inputs, plus the slack, are active at the optimum, so enough rounds end at the answer of the QP
with every row.
"""

from __future__ import annotations

import numpy as np

from aegis.controllers.cbf.qp import INACTIVE_ROW_B


class ConstraintRows:
    """Candidate rows of one tick: ``a`` flat (n_inputs per row), ``b`` and ``h`` one per row, as Python floats."""

    __slots__ = ("a", "b", "h", "n_inputs")

    def __init__(self, n_inputs: int) -> None:
        self.n_inputs = n_inputs
        self.a: list[float] = []
        self.b: list[float] = []
        self.h: list[float] = []

    def clear(self) -> None:
        self.a.clear()
        self.b.clear()
        self.h.clear()

    def __len__(self) -> int:
        return len(self.b)

    def matrix(self) -> np.ndarray:
        """All candidate rows' ``a`` as a new (n, m) array (for reports and tests, not the hot path)."""
        return np.array(self.a, dtype=float).reshape(len(self.b), self.n_inputs)


class QpRows:
    """The QP's K rows: ``a`` (K, m) and ``b`` (K,), preallocated, and which candidate each holds."""

    def __init__(self, max_rows: int, n_inputs: int) -> None:
        self.max_rows = max_rows
        self.a = np.zeros((max_rows, n_inputs))
        self.b = np.full(max_rows, INACTIVE_ROW_B)
        self.selected: np.ndarray | None = None
        """Candidate index of each kept row when some were left out this tick; None when rows 0..n-1 are the candidates."""
        self.rows_loaded: ConstraintRows | None = None
        """The rows of the last :meth:`load` (the caller clears it when the tick's rows change)."""
        self.candidates: np.ndarray | None = None
        """Every candidate row's ``a`` as an (n, m) array when some were left out this tick (built for the choice, kept
        for the caller's checks); None when rows 0..n-1 of :attr:`a` are the candidates."""
        self.candidate_b: np.ndarray | None = None
        """Every candidate row's ``b`` when some were left out this tick (with :attr:`candidates`)."""
        self._a_flat = self.a.reshape(-1)
        self._filled = 0

    def load(self, rows: ConstraintRows, nominal: np.ndarray) -> None:
        """Copy ``rows`` in (keeping the K nearest to violation when there are more), padding the rest as unused."""
        n, m, k = len(rows.b), rows.n_inputs, self.max_rows
        if n <= k:
            self.selected = self.candidates = self.candidate_b = None
            self._a_flat[: n * m] = rows.a
            self.b[:n] = rows.b
        else:
            a = rows.matrix()
            b = np.array(rows.b)
            distance = (a @ nominal - b) / (np.sqrt(np.add.reduce(a * a, axis=1)) + 1e-12)
            keep = np.argpartition(distance, k - 1)[:k]
            keep.sort()
            self.selected, self.candidates, self.candidate_b = keep, a, b
            np.take(a, keep, axis=0, out=self.a)
            np.take(b, keep, out=self.b)
            n = k
        if n < self._filled:
            self.a[n : self._filled] = 0.0
            self.b[n : self._filled] = INACTIVE_ROW_B
        self._filled = n
        self.rows_loaded = rows

    def swap_in(self, missed: list[int], kept_surplus: list[float]) -> int:
        """Put the candidates ``missed`` (most violated first) in place of the kept rows with the most room,
        ``kept_surplus`` per QP row (``a . u + s - b`` at the last answer, rows 0..K-1); returns how many went in.

        Only a kept row the answer meets with room (surplus > 0) leaves: an active row stays, so the next answer
        cannot give back what this one held. Only after a :meth:`load` that left rows out."""
        if self.selected is None or self.candidates is None or self.candidate_b is None:
            raise ValueError("swap_in: this tick's QP holds every candidate")
        leaving = sorted((s, position) for position, s in enumerate(kept_surplus) if s > 0.0)
        count = 0
        for index, (_, position) in zip(missed, reversed(leaving)):
            self.selected[position] = index
            self.a[position] = self.candidates[index]
            self.b[position] = self.candidate_b[index]
            count += 1
        return count
