"""The double-integrator barrier model (p, v; u = a): higher-order CBF rows for obstacles, walls, neighbours and a speed limit.

State ``[p (3), v (3)]`` in the world frame (ENU), input the acceleration ``a`` (3), gravity
excluded: for a quadrotor it is what the cascade's outer loop commands
(:meth:`aegis.controllers.quadrotor_cascade.QuadrotorCascade.compute_acceleration`), and the inner
loops realise it, hover thrust included. ``|a_i| <= max_acceleration`` per axis.

A position barrier ``h(p)`` has relative degree 2 (``h'' = v' H v + g' a`` with ``g = grad h``,
``H`` its Hessian). The higher-order CBF with ``psi_1 = h' + alpha h`` and the condition
``psi_1' + alpha psi_1 >= 0`` (both class-K functions linear with the same ``alpha``: the barrier
then obeys ``h'' + 2 alpha h' + alpha^2 h >= 0``, critically damped) is linear in ``a``::

    g' a >= -v' H v - 2 alpha g' v - alpha^2 h

Sources, each one row (h is the distance minus the robot's radius, see aegis.controllers.cbf.environment):

- obstacles: rounded boxes (spheres, upright cylinders as capsules, yaw-rotated boxes);
- walls (geofence half-spaces): ``h = n . p - offset - radius``, H = 0;
- neighbours (other robots), spheres of their radius plus ours moving at their velocity ``w``: the same
  row with the relative velocity ``v - w``, its right-hand side times ``neighbour_share``. With
  share 1 the neighbour is assumed not to accelerate; with 1/2 (the default) each of two robots
  running this filter takes half of the required separation: the pair's condition
  ``g' (a_i - a_j) >= B`` holds when each meets ``g' a >= B / 2`` with its own gradient (decentralized
  reciprocal filtering, as in Wang, Ames and Egerstedt, "Safety barrier certificates for
  collisions-free multirobot systems", IEEE T-RO 2017);
- the speed limit, relative degree 1: ``h = (v_max^2 - |v|^2) / (2 v_max)`` (m/s, ``v_max - |v|``
  near the limit), ``-(v / v_max)' a >= -speed_alpha h``.

``alpha`` is an input of every tick (:meth:`fill_rows`), so the caller may adapt it online
(aegis.controllers.cbf.adaptive). The backup needs no solver: brake, ``a = clip(-brake_gain v)``.

**A plant that lags** (``actuator_lag``, per axis, s): a real quadrotor does not do the commanded
acceleration at once; its inner loops and motors turn the command ``u`` into an acceleration
``a_l`` through a first-order lag, ``tau a_l' = u - a_l``, and the robot accelerates by ``a = a_l + d``,
with ``d`` a slowly varying bias of an imperfect model (mass, thrust and drag coefficients). With a
lag the state is ``[p, v, a, d_hat]`` (12): the acceleration the caller believes is achieved and its
estimate of the bias (aegis.controllers.cbf.acceleration_model keeps both; ``a - d_hat`` is the lag's
own state, known from the commands), and every position barrier gets one more relative degree. The
rows are third-order CBFs with a triple pole at ``-alpha`` (``h''' + 3 alpha h'' + 3 alpha^2 h' +
alpha^3 h >= 0``, which keeps ``h >= 0`` from any state where ``h``, ``psi_1 = h' + alpha h`` and
``psi_2 = psi_1' + alpha psi_1`` are >= 0), with ``h''' = v'H'v + 3 v'Ha + g' a_l'``::

    sum_i g_i u_i / tau_i >= sum_i g_i (a_i - d_i) / tau_i
                             - v'H'v - 3 v'Ha - 3 alpha (v'Hv + g'a) - 3 alpha^2 g'v - alpha^3 h
                             + model_error (3 alpha sum_i |g_i| + 3 sqrt(3) |Hv|)

``model_error`` (m/s^2) is the declared bound on ``|a - a_believed|`` per axis (what the bias
estimate misses): the last term makes the condition hold for every acceleration within it
(input-to-state safety, Kolathaya and Ames 2019). At rest it keeps ``3 model_error / alpha^2`` of
extra stand-off. The speed limit becomes second order in the same way (double pole at
``-speed_alpha``). With ``sample_period`` (the filter's tick) each ``1 / tau`` is the rate a command
held over one tick achieves, ``(1 - exp(-dt / tau)) / dt``: a lag near the tick is not credited with
more authority than a held command gives. Without a lag (the default) the rows are the second-order ones above and the
state is ``[p, v]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from aegis.controllers.cbf.environment import Environment, Neighbours, box_distance, box_distance_lagged
from aegis.controllers.cbf.rows import ConstraintRows


class DoubleIntegratorModel:
    """Barrier rows and the braking backup of a 3-D point mass of radius ``robot_radius`` (m).

    ``max_acceleration`` (m/s^2, scalar or per axis) bounds each axis; ``max_speed`` (m/s) adds the
    speed-limit barrier (None: none), enforced at rate ``speed_alpha`` (1/s); ``alpha`` (1/s) is the
    default barrier rate; ``brake_gain`` (1/s) the backup's deceleration per m/s.
    """

    state_size = 6
    n_inputs = 3

    def __init__(
        self,
        max_acceleration: float | Sequence[float],
        robot_radius: float,
        max_speed: float | None = None,
        alpha: float = 2.0,
        speed_alpha: float = 5.0,
        neighbour_share: float = 0.5,
        brake_gain: float = 2.0,
        actuator_lag: float | Sequence[float] | None = None,
        model_error: float = 0.0,
        sample_period: float | None = None,
    ) -> None:
        limit = np.broadcast_to(np.asarray(max_acceleration, dtype=float), (3,)).copy()
        if not (np.all(limit > 0) and np.all(np.isfinite(limit))):
            raise ValueError(f"max_acceleration must be finite and > 0, got {max_acceleration}")
        if not (robot_radius >= 0 and math.isfinite(robot_radius)):
            raise ValueError(f"robot_radius must be finite and >= 0, got {robot_radius}")
        if max_speed is not None and not (max_speed > 0 and math.isfinite(max_speed)):
            raise ValueError(f"max_speed must be finite and > 0 (or None), got {max_speed}")
        for name, value in (("alpha", alpha), ("speed_alpha", speed_alpha), ("brake_gain", brake_gain)):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be finite and > 0, got {value}")
        if not 0 < neighbour_share <= 1:
            raise ValueError(f"neighbour_share must be in (0, 1], got {neighbour_share}")
        self.lower, self.upper = -limit, limit.copy()
        self.robot_radius = float(robot_radius)
        self.max_speed = None if max_speed is None else float(max_speed)
        self.default_alpha = float(alpha)
        self.speed_alpha = float(speed_alpha)
        self.neighbour_share = float(neighbour_share)
        self.brake_gain = float(brake_gain)
        if not (model_error >= 0 and math.isfinite(model_error)):
            raise ValueError(f"model_error must be finite and >= 0, got {model_error}")
        self.model_error = float(model_error)
        self.actuator_lag: tuple[float, float, float] | None = None
        if actuator_lag is not None:
            lag = np.broadcast_to(np.asarray(actuator_lag, dtype=float), (3,))
            if not (np.all(lag > 0) and np.all(np.isfinite(lag))):
                raise ValueError(f"actuator_lag must be finite and > 0 per axis (or None), got {actuator_lag}")
            self.actuator_lag = tuple(float(t) for t in lag)
            self.state_size = 12  # [p, v, a, d_hat]
        if sample_period is not None and not (sample_period > 0 and math.isfinite(sample_period)):
            raise ValueError(f"sample_period must be finite and > 0 (or None), got {sample_period}")
        # How fast the lag answers a command held over one sample: (1 - exp(-dt / tau)) / dt, below 1 / tau, so a lag
        # near the sample period is not credited with more authority than one held command gives (1 / tau unsampled).
        self._lag_rates = None if self.actuator_lag is None else tuple(
            1.0 / t if sample_period is None else -math.expm1(-sample_period / t) / sample_period for t in self.actuator_lag
        )

    def default_weights(self) -> np.ndarray:
        """W = I: the change of acceleration counts the same on every axis."""
        return np.ones(3)

    def fill_rows(self, state: np.ndarray, environment: Environment, neighbours: Neighbours, alpha: float, rows: ConstraintRows) -> None:
        """Refill ``rows`` for ``state`` [p, v] (or [p, v, a, d_hat] with a lag): obstacles, walls, neighbours, then the speed limit."""
        if self.actuator_lag is not None:
            self._fill_lagged_rows(state, environment, neighbours, alpha, rows)
            return
        rows.clear()
        add_a, add_b, add_h = rows.a.extend, rows.b.append, rows.h.append
        px, py, pz, vx, vy, vz = state.tolist()
        damping, stiffness = 2.0 * alpha, alpha * alpha
        margin = self.robot_radius
        for obstacle in environment.obstacles:
            distance, gx, gy, gz, curvature = box_distance(px, py, pz, vx, vy, vz, obstacle)
            h = distance - margin
            add_a((gx, gy, gz))
            add_b(-curvature - damping * (gx * vx + gy * vy + gz * vz) - stiffness * h)
            add_h(h)
        for nx, ny, nz, offset in environment.walls:
            h = nx * px + ny * py + nz * pz - offset - margin
            add_a((nx, ny, nz))
            add_b(-damping * (nx * vx + ny * vy + nz * vz) - stiffness * h)
            add_h(h)
        share = self.neighbour_share
        for qx, qy, qz, wx, wy, wz, radius in neighbours.rows:
            rx, ry, rz = vx - wx, vy - wy, vz - wz
            distance, gx, gy, gz, curvature = box_distance(px, py, pz, rx, ry, rz, (qx, qy, qz, 1.0, 0.0, 0.0, 0.0, 0.0, radius))
            h = distance - margin
            add_a((gx, gy, gz))
            add_b(share * (-curvature - damping * (gx * rx + gy * ry + gz * rz) - stiffness * h))
            add_h(h)
        if self.max_speed is not None:
            v_max = self.max_speed
            h = (v_max * v_max - vx * vx - vy * vy - vz * vz) / (2.0 * v_max)
            add_a((-vx / v_max, -vy / v_max, -vz / v_max))
            add_b(-self.speed_alpha * h)
            add_h(h)

    def _fill_lagged_rows(self, state: np.ndarray, environment: Environment, neighbours: Neighbours, alpha: float, rows: ConstraintRows) -> None:
        """The third-order rows of a lagging plant (module doc), in the order of :meth:`fill_rows`."""
        rows.clear()
        add_a, add_b, add_h = rows.a.extend, rows.b.append, rows.h.append
        px, py, pz, vx, vy, vz, ax, ay, az, dx, dy, dz = state.tolist()
        kx, ky, kz = self._lag_rates
        error = self.model_error
        a1, a2, a3 = 3.0 * alpha, 3.0 * alpha * alpha, alpha * alpha * alpha
        lx, ly, lz = ax - dx, ay - dy, az - dz  # the lag's own state: a - d_hat
        curved_margin = 3.0 * math.sqrt(3.0) * error

        def row(gx: float, gy: float, gz: float, h: float, rx: float, ry: float, rz: float, vhv: float, vha: float, change: float, hv: float, share: float) -> None:
            own = kx * gx * lx + ky * gy * ly + kz * gz * lz
            rest = change + 3.0 * vha + a1 * (vhv + gx * ax + gy * ay + gz * az) + a2 * (gx * rx + gy * ry + gz * rz) + a3 * h
            robust = a1 * error * (abs(gx) + abs(gy) + abs(gz)) + curved_margin * hv
            add_a((kx * gx, ky * gy, kz * gz))
            add_b(own + share * (robust - rest))
            add_h(h)

        margin = self.robot_radius
        for obstacle in environment.obstacles:
            h, gx, gy, gz, vhv, vha, change, hv = box_distance_lagged(px, py, pz, vx, vy, vz, ax, ay, az, obstacle)
            row(gx, gy, gz, h - margin, vx, vy, vz, vhv, vha, change, hv, 1.0)
        for nx, ny, nz, offset in environment.walls:
            row(nx, ny, nz, nx * px + ny * py + nz * pz - offset - margin, vx, vy, vz, 0.0, 0.0, 0.0, 0.0, 1.0)
        for qx, qy, qz, wx, wy, wz, radius in neighbours.rows:
            rx, ry, rz = vx - wx, vy - wy, vz - wz  # the neighbour is taken as not accelerating
            h, gx, gy, gz, vhv, vha, change, hv = box_distance_lagged(
                px, py, pz, rx, ry, rz, ax, ay, az, (qx, qy, qz, 1.0, 0.0, 0.0, 0.0, 0.0, radius)
            )
            row(gx, gy, gz, h - margin, rx, ry, rz, vhv, vha, change, hv, self.neighbour_share)
        if self.max_speed is not None:
            v_max, beta = self.max_speed, self.speed_alpha
            h = (v_max * v_max - vx * vx - vy * vy - vz * vz) / (2.0 * v_max)
            worst = (
                ax * ax + ay * ay + az * az + 2.0 * error * (abs(ax) + abs(ay) + abs(az)) + 3.0 * error * error
                + 2.0 * beta * (vx * ax + vy * ay + vz * az + error * (abs(vx) + abs(vy) + abs(vz)))
            )
            add_a((-kx * vx / v_max, -ky * vy / v_max, -kz * vz / v_max))
            add_b((worst - (kx * vx * lx + ky * vy * ly + kz * vz * lz)) / v_max - beta * beta * h)
            add_h(h)

    def constraint_names(self, environment: Environment, neighbours: Neighbours) -> list[str]:
        """The name of each row :meth:`fill_rows` adds, in order."""
        names = [*environment.obstacle_names, *environment.wall_names, *(f"neighbour {i}" for i in range(len(neighbours)))]
        return names + (["speed limit"] if self.max_speed is not None else [])

    def backup(self, state: np.ndarray) -> np.ndarray:
        """Brake: ``a = clip(-brake_gain v)`` per axis (hover, the gravity part, is the inner loop's business)."""
        return np.clip(-self.brake_gain * state[3:6], self.lower, self.upper)

    def estop_command(self) -> np.ndarray:
        """The command that goes out with an e-stop (zero acceleration); the supervisor decides what e-stop means for the actuators."""
        return np.zeros(3)
