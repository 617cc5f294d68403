"""Quadrotor identification: rotor lag, thrust and torque coefficients, rotor drag, latency and accelerometer bias from a bag.

The model is the simulator's own physics (aegis.sim.pybullet_world), written per tick ``dt`` with
every unknown as a dimensionless scale of the config's nominal value:

* rotor speeds follow the commands given ``D`` ticks earlier through the first-order lag
  ``w[j] = w[j-1] + a (clip(c[j-D]) - w[j-1])``, ``a = 1 - exp(-dt / (s_tau tau0))``;
* specific force (IMU, body frame): ``f_z = s_T T0(w) / m0 - s_Dz Dz0(w, v) / m0 + b_z`` with
  ``T0 = mix0[0] @ w^2`` the nominal thrust and ``D0 = c0 sum(w) v_body`` the nominal rotor drag;
  ``f_x, f_y`` the drag alone plus a bias;
* body rates (gyro): ``(gyro[j] - gyro[j-1]) / dt = s_axis tau0_axis(w) / I0_axis`` plus the
  gyroscopic term with the nominal inertia ratios.

For a given (D, s_tau) every other scale enters linearly: each channel is solved by linear least
squares (variable projection), ``s_tau`` by a bounded scalar search and ``D`` on a grid of whole
ticks. Confidence intervals come from the Jacobian of the whole problem at the optimum
(scipy.optimize.least_squares), the residual variance per channel as weights, and the delta method
for the hw_config values.

Jointly identifiable only as products: a thrust scale ``s_T = (kf / kf0)(m0 / m)`` (kf / m),
roll and pitch ``(kf / kf0)(I0 / I)``, yaw ``(km / km0)(Izz0 / Izz)``. Without a weighing the
overlay holds kf at the config's value and attributes ``s_T`` to the mass and the roll/pitch
scales to the inertia; ``Izz`` scales with the mean of x and y (one inertia scale, as the
dynamics sets draw it), so km follows from the yaw scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares, minimize_scalar
from scipy.signal import lfilter

from aegis.config import RobotConfig
from aegis.controllers.quadrotor_model import QuadrotorModel
from aegis.sysid.series import Series, SysidError

BUILTIN_DELAY_TICKS = 1
"""Ticks from the first tick a command acts on (aegis.sysid.series places it there) to the sample that shows it, with no added latency.

The actuators take the command over that tick's physics step, and the IMU (or encoder) sample
stamped at the step's end measures it. The sim's ``actuation_latency_s`` is the delay identified
beyond this tick.
"""

MAX_DELAY_TICKS = 16
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """One identified quantity: its value, 95 % confidence half-width, and whether the bag determined it."""

    name: str
    value: float
    ci95: float
    unit: str
    identified: bool
    note: str = ""

    @property
    def relative_ci(self) -> float:
        return abs(self.ci95 / self.value) if self.value != 0.0 else float("inf")


@dataclass
class QuadrotorFit:
    """The fit: the scales (dimensionless, 1 = nominal), the hw_config values, the delay profile and the fit's quality."""

    scales: dict[str, Estimate]
    values: dict[str, Estimate]
    delay_ticks: int
    delay_cost: dict[int, float]
    dt_s: float
    samples: int
    condition_number: float
    residual_std: dict[str, float] = field(default_factory=dict)


SCALES = ("thrust", "drag_x", "drag_y", "drag_z", "roll", "pitch", "yaw")
"""The linear scales, after the lag scale (``tau``) in the parameter vector; then the three accelerometer biases."""


def identify_quadrotor(series: Series, robot: RobotConfig, rel_ci_limit: float = 0.05) -> QuadrotorFit:
    """Fit the quadrotor model to ``series``; SysidError without an IMU or without enough excitation."""
    if not series.has_imu:
        raise SysidError("the quadrotor identification needs the IMU (/imu): its specific force carries thrust and drag")
    model = QuadrotorModel.from_robot(robot)
    problem = _Problem(series, model, robot.quadrotor.rotor_drag_coeff)
    costs: dict[int, float] = {}
    best: tuple[float, int, float] | None = None
    for delay in range(1, MAX_DELAY_TICKS + 1):
        result = minimize_scalar(lambda log_s, d=delay: problem.cost(d, np.exp(log_s)), bounds=(np.log(0.1), np.log(10.0)),
                                 method="bounded", options={"xatol": 1e-4})
        costs[delay] = float(result.fun)
        if best is None or result.fun < best[0]:
            best = (float(result.fun), delay, float(np.exp(result.x)))
    assert best is not None
    _, delay, tau_scale = best
    theta0 = np.concatenate([[tau_scale], problem.linear(delay, tau_scale)])
    weights = problem.channel_std(delay, theta0)
    fit = least_squares(lambda th: problem.residuals(delay, th) / weights[problem.channel], theta0, method="lm", x_scale="jac")
    jac = fit.jac
    dof = max(1, jac.shape[0] - jac.shape[1])
    sigma2 = 2.0 * fit.cost / dof
    jtj = jac.T @ jac
    covariance = np.linalg.pinv(jtj) * sigma2
    scaled = np.sqrt(np.diag(jtj))
    condition = float(np.linalg.cond(jtj / np.outer(scaled, scaled)))
    theta = fit.x
    names = ("tau", *SCALES, "bias_x", "bias_y", "bias_z")
    scales = {}
    for i, name in enumerate(names):
        ci = Z95 * float(np.sqrt(max(covariance[i, i], 0.0)))
        unit = "m/s^2" if name.startswith("bias") else "x nominal"
        ok = ci <= 0.05 if name.startswith("bias") else ci <= rel_ci_limit * abs(theta[i])
        scales[name] = Estimate(name, float(theta[i]), ci, unit, bool(ok))
    # Delay: identified when both neighbours are clearly less likely (likelihood ratio 2 x cost difference > chi2(1) 95 %).
    neighbours = [costs[d] for d in (delay - 1, delay + 1) if d in costs]
    margin = 2.0 * (min(neighbours) - costs[delay]) if neighbours else 0.0
    values = _hw_values(robot, theta, covariance, rel_ci_limit, scales)
    dt = series.dt_s
    actuation = (delay - BUILTIN_DELAY_TICKS) * dt
    values["actuation_latency_s"] = Estimate(
        "actuation_latency_s", max(actuation, 0.0), 0.5 * dt, "s", bool(margin > 3.84 and actuation >= -0.5 * dt),
        f"{delay} ticks from command to response ({BUILTIN_DELAY_TICKS} are the lockstep sim's own)",
    )
    values["sensing_latency_s"] = Estimate(
        "sensing_latency_s", series.sensing_latency_s, 0.5 * dt, "s", True, "median of log time - header stamp on /imu",
    )
    for axis in "xyz":
        bias = scales[f"bias_{axis}"]
        values[f"imu.accel_bias_{axis}"] = Estimate(
            f"imu.accel_bias_{axis}", bias.value, bias.ci95, bias.unit, bias.identified, "no hw_config key: reported, not in the overlay"
        )
    residual = problem.residuals(delay, theta)
    stds = {name: float(np.std(residual[problem.channel == i])) for i, name in enumerate(_Problem.CHANNELS)}
    return QuadrotorFit(scales, values, delay, costs, dt, int(problem.rows.size), condition, stds)


def _hw_values(robot: RobotConfig, theta: np.ndarray, covariance: np.ndarray, limit: float, scales: dict[str, Estimate]) -> dict[str, Estimate]:
    """The hw_config values (kf held at the config's) with delta-method 95 % intervals."""
    q = robot.quadrotor
    m0, i0 = robot.mass_kg, np.asarray(q.inertia_kg_m2, dtype=float)
    c0 = np.asarray(q.rotor_drag_coeff, dtype=float)

    def inertia_scale(t: np.ndarray) -> float:
        return 0.5 * (1.0 / t[5] + 1.0 / t[6])

    functions = {
        "robot.mass_kg": (lambda t: m0 / t[1], "kg", ("thrust",)),
        "robot.quadrotor.motor_time_constant_s": (lambda t: q.motor_time_constant_s * t[0], "s", ("tau",)),
        "robot.quadrotor.inertia_kg_m2.x": (lambda t: i0[0] / t[5], "kg m^2", ("roll",)),
        "robot.quadrotor.inertia_kg_m2.y": (lambda t: i0[1] / t[6], "kg m^2", ("pitch",)),
        "robot.quadrotor.inertia_kg_m2.z": (lambda t: i0[2] * inertia_scale(t), "kg m^2", ("roll", "pitch")),
        "robot.quadrotor.km": (lambda t: q.km * t[7] * inertia_scale(t), "N m/(rad/s)^2", ("yaw", "roll", "pitch")),
        "robot.quadrotor.rotor_drag_coeff.x": (lambda t: c0[0] * t[2] / t[1], "kg/rad", ("drag_x", "thrust")),
        "robot.quadrotor.rotor_drag_coeff.y": (lambda t: c0[1] * t[3] / t[1], "kg/rad", ("drag_y", "thrust")),
        "robot.quadrotor.rotor_drag_coeff.z": (lambda t: c0[2] * t[4] / t[1], "kg/rad", ("drag_z", "thrust")),
    }
    values = {}
    for name, (function, unit, needs) in functions.items():
        value = function(theta)
        gradient = np.zeros(theta.size)
        for i in range(theta.size):
            step = 1e-6 * max(1.0, abs(theta[i]))
            bumped = theta.copy()
            bumped[i] += step
            gradient[i] = (function(bumped) - value) / step
        ci = Z95 * float(np.sqrt(max(gradient @ covariance @ gradient, 0.0)))
        ok = ci <= limit * abs(value) and all(scales[s].identified for s in needs)
        values[name] = Estimate(name, float(value), ci, unit, bool(ok))
    return values


class _Problem:
    """The residuals of the quadrotor model on a series, per (delay, parameters)."""

    CHANNELS = ("accel_x", "accel_y", "accel_z", "roll_accel", "pitch_accel", "yaw_accel")

    def __init__(self, series: Series, model: QuadrotorModel, drag0: tuple[float, float, float]) -> None:
        self.series, self.model = series, model
        self.dt = series.dt_s
        gyro, accel, velocity = series.gyro, series.accel, series.velocity_body
        n = series.time_s.size
        j = np.arange(MAX_DELAY_TICKS + 1, n)
        previous = j - 1
        usable = np.all(np.isfinite(accel[j]), axis=1) & np.all(np.isfinite(gyro[j]), axis=1)
        usable &= np.all(np.isfinite(gyro[previous]), axis=1) & np.all(np.isfinite(velocity[previous]), axis=1)
        self.rows = j[usable]
        if self.rows.size < 200:
            raise SysidError(f"only {self.rows.size} ticks have both IMU and odometry: at least 200 are needed")
        r = self.rows
        self.velocity = velocity[r - 1]
        self.accel = accel[r]
        inertia = model.inertia_kg_m2
        w_prev, w_now = gyro[r - 1], gyro[r]
        rate = (w_now - w_prev) / self.dt
        mean = 0.5 * (w_prev + w_now)
        gyroscopic = np.cross(mean, mean * inertia) / inertia  # (w x I w) / I, nominal ratios
        self.angular = rate + gyroscopic
        # The IMU reads the step's force in the body frame at its end: thrust along the start's body z, turned by the
        # step's rotation phi = w dt into (-phi_y, phi_x, 1) of the end's frame.
        self.turn = np.column_stack([-mean[:, 1], mean[:, 0]]) * self.dt
        self.commands = np.clip(series.command, 0.0, model.max_motor_speed_radps)
        self.drag0 = np.asarray(drag0, dtype=float)
        self.channel = np.repeat(np.arange(6), r.size)

    def rotor_speeds(self, delay: int, tau_scale: float) -> np.ndarray:
        """Rotor speeds at the fitted rows: the lag of the commands ``delay`` ticks earlier (starting at the first command)."""
        a = 1.0 - np.exp(-self.dt / (self.model.motor_time_constant_s * tau_scale))
        applied = np.concatenate([np.repeat(self.commands[:1], delay, axis=0), self.commands[:-delay]])
        zi = (1.0 - a) * applied[0]
        speeds = lfilter([a], [1.0, -(1.0 - a)], applied, axis=0, zi=zi[None, :])[0]
        return speeds[self.rows]

    def regressors(self, delay: int, tau_scale: float) -> list[np.ndarray]:
        """Per channel, the columns the channel's linear scales multiply (bias columns included for the accelerometer)."""
        w = self.rotor_speeds(delay, tau_scale)
        squared = w * w
        wrench = squared @ self.model.mix.T  # thrust, roll, pitch, yaw torques, nominal coefficients
        m0, inertia = self.model.mass_kg, self.model.inertia_kg_m2
        drag = -(w.sum(axis=1)[:, None] * self.velocity) * self.drag0 / m0  # per axis, nominal coefficients
        ones = np.ones(self.rows.size)
        thrust = wrench[:, 0] / m0
        return [
            np.column_stack([drag[:, 0], ones, thrust * self.turn[:, 0]]),
            np.column_stack([drag[:, 1], ones, thrust * self.turn[:, 1]]),
            np.column_stack([wrench[:, 0] / m0, drag[:, 2], ones]),
            (wrench[:, 1] / inertia[0])[:, None],
            (wrench[:, 2] / inertia[1])[:, None],
            (wrench[:, 3] / inertia[2])[:, None],
        ]

    def targets(self) -> list[np.ndarray]:
        return [self.accel[:, 0], self.accel[:, 1], self.accel[:, 2], self.angular[:, 0], self.angular[:, 1], self.angular[:, 2]]

    def _solve(self, delay: int, tau_scale: float) -> tuple[list[np.ndarray], float]:
        cost = 0.0
        solutions = []
        columns_all = self.regressors(delay, tau_scale)
        targets = self.targets()
        thrust_scale = np.linalg.lstsq(columns_all[2], targets[2], rcond=None)[0][0]  # the turn terms share it
        for i, (columns, target) in enumerate(zip(columns_all, targets)):
            if i < 2:  # x, y: the turned thrust is known given the thrust scale
                target = target - thrust_scale * columns[:, 2]
                columns = columns[:, :2]
            solution, *_ = np.linalg.lstsq(columns, target, rcond=None)
            residual = target - columns @ solution
            cost += 0.5 * self.rows.size * np.log(residual @ residual / self.rows.size)  # each channel at its own noise level
            solutions.append(solution)
        return solutions, cost

    def cost(self, delay: int, tau_scale: float) -> float:
        return self._solve(delay, tau_scale)[1]

    def linear(self, delay: int, tau_scale: float) -> np.ndarray:
        """The linear scales then the biases, in the parameter vector's order (SCALES, bias_x, bias_y, bias_z)."""
        (dx, bx), (dy, by), (thrust, dz, bz), (roll,), (pitch,), (yaw,) = self._solve(delay, tau_scale)[0]
        return np.array([thrust, dx, dy, dz, roll, pitch, yaw, bx, by, bz])

    def residuals(self, delay: int, theta: np.ndarray) -> np.ndarray:
        tau_scale, thrust, dx, dy, dz, roll, pitch, yaw, bx, by, bz = theta
        cols = self.regressors(delay, tau_scale)
        predicted = [
            cols[0] @ [dx, bx, thrust], cols[1] @ [dy, by, thrust], cols[2] @ [thrust, dz, bz],
            cols[3][:, 0] * roll, cols[4][:, 0] * pitch, cols[5][:, 0] * yaw,
        ]
        return np.concatenate([t - p for t, p in zip(self.targets(), predicted)])

    def channel_std(self, delay: int, theta: np.ndarray) -> np.ndarray:
        residual = self.residuals(delay, theta)
        return np.array([max(float(np.std(residual[self.channel == i])), 1e-12) for i in range(6)])


