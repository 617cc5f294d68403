"""One tick's barrier rows ``a . u >= b`` with their barrier values ``h``, and the choice of the QP's fixed K rows among them.

A model (aegis.controllers.cbf.double_integrator, .unicycle) refills :class:`ConstraintRows` every
tick with plain floats (lists are reused, never reallocated once grown); :class:`QpRows` copies
them into the QP's preallocated (K, m) and (K,) arrays, padding unused rows with ``a = 0``,
``b = INACTIVE_ROW_B``. When there are more candidate rows than K, the K kept are those closest
to being violated by the nominal command: smallest ``(a . u_nom - b) / |a|``, the distance from
the nominal to the row's half-space (negative when violated). The others are left out of that
tick's QP (reported as not active); choose K for the scene (``max_rows``) so that this is rare.
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
        self._a_flat = self.a.reshape(-1)
        self._filled = 0

    def load(self, rows: ConstraintRows, nominal: np.ndarray) -> None:
        """Copy ``rows`` in (keeping the K nearest to violation when there are more), padding the rest as unused."""
        n, m, k = len(rows.b), rows.n_inputs, self.max_rows
        if n <= k:
            self.selected = self.candidates = None
            self._a_flat[: n * m] = rows.a
            self.b[:n] = rows.b
        else:
            a = rows.matrix()
            b = np.array(rows.b)
            distance = (a @ nominal - b) / (np.sqrt(np.add.reduce(a * a, axis=1)) + 1e-12)
            keep = np.argpartition(distance, k - 1)[:k]
            keep.sort()
            self.selected, self.candidates = keep, a
            np.take(a, keep, axis=0, out=self.a)
            np.take(b, keep, out=self.b)
            n = k
        if n < self._filled:
            self.a[n : self._filled] = 0.0
            self.b[n : self._filled] = INACTIVE_ROW_B
        self._filled = n
        self.rows_loaded = rows
