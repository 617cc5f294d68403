"""A hover-thrust estimator: a one-state Kalman filter on the thrust ratio (true over nominal mass) from vertical motion.

The attitude loop turns an acceleration a into a thrust vector m (a + g z) with the config's mass
m. When the real quadrotor is heavier or lighter (a payload, a smaller battery; or weaker rotors)
the realised acceleration is off by the same ratio: 30 % more mass sags 0.3 g at hover. This
estimator learns that ratio in flight, as PX4's mc_hover_thrust_estimator (its
ZeroOrderHoverThrustEkf) learns the hover thrust, so that the thrust vector m r (a + g z) realises
what was asked.

The state is the thrust ratio r (1: the plant is the model). The measurement is the vertical
specific force y = a_z + g (m/s^2, world frame, up) averaged over a window of ``window_ticks``
control ticks, from the difference of the odometry's vertical velocity across the window; the
model y = g u / r, with u the mean vertical thrust commanded over the same window over the
nominal weight (u = 1 hovers the nominal robot). Per window: predict P += q^2 T (the ratio is
constant up to a slow random walk), H = -g u / r^2, innovation v = y - g u / r, S = H^2 P + R with
R = (accel_noise_std)^2, and the update r += K v, P = (1 - K H) P with K = P H / S only when v^2 <=
gate^2 S (PX4's innovation gate: a touchdown or a push is not a mass change). A refused window
bumps P by ``rejection_bump`` x q^2 T instead (PX4's bumpStateVariance), so an estimate that a
start-up transient threw off re-opens its gate after a few refusals instead of sticking. r is
held within [min_ratio, max_ratio]. The thrust u is the commanded one passed through the
motors' first-order lag (``motor_time_constant_s``, the model's), as the rotors realise it.

Frozen (no update, no prediction: the estimate stays as it was) while the measurement is unusable:
a tick flagged unusable (stale or non-finite odometry, tilt beyond ``max_tilt_rad``, thrust
saturated at the cascade's limits) empties the window, and a window is fused only when all of
its ticks were usable. Pure: no clock, no I/O; :meth:`update` per control tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class HoverThrustParams:
    """The estimator's settings. Units in each field's comment."""

    window_ticks: int = 24  # control ticks per measurement (the velocity difference's span): 0.1 s at 240 Hz
    accel_noise_std_mps2: float = 0.5  # measurement noise of the window's mean vertical acceleration (m/s^2)
    ratio_noise_std: float = 0.01  # random walk of the ratio (1/sqrt(s))
    initial_ratio_std: float = 0.3  # the ratio's standard deviation at reset
    gate: float = 3.0  # innovation gate, in standard deviations
    min_ratio: float = 0.5
    max_ratio: float = 2.0
    max_tilt_rad: float = math.radians(30.0)  # beyond it the vertical thrust is a small difference: no update
    rejection_bump: float = 1000.0  # a refused window adds this many windows' process noise to the variance
    motor_time_constant_s: float = 0.0  # the rotors' lag between commanded and realised thrust (s; 0: none)

    def __post_init__(self) -> None:
        if self.window_ticks < 1:
            raise ValueError(f"HoverThrustParams.window_ticks: expected >= 1, got {self.window_ticks}")
        for name in ("accel_noise_std_mps2", "initial_ratio_std", "gate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HoverThrustParams.{name}: expected > 0, got {getattr(self, name)}")
        if not (self.ratio_noise_std >= 0 and self.rejection_bump >= 0 and self.motor_time_constant_s >= 0):
            raise ValueError("HoverThrustParams: ratio_noise_std, rejection_bump and motor_time_constant_s must be >= 0")
        if not self.ratio_noise_std >= 0:
            raise ValueError(f"HoverThrustParams.ratio_noise_std: expected >= 0, got {self.ratio_noise_std}")
        if not 0 < self.min_ratio <= 1.0 <= self.max_ratio:
            raise ValueError(f"HoverThrustParams: expected 0 < min_ratio <= 1 <= max_ratio, got {self.min_ratio}, {self.max_ratio}")
        if not 0 < self.max_tilt_rad < math.pi / 2:
            raise ValueError(f"HoverThrustParams.max_tilt_rad: expected in (0, pi/2), got {self.max_tilt_rad}")


class HoverThrustEstimator:
    """The thrust ratio r of a quadrotor at control period ``dt`` (s), with gravity ``gravity_mps2``; see the module doc."""

    def __init__(self, params: HoverThrustParams, dt: float, gravity_mps2: float = 9.81) -> None:
        if not dt > 0:
            raise ValueError(f"dt must be > 0, got {dt}")
        self.params = params
        self.dt = float(dt)
        self.gravity = float(gravity_mps2)
        self._window_s = params.window_ticks * self.dt
        self._q = params.ratio_noise_std**2 * self._window_s
        self._r = params.accel_noise_std_mps2**2
        self._cos_max_tilt = math.cos(params.max_tilt_rad)
        tau = params.motor_time_constant_s
        self._lag = 1.0 - math.exp(-self.dt / tau) if tau > 0 else 1.0
        self.reset()

    def reset(self) -> None:
        """Back to the model's ratio (1) with the initial uncertainty; counters cleared."""
        self.ratio = 1.0
        self.variance = self.params.initial_ratio_std**2
        self.fused = 0  # windows fused
        self.rejected = 0  # windows refused by the innovation gate
        self.frozen_ticks = 0  # ticks whose measurement was unusable
        self._start_velocity = math.nan
        self._thrust_sum = 0.0
        self._ticks = 0
        self._realised = math.nan  # the commanded thrust through the motors' lag

    @property
    def std(self) -> float:
        """The ratio's standard deviation."""
        return math.sqrt(self.variance)

    def update(self, velocity_z: float, thrust_z: float, tilt_cos: float, usable: bool = True, saturated: bool = False) -> float:
        """One control tick; returns the ratio to use for the next thrust.

        ``velocity_z``: the vertical velocity measured now (m/s, world, up). ``thrust_z``: the vertical
        component of the collective thrust commanded over the tick that just ended, over the nominal
        weight. ``tilt_cos``: the body z axis' vertical component (cos of the tilt). ``usable``: the
        odometry is fresh and finite; ``saturated``: the thrust of the tick that just ended sat at a
        limit. Any unusable tick empties the window and freezes the estimate.
        """
        if not (usable and not saturated and tilt_cos >= self._cos_max_tilt and math.isfinite(velocity_z) and math.isfinite(thrust_z)):
            self.frozen_ticks += 1
            self._start_velocity = math.nan
            self._ticks = 0
            self._thrust_sum = 0.0
            self._realised = math.nan
            return self.ratio
        self._realised = thrust_z if math.isnan(self._realised) else self._realised + self._lag * (thrust_z - self._realised)
        thrust_z = self._realised
        if math.isnan(self._start_velocity):  # this tick opens a window: its thrust came before the window's start
            self._start_velocity = velocity_z
            return self.ratio
        self._thrust_sum += thrust_z
        self._ticks += 1
        if self._ticks < self.params.window_ticks:
            return self.ratio
        specific_force = (velocity_z - self._start_velocity) / self._window_s + self.gravity
        self._fuse(specific_force, self._thrust_sum / self._ticks)
        self._start_velocity = velocity_z
        self._ticks = 0
        self._thrust_sum = 0.0
        return self.ratio

    def _fuse(self, specific_force: float, thrust: float) -> None:
        p, r = self.params, self.ratio
        self.variance += self._q
        predicted = self.gravity * thrust / r
        h = -predicted / r
        innovation = specific_force - predicted
        s = h * h * self.variance + self._r
        if innovation * innovation > p.gate * p.gate * s:
            self.rejected += 1
            self.variance = min(self.variance + p.rejection_bump * self._q, p.initial_ratio_std**2)
            return
        gain = self.variance * h / s
        self.ratio = min(max(r + gain * innovation, p.min_ratio), p.max_ratio)
        self.variance = max((1.0 - gain * h) * self.variance, 1e-12)
        self.fused += 1
