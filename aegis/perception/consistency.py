"""NEES consistency runs of the estimators: randomized trajectories drawn from each filter's own model, and a report.

Each run draws a truth that moves as the filter's model says (seeded random accelerations, turn
rates, lateral slip, IMU biases), sensors with the noise their measurements declare (a noise scale
drawn in [0.5, 2] per run), pose measurements 0 to 7 IMU periods late and one pose in 97 moved
0.5 m (an outlier the gate must reject). For a consistent filter the NEES of its error, averaged
over N runs, is chi-square with N x dof degrees over N (Bar-Shalom, Li, Kirubarajan, "Estimation
with Applications to Tracking and Navigation", 2001, section 5.4); tests/test_state_estimation.py
checks it against the 95 % interval, and ``python -m aegis.perception.consistency`` prints it.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from aegis.perception.diff_drive_ekf import DiffDriveEkfParams, DiffDriveEstimator, PoseFixEvent, WheelOdometryEvent, YawRateEvent
from aegis.perception.ekf import average_nees_bounds, nees
from aegis.perception.quadrotor_eskf import ImuEvent, PoseEvent, QuadrotorEskfParams, QuadrotorEstimator
from aegis.rotations import quat_exp, quat_multiply, quaternion_to_matrix, wrap_angle

RATE_HZ = 240.0
DT = 1.0 / RATE_HZ
OUTLIER_EVERY = 97
"""One pose in this many is moved 0.5 m: an outlier."""


def quadrotor_run(seed: int, duration_s: float = 2.0) -> tuple[np.ndarray, QuadrotorEstimator, int, int]:
    """One randomized run: (NEES of (p, v, theta) per step after the first second, the estimator, outliers injected, poses rejected)."""
    rng = np.random.default_rng(seed)
    params = QuadrotorEskfParams()
    scale = rng.uniform(0.5, 2.0)  # the sensors' noise, declared in the measurements' covariances
    delay = int(rng.integers(0, 8))  # motion capture 0..7 IMU periods late
    sa, sg, sp, sq = 0.02 * scale, 0.003 * scale, 0.002 * scale, 0.005 * scale
    est = QuadrotorEstimator(params)
    g = np.array([0.0, 0.0, -9.81])
    p, v, q = np.array([0.0, 0.0, 1.0]), np.zeros(3), quat_exp(np.array([0.0, 0.0, rng.uniform(-3, 3)]))
    ba, bg = rng.normal(0, 0.05, 3), rng.normal(0, 0.01, 3)
    phase = rng.uniform(0, 6, 6)
    pending: list[tuple[float, PoseEvent]] = []
    values, outliers = [], 0
    steps = int(duration_s * RATE_HZ)
    for k in range(steps + 1):
        t = k * DT
        if k > 0:
            a_world = 1.5 * np.sin(1.3 * t + phase[:3])
            w = 0.8 * np.sin(2.1 * t + phase[3:])
            specific_force = quaternion_to_matrix(q).T @ (a_world - g)
            p, v = p + v * DT + 0.5 * DT * DT * a_world, v + a_world * DT
            q = quat_multiply(q, quat_exp(w * DT))
            q /= np.linalg.norm(q)
            ba = ba + rng.normal(0, params.accel_bias_walk * math.sqrt(DT), 3)
            bg = bg + rng.normal(0, params.gyro_bias_walk * math.sqrt(DT), 3)
            est.imu(t, ImuEvent(specific_force + ba + rng.normal(0, sa, 3), w + bg + rng.normal(0, sg, 3), sa * sa, sg * sg))
        position = p + rng.normal(0, sp, 3)
        if k % OUTLIER_EVERY == 50:
            position, outliers = position + 0.5, outliers + 1
        orientation = quat_multiply(q, quat_exp(rng.normal(0, sq, 3)))
        pending.append((t, PoseEvent(position, orientation, None, np.full(3, sp * sp), np.full(3, sq * sq))))
        if len(pending) > delay:
            est.pose(*pending.pop(0))
        if t >= 1.0:
            values.append(nees(est.eskf.error(p, v, q), est.eskf.P[:9, :9]))
    return np.array(values), est, outliers, est.rejected_poses



def diff_drive_run(seed: int, duration_s: float = 2.5) -> tuple[np.ndarray, DiffDriveEstimator, int, int]:
    """One randomized run of the unicycle the EKF models: (NEES of (x, y, theta, v, omega, b_g) per step after 1 s,
    the estimator, outliers injected, fixes rejected)."""
    rng = np.random.default_rng(seed)
    params = DiffDriveEkfParams(accel_noise_density=0.5, angular_accel_noise_density=0.5, lateral_slip_density=0.05)
    scale = rng.uniform(0.5, 2.0)
    delay = int(rng.integers(0, 8))
    s_wheel, s_gyro, s_pos, s_yaw = 0.02 * scale, 0.005 * scale, 0.005 * scale, 0.005 * scale
    est = DiffDriveEstimator(params)
    x = np.array([0.0, 0.0, rng.uniform(-3, 3), 0.5, 0.0, rng.normal(0, 0.01)])
    pending: list[tuple[float, PoseFixEvent]] = []
    values, outliers, rejected_fixes = [], 0, 0
    for k in range(int(duration_s * RATE_HZ) + 1):
        t = k * DT
        if k > 0:
            th, v, w = x[2], x[3], x[4]
            slip = rng.normal(0, params.lateral_slip_density * math.sqrt(DT))
            x = x + np.array([v * math.cos(th) * DT - math.sin(th) * slip, v * math.sin(th) * DT + math.cos(th) * slip, w * DT, 0, 0, 0])
            x[2] = wrap_angle(x[2])
            x[3] += rng.normal(0, params.accel_noise_density * math.sqrt(DT))
            x[4] += rng.normal(0, params.angular_accel_noise_density * math.sqrt(DT))
            x[5] += rng.normal(0, params.gyro_bias_walk * math.sqrt(DT))
        fix = PoseFixEvent(x[0] + rng.normal(0, s_pos), x[1] + rng.normal(0, s_pos), x[2] + rng.normal(0, s_yaw), s_pos**2, s_yaw**2)
        if k % OUTLIER_EVERY == 50:
            fix, outliers = PoseFixEvent(fix.x + 0.5, fix.y, fix.heading, s_pos**2, s_yaw**2), outliers + 1
        pending.append((t, fix))
        if len(pending) > delay:
            rejected_fixes += est.process(*pending.pop(0)) == "rejected"
        if k > 0:
            est.process(t, WheelOdometryEvent(x[3] + rng.normal(0, s_wheel), x[4] + rng.normal(0, s_wheel), s_wheel**2, s_wheel**2))
            est.process(t, YawRateEvent(x[4] + x[5] + rng.normal(0, s_gyro), s_gyro**2))
        if t >= 1.0:
            error = x - est.ekf.x
            error[2] = wrap_angle(error[2])
            values.append(nees(error, est.ekf.P))
    return np.array(values), est, outliers, rejected_fixes



def report(runs: int, quadrotor_s: float, diff_drive_s: float) -> list[dict[str, float]]:
    """One row per filter: the N-run average NEES (mean over time), its 95 % interval, the share of steps inside it, outliers."""
    rows = []
    for name, run, dof, duration in (("quadrotor_eskf", quadrotor_run, 9, quadrotor_s), ("diff_drive_ekf", diff_drive_run, 6, diff_drive_s)):
        results = [run(seed, duration) for seed in range(runs)]
        average = np.mean([r[0] for r in results], axis=0)
        low, high = average_nees_bounds(dof, runs)
        rows.append(
            {
                "filter": name,
                "dof": dof,
                "average_nees": float(average.mean()),
                "bound_low": low,
                "bound_high": high,
                "steps_inside": float(np.mean((average > low) & (average < high))),
                "outliers": sum(r[2] for r in results),
                "rejected": sum(r[3] for r in results),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aegis.perception.consistency", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="randomized runs per filter (seeds 0..N-1)")
    parser.add_argument("--quadrotor-s", type=float, default=2.0, help="seconds per quadrotor run (NEES from 1 s on)")
    parser.add_argument("--diff-drive-s", type=float, default=2.5, help="seconds per diff-drive run (NEES from 1 s on)")
    args = parser.parse_args(argv)
    print(f"{'filter':<16}{'dof':>4}{'avg NEES':>10}{'95 % interval':>18}{'steps inside':>14}{'outliers':>10}{'rejected':>10}")
    for r in report(args.runs, args.quadrotor_s, args.diff_drive_s):
        interval = f"{r['bound_low']:.2f} .. {r['bound_high']:.2f}"
        print(f"{r['filter']:<16}{r['dof']:>4}{r['average_nees']:>10.2f}{interval:>18}{r['steps_inside']:>14.0%}{r['outliers']:>10}{r['rejected']:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
