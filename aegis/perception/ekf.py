"""What the Kalman filters here share: a replay buffer for delayed measurements, a chi-square gate, NEES.

A filter that sees measurements late (motion capture 10-30 ms behind the IMU, a pose fix from a
localiser) keeps a short history: every event it applied (an IMU sample, a wheel-odometry
reading, a pose fix) with its stamp and a snapshot of the filter after it. A late event is
applied at its own stamp: the filter goes back to the snapshot just before that stamp, applies
it, then re-applies every later event in order (the "re-propagation" of delayed-measurement
EKFs). Events older than the history are dropped and counted, never applied out of order.

The filter side of the contract (:class:`ReplayFilter`): ``snapshot()`` and ``restore(s)``
(a copy of its whole state, covariance included) and ``apply(stamp, event) -> bool`` (False:
the event was rejected, by the gate or because it was unusable; it then leaves the filter as it
was). Everything is deterministic: no clock, the caller gives every stamp.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Protocol

import numpy as np
from scipy.special import gammaincinv  # not scipy.stats: importing it costs every process that builds an estimator 1 s


class ReplayFilter(Protocol):
    """A filter the replay buffer can rewind: snapshots of its state and events applied at a stamp."""

    def snapshot(self) -> Any: ...

    def restore(self, snapshot: Any) -> None: ...

    def apply(self, stamp: float, event: Any) -> bool: ...


class ReplayBuffer:
    """The last ``horizon_s`` seconds of events, each with the filter's snapshot after it; applies late events in order.

    ``process(stamp, event)`` applies an event in time order: at once when it is the newest,
    else after rewinding to the newest snapshot at or before its stamp and before re-applying
    the later ones. Returns what became of it: "applied", "rejected" (the filter said no),
    "too_old" (older than the history: dropped) or "bad_stamp" (a non-finite stamp).
    """

    def __init__(self, filt: ReplayFilter, horizon_s: float) -> None:
        if not (math.isfinite(horizon_s) and horizon_s >= 0):
            raise ValueError(f"ReplayBuffer horizon_s must be a finite number >= 0, got {horizon_s!r}")
        self.filter = filt
        self.horizon_s = float(horizon_s)
        self._entries: deque[tuple[float, Any, Any]] = deque()  # (stamp, event, snapshot after it)
        self._start: Any = None  # the snapshot before the oldest entry ...
        self._start_stamp = -math.inf  # ... and the stamp it holds (-inf: before any event)
        self.replayed = 0
        """Events re-applied after a late one (a measure of the work latency costs)."""

    def clear(self) -> None:
        """Forget the history (after a filter reset): the next events start it anew."""
        self._entries.clear()
        self._start = None
        self._start_stamp = -math.inf
        self.replayed = 0

    @property
    def newest_stamp(self) -> float | None:
        """The stamp of the newest event applied (None before the first)."""
        return self._entries[-1][0] if self._entries else None

    def process(self, stamp: float, event: Any) -> str:
        """Apply ``event`` measured at ``stamp`` (s) in time order; what became of it (see the class docstring)."""
        if not math.isfinite(stamp):
            return "bad_stamp"
        entries, filt = self._entries, self.filter
        if not entries or stamp >= entries[-1][0]:
            if self._start is None:
                self._start = filt.snapshot()
            if not filt.apply(stamp, event):
                return "rejected"
            entries.append((stamp, event, filt.snapshot()))
            self._trim()
            return "applied"
        # Late: find the newest entry at or before ``stamp``; every entry after it is re-applied.
        later: list[tuple[float, Any, Any]] = []
        while entries and entries[-1][0] > stamp:
            later.append(entries.pop())
        if not entries and (self._start is None or stamp < self._start_stamp):
            entries.extend(reversed(later))
            return "too_old"
        filt.restore(entries[-1][2] if entries else self._start)
        accepted = filt.apply(stamp, event)
        if accepted:
            entries.append((stamp, event, filt.snapshot()))
        for old_stamp, old_event, _ in reversed(later):
            filt.apply(old_stamp, old_event)  # a rejection stays recorded: its snapshot is the state without it
            entries.append((old_stamp, old_event, filt.snapshot()))
            self.replayed += 1
        return "applied" if accepted else "rejected"

    def _trim(self) -> None:
        entries = self._entries
        oldest = entries[-1][0] - self.horizon_s
        while len(entries) > 1 and entries[0][0] < oldest:
            self._start_stamp, _, self._start = entries.popleft()


def restart(filt: Any, buffer: ReplayBuffer, stamp: float, event: Any) -> None:
    """Start ``filt`` again from ``event`` (a pose) with an empty history: what a filter does when the gate has locked it out.

    A filter whose estimate has drifted beyond its own covariance rejects every measurement that
    would bring it back; after a run of rejections the caller restarts it, as robot_localization
    users do by resetting the pose.
    """
    filt.reset()
    buffer.clear()
    buffer.process(stamp, event)


def chi2_threshold(probability: float, dof: int) -> float:
    """The chi-square quantile a normalised innovation squared (NIS) of ``dof`` degrees is gated at."""
    if not (0.0 < probability < 1.0):
        raise ValueError(f"gate probability must be in (0, 1), got {probability!r}")
    return _chi2_quantile(probability, dof)


def nees(error: np.ndarray, covariance: np.ndarray) -> float:
    """Normalised estimation error squared e' P^-1 e (NEES): chi-square with len(e) degrees when the filter is consistent."""
    e = np.asarray(error, dtype=np.float64)
    return float(e @ np.linalg.solve(np.asarray(covariance, dtype=np.float64), e))


def average_nees_bounds(dof: int, runs: int, probability: float = 0.95) -> tuple[float, float]:
    """The two-sided ``probability`` interval of the NEES averaged over ``runs`` independent runs (Bar-Shalom).

    ``runs`` times the average is chi-square with ``runs * dof`` degrees for a consistent filter.
    """
    tail = (1.0 - probability) / 2.0
    n = runs * dof
    return _chi2_quantile(tail, n) / runs, _chi2_quantile(1.0 - tail, n) / runs


def _chi2_quantile(probability: float, dof: int) -> float:
    """The chi-square quantile, as scipy.stats.chi2.ppf computes it inside (0, 1): 2 gammaincinv(dof / 2, p), bit for bit."""
    return float(2 * gammaincinv(dof / 2, probability))


class KalmanUpdate:
    """One gated linear(ised) Kalman update in Joseph form: x += K y and P = (I - K H) P (I - K H)' + K R K'."""

    def __init__(self, gate_probability: float, dims: tuple[int, ...]) -> None:
        self.gates = {dof: chi2_threshold(gate_probability, dof) for dof in dims}
        self.last_nis = math.nan

    def __call__(self, P: np.ndarray, H: np.ndarray, y: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(correction dx, new P), or None when the innovation ``y`` fails the gate (or is not finite): nothing changes."""
        if not (np.all(np.isfinite(y)) and np.all(np.isfinite(R))):
            self.last_nis = math.nan
            return None
        PHt = P @ H.T
        S = H @ PHt + R
        try:
            S_inv_y = np.linalg.solve(S, y)
        except np.linalg.LinAlgError:
            self.last_nis = math.nan
            return None
        nis = float(y @ S_inv_y)
        self.last_nis = nis
        gate = self.gates.get(len(y))
        if not math.isfinite(nis) or (gate is not None and nis > gate):
            return None
        K = np.linalg.solve(S, PHt.T).T  # S is symmetric
        dx = K @ y
        A = np.eye(P.shape[0]) - K @ H
        P_new = A @ P @ A.T + K @ R @ K.T
        return dx, 0.5 * (P_new + P_new.T)
