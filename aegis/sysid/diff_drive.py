"""Ground robot (diff drive) identification: wheel lag, latency and the effective kinematics from commands, encoders and odometry.

The model is the simulator's (aegis.sim.diff_drive_world), per tick ``dt``:

* each side's wheel speed (the encoders on ``/joint_states``) follows the wheel command given ``D``
  ticks earlier through the first-order lag ``w[j] = w[j-1] + a (clip(c[j-D]) - w[j-1])``,
  ``a = 1 - exp(-dt / tau)`` (the wheels' speed controllers hold it unless their torque limit binds);
* the body's forward speed (``/odom``) is ``r_eff (w_l + w_r) / 2`` and its turn rate
  ``r_eff (w_r - w_l) / (track x multiplier)``: the effective wheel radius (slip included) and the
  skid-steer's effective track, which the controllers' kinematics use (wheel_radius_m,
  wheel_separation_multiplier).

``D`` on a grid of whole ticks and ``tau`` by a bounded scalar search fit the encoders, leaving out
the ticks where the torque limit holds a wheel back (trimmed least squares: what a fit cannot
explain by more than 6 robust standard deviations, refitted three times); the kinematics are linear least squares on the measured wheel speeds. Confidence intervals use the
residual variance with the sample count cut to its effective size (the residuals of a skid-steer's
turn rate chatter: lag-1 autocorrelation ``rho`` leaves ``n (1 - rho) / (1 + rho)`` independent samples).

Not identified: the mass, inertia and the wheels' torque limit. The speed controllers hide them;
they show only where the torque limit binds (hard turns, a push, a climb), the ticks this fit leaves
out; a model of those ticks (a wheel acceleration limit) is planned.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares, minimize_scalar
from scipy.signal import lfilter

from aegis.config import RobotConfig
from aegis.sysid.quadrotor import BUILTIN_DELAY_TICKS, MAX_DELAY_TICKS, Z95, Estimate
from aegis.sysid.series import Series, SysidError

HIDDEN_NOTE = "hidden by the wheel speed controllers: shows only where the torque limit binds, ticks the fit leaves out"
TRIM_PASSES = 3
"""Fits of the wheel lag, each leaving out the ticks the previous one could not explain (torque-limited wheels)."""
TRIM_FLOOR_RADPS = 0.02
"""A tick is left out only when a wheel is off the lag by more than this (rad/s) and 6 robust standard deviations."""


def identify_diff_drive(series: Series, robot: RobotConfig, rel_ci_limit: float = 0.05) -> tuple[dict[str, Estimate], dict]:
    """The estimates under the overlay's keys and the fit's numbers; SysidError without wheel encoders or motion."""
    if series.wheels is None:
        raise SysidError("the diff_drive identification needs the wheel encoders (/joint_states): the wheel lag shows there")
    dd = robot.diff_drive
    dt = series.dt_s
    commands = np.clip(series.command, -dd.max_wheel_speed_radps, dd.max_wheel_speed_radps)
    wheels = series.wheels
    rows = np.arange(MAX_DELAY_TICKS + 1, series.time_s.size)
    rows = rows[np.all(np.isfinite(wheels[rows]), axis=1) & np.isfinite(series.velocity_body[rows, 0]) & np.isfinite(series.yaw_rate[rows])]
    if rows.size < 200:
        raise SysidError(f"only {rows.size} ticks have both wheel encoders and odometry: at least 200 are needed")
    measured = wheels[rows]
    if np.std(measured) < 0.1:
        raise SysidError("the wheels hardly turned: nothing to identify (fly the excitation scenario, husky_sysid)")

    keep = np.ones(rows.size, dtype=bool)  # ticks where the wheels follow the lag (not held back by the torque limit)

    def residual(delay: int, tau_scale: float) -> np.ndarray:
        a = 1.0 - np.exp(-dt / (dd.motor_time_constant_s * tau_scale))
        applied = np.concatenate([np.repeat(commands[:1], delay, axis=0), commands[:-delay]])
        lagged = lfilter([a], [1.0, -(1.0 - a)], applied, axis=0, zi=((1.0 - a) * applied[0])[None, :])[0]
        return measured - lagged[rows]

    def cost(delay: int, tau_scale: float) -> float:
        r = residual(delay, tau_scale)[keep].ravel()
        return 0.5 * r.size * float(np.log(r @ r / r.size))

    for _ in range(TRIM_PASSES):
        costs: dict[int, float] = {}
        best = None
        for delay in range(1, MAX_DELAY_TICKS + 1):
            found = minimize_scalar(lambda s, d=delay: cost(d, np.exp(s)), bounds=(np.log(0.1), np.log(10.0)), method="bounded",
                                    options={"xatol": 1e-5})
            costs[delay] = float(found.fun)
            if best is None or found.fun < best[0]:
                best = (float(found.fun), delay, float(np.exp(found.x)))
        _, delay, tau_scale = best
        # Where the torque limit binds the wheels fall behind the lag (and catch up after): leave those ticks out.
        error = np.abs(residual(delay, tau_scale)).max(axis=1)
        spread = 1.4826 * np.median(np.abs(residual(delay, tau_scale)[keep]))
        keep = error <= max(6.0 * spread, TRIM_FLOOR_RADPS)
    fit = least_squares(lambda th: residual(delay, th[0])[keep].ravel(), [tau_scale])
    tau_scale = float(fit.x[0])
    tau_ci = _ci(fit.fun, fit.jac)[0]
    neighbours = [costs[d] for d in (delay - 1, delay + 1) if d in costs]
    margin = 2.0 * (min(neighbours) - costs[delay]) if neighbours else 0.0

    mean_speed = measured.mean(axis=1)
    forward = series.velocity_body[rows, 0]
    x_v = mean_speed[:, None]
    radius, *_ = np.linalg.lstsq(x_v, forward, rcond=None)
    radius_ci = _ci(forward - x_v @ radius, x_v)[0]
    r_eff = float(radius[0])
    x_w = (r_eff * (measured[:, 1] - measured[:, 0]) / dd.track_width_m)[:, None]
    turn = series.yaw_rate[rows]
    inverse, *_ = np.linalg.lstsq(x_w, turn, rcond=None)
    inverse_ci = _ci(turn - x_w @ inverse, x_w)[0]
    multiplier = 1.0 / float(inverse[0])
    multiplier_ci = inverse_ci * multiplier**2  # delta method on 1/x

    tau = dd.motor_time_constant_s * tau_scale
    tau_ci_s = dd.motor_time_constant_s * tau_ci
    actuation = (delay - BUILTIN_DELAY_TICKS) * dt
    estimates = {
        "robot.diff_drive.motor_time_constant_s": Estimate(
            "robot.diff_drive.motor_time_constant_s", tau, tau_ci_s, "s", bool(tau_ci_s <= rel_ci_limit * tau), "from the wheel encoders"),
        "robot.diff_drive.wheel_radius_m": Estimate(
            "robot.diff_drive.wheel_radius_m", r_eff, radius_ci, "m", bool(radius_ci <= rel_ci_limit * r_eff),
            "effective: forward speed over wheel speed (slip included)"),
        "robot.diff_drive.wheel_separation_multiplier": Estimate(
            "robot.diff_drive.wheel_separation_multiplier", multiplier, multiplier_ci, "",
            bool(multiplier_ci <= rel_ci_limit * multiplier and multiplier >= 1.0), "effective track / track_width_m"),
        "actuation_latency_s": Estimate(
            "actuation_latency_s", max(actuation, 0.0), 0.5 * dt, "s", bool(margin > 3.84 and actuation >= -0.5 * dt),
            f"{delay} ticks from command to encoder ({BUILTIN_DELAY_TICKS} are the lockstep sim's own)"),
        "sensing_latency_s": Estimate(
            "sensing_latency_s", series.sensing_latency_s, 0.5 * dt, "s", True, "median of log time - header stamp on /joint_states"),
    }
    for key, value in (("robot.mass_kg", robot.mass_kg), ("robot.diff_drive.max_wheel_torque_nm", dd.max_wheel_torque_nm)):
        estimates[key] = Estimate(key, float(value), float("inf"), "", False, HIDDEN_NOTE)
    details = {
        "samples": int(rows.size), "torque_limited_ticks": int((~keep).sum()), "dt_s": dt, "delay_ticks": delay, "delay_cost": costs,
        "jointly_identifiable": "the wheel radius with slip (an effective radius); mass, inertia and torque limit only "
        "where the torque limit binds, which this fit leaves out (a model of those ticks is planned)",
    }
    return estimates, details


def _ci(residual: np.ndarray, jacobian: np.ndarray) -> np.ndarray:
    """95 % half-widths of least-squares parameters, the sample count cut to its effective size for autocorrelated residuals."""
    residual = np.asarray(residual, dtype=float).ravel()
    n, p = jacobian.shape
    rho = float(np.corrcoef(residual[:-1], residual[1:])[0, 1]) if residual.size > 2 else 0.0
    inflation = max(1.0, (1.0 + rho) / max(1.0 - rho, 1e-6))
    sigma2 = residual @ residual / max(1, n - p)
    covariance = np.linalg.pinv(jacobian.T @ jacobian) * sigma2 * inflation
    return Z95 * np.sqrt(np.clip(np.diag(covariance), 0.0, None))
