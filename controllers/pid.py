"""PID control on numpy vectors, with output saturation and anti-windup by back-calculation."""

from __future__ import annotations

import numpy as np


class Pid:
    """A vector PID: ``u = kp e + ki ∫e + kd ė`` clipped to ``±output_limit``.

    The derivative term takes the error rate from the caller (for position control: the
    measured velocity, which avoids the derivative kick of differentiating a setpoint step).
    Anti-windup: while the output saturates, the integrator also integrates
    ``windup_gain * (u_saturated - u_unsaturated)``, which drives it back toward the value that
    just saturates the output (back-calculation); it is always clamped to ``±integral_limit``.
    """

    def __init__(
        self,
        kp: np.ndarray | float,
        ki: np.ndarray | float,
        kd: np.ndarray | float,
        output_limit: np.ndarray | float = np.inf,
        integral_limit: np.ndarray | float = np.inf,
        windup_gain: float = 1.0,
        dim: int = 1,
    ) -> None:
        self.kp = np.broadcast_to(np.asarray(kp, dtype=float), (dim,)).copy()
        self.ki = np.broadcast_to(np.asarray(ki, dtype=float), (dim,)).copy()
        self.kd = np.broadcast_to(np.asarray(kd, dtype=float), (dim,)).copy()
        self.output_limit = np.broadcast_to(np.asarray(output_limit, dtype=float), (dim,)).copy()
        self.integral_limit = np.broadcast_to(np.asarray(integral_limit, dtype=float), (dim,)).copy()
        if np.any(self.output_limit <= 0) or np.any(self.integral_limit < 0):
            raise ValueError("output_limit must be > 0 and integral_limit >= 0")
        self.windup_gain = float(windup_gain)
        self._gains = (self.kp.tolist(), self.ki.tolist(), self.kd.tolist(), self.output_limit.tolist(), self.integral_limit.tolist())
        self.integral = np.zeros(dim)

    def reset(self) -> None:
        self.integral[:] = 0.0

    def compute(self, error: np.ndarray, error_rate: np.ndarray, dt: float) -> np.ndarray:
        """One control step: returns the saturated output and advances the integrator by ``dt``."""
        unsaturated = self.kp * error + self.ki * self.integral + self.kd * error_rate
        output = np.clip(unsaturated, -self.output_limit, self.output_limit)
        # Back-calculation: integrate the error, minus how far the output is past its limit.
        self.integral += dt * (error + self.windup_gain * (output - unsaturated))
        np.clip(self.integral, -self.integral_limit, self.integral_limit, out=self.integral)
        return output

    def compute_values(self, error: list[float], dt: float) -> list[float]:
        """:meth:`compute` with a zero error rate on lists of floats, the same operations in the same order (a 3-vector's
        numpy ops cost more in per-call overhead than in arithmetic: the quadrotor cascade's inner loop calls this)."""
        integral, outputs = [], []
        windup = self.windup_gain
        for e, kp, ki, kd, limit, bound, i in zip(error, *self._gains, self.integral.tolist()):
            unsaturated = kp * e + ki * i + kd * 0.0
            output = -limit if unsaturated < -limit else limit if unsaturated > limit else unsaturated
            i += dt * (e + windup * (output - unsaturated))
            integral.append(-bound if i < -bound else bound if i > bound else i)
            outputs.append(output)
        self.integral[:] = integral
        return outputs
