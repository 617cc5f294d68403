"""The definition of a linear MPC problem (model, horizon, weights, limits), validated once and shared by every solve path.

The problem, for a horizon of N steps from the measured state x_0::

    minimise    sum_{k=0}^{N-1} (x_k - r_k)' Q (x_k - r_k) + (u_k - s_k)' R (u_k - s_k)  +  (x_N - r_N)' P (x_N - r_N)
    subject to  x_{k+1} = A_k x_k + B_k u_k + c_k          k = 0 .. N-1
                u_min <= u_k <= u_max                       k = 0 .. N-1
                x_min <= x_k <= x_max  (selected states)    k = 1 .. N

with r (N+1 states) and s (N inputs) the reference. A time-invariant problem has A_k = A, B_k = B,
c_k = 0; a time-varying one (``time_varying=True``, for models linearised along a reference) takes
new (A_k, B_k, c_k) every tick. P defaults to the solution of the discrete algebraic Riccati equation
of (A, B, Q, R), the infinite-horizon cost of the LQR that takes over after the horizon.

A state is "selected" (constrained) when its x_min or x_max is finite; infinite limits cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg


@dataclass(frozen=True, eq=False)
class MpcProblem:
    """Model x+ = A x + B u, horizon N, weights Q (n, n), R (m, m), P (n, n), box limits; arrays are read-only copies.

    Build with :func:`mpc_problem` (which fills P and the limits' defaults and checks everything).
    """

    a: np.ndarray
    b: np.ndarray
    horizon: int
    q: np.ndarray
    r: np.ndarray
    p: np.ndarray
    u_min: np.ndarray
    u_max: np.ndarray
    x_min: np.ndarray
    x_max: np.ndarray
    time_varying: bool = False

    @property
    def n(self) -> int:
        """Number of states."""
        return self.a.shape[0]

    @property
    def m(self) -> int:
        """Number of inputs."""
        return self.b.shape[1]

    @property
    def constrained_states(self) -> np.ndarray:
        """Indices of the states with a finite lower or upper limit."""
        return np.flatnonzero(np.isfinite(self.x_min) | np.isfinite(self.x_max))

    def without_state_limits(self) -> MpcProblem:
        """The same problem with the state limits dropped (input limits kept): the relaxed fallback of an infeasible tick."""
        free = np.full(self.n, np.inf)
        free.setflags(write=False)
        low = -free
        low.setflags(write=False)
        return replace(self, x_min=low, x_max=free)


def mpc_problem(
    a: np.ndarray,
    b: np.ndarray,
    horizon: int,
    q: np.ndarray,
    r: np.ndarray,
    p: np.ndarray | None = None,
    *,
    u_min: np.ndarray | float | None = None,
    u_max: np.ndarray | float | None = None,
    x_min: np.ndarray | None = None,
    x_max: np.ndarray | None = None,
    time_varying: bool = False,
) -> MpcProblem:
    """A validated :class:`MpcProblem`; raises ValueError naming what is wrong.

    ``p`` None takes the DARE solution of (a, b, q, r) (ValueError when (a, b) is not stabilisable:
    give ``p`` then). Missing limits are infinite; a scalar input limit applies to every input.
    """
    a = _matrix(a, "a")
    n = a.shape[0]
    if a.shape != (n, n):
        raise ValueError(f"a must be square, got {a.shape}")
    b = _matrix(b, "b")
    if b.ndim != 2 or b.shape[0] != n:
        raise ValueError(f"b must be ({n}, m), got {b.shape}")
    m = b.shape[1]
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
    q = _weight(q, n, "q", definite=False)
    r = _weight(r, m, "r", definite=True)
    if p is None:
        try:
            p = scipy.linalg.solve_discrete_are(a, b, q, r)
        except (np.linalg.LinAlgError, ValueError) as error:
            raise ValueError(f"no terminal weight: the Riccati equation of (a, b, q, r) has no stabilising solution ({error}); pass p") from error
        p = 0.5 * (p + p.T)
    p = _weight(p, n, "p", definite=False)
    u_lo, u_hi = _limits(u_min, u_max, m, "u")
    x_lo, x_hi = _limits(x_min, x_max, n, "x")
    arrays = [a, b, q, r, p, u_lo, u_hi, x_lo, x_hi]
    for array in arrays:
        array.setflags(write=False)
    return MpcProblem(a, b, int(horizon), q, r, p, u_lo, u_hi, x_lo, x_hi, bool(time_varying))


def _matrix(value: np.ndarray, name: str) -> np.ndarray:
    array = np.array(value, dtype=float)
    if array.ndim != 2 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a finite 2-D array, got shape {array.shape}")
    return array


def _weight(value: np.ndarray, size: int, name: str, definite: bool) -> np.ndarray:
    w = _matrix(value, name)
    if w.shape != (size, size):
        raise ValueError(f"{name} must be ({size}, {size}), got {w.shape}")
    if not np.allclose(w, w.T, atol=1e-10 * max(1.0, float(np.abs(w).max()))):
        raise ValueError(f"{name} must be symmetric")
    w = 0.5 * (w + w.T)
    smallest = float(np.linalg.eigvalsh(w).min())
    scale = max(1.0, float(np.abs(w).max()))
    if definite and smallest <= 0.0:
        raise ValueError(f"{name} must be positive definite (smallest eigenvalue {smallest:g})")
    if not definite and smallest < -1e-9 * scale:
        raise ValueError(f"{name} must be positive semi-definite (smallest eigenvalue {smallest:g})")
    return w


def _limits(low: np.ndarray | float | None, high: np.ndarray | float | None, size: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    lo = np.full(size, -np.inf) if low is None else np.array(np.broadcast_to(np.asarray(low, dtype=float), (size,)))
    hi = np.full(size, np.inf) if high is None else np.array(np.broadcast_to(np.asarray(high, dtype=float), (size,)))
    if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
        raise ValueError(f"{name}_min and {name}_max must not be NaN")
    if np.any(lo > hi):
        raise ValueError(f"{name}_min must be <= {name}_max, got {lo} and {hi}")
    if np.any(lo == np.inf) or np.any(hi == -np.inf):
        raise ValueError(f"{name}_min must not be +inf nor {name}_max -inf")
    return lo, hi
