"""The safety filter's plant model: lagged third-order barrier rows, the acceleration model's prediction and bias observer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.controllers.cbf import CbfSafetyFilter, DoubleIntegratorModel, Environment
from aegis.controllers.cbf.acceleration_model import AccelerationModel
from aegis.controllers.cbf.environment import box_distance, box_distance_lagged
from aegis.msgs import Obstacle, Obstacles

LAG = (0.19, 0.19, 0.05)


def _sphere_env(center=(1.0, 0.0, 1.0), diameter=0.4) -> Environment:
    msg = Obstacles(stamp=0.0, obstacles=[Obstacle(id=0, shape="sphere", position=np.array(center), size=np.full(3, diameter))])
    return Environment.build(msg.obstacles, ())


@pytest.mark.parametrize("obstacle", [
    (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.3),  # a sphere
    (0.0, 0.0, 0.0, math.cos(0.4), math.sin(0.4), 0.3, 0.2, 0.5, 0.05),  # a turned, rounded box
])
def test_lagged_distance_terms_match_finite_differences(obstacle):
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = rng.uniform(-1.5, 1.5, 3)
        p[np.abs(p) < 0.9] += 1.0  # outside the core
        v, a = rng.normal(size=3), rng.normal(size=3)
        h, gx, gy, gz, vhv, vha, change, bound = box_distance_lagged(*p, *v, *a, obstacle)
        g = np.array([gx, gy, gz])
        assert h == pytest.approx(box_distance(*p, *v, obstacle)[0])

        def grad(q):
            return np.array(box_distance(*q, *v, obstacle)[1:4])

        eps = 1e-6
        hessian = np.array([(grad(p + eps * e) - grad(p - eps * e)) / (2 * eps) for e in np.eye(3)])
        assert vhv == pytest.approx(v @ hessian @ v, abs=1e-4)
        assert vha == pytest.approx(v @ hessian @ a, abs=1e-4)
        # d/dt of v'Hv along v at a fixed v
        ahead = box_distance(*(p + eps * v), *v, obstacle)[4]
        behind = box_distance(*(p - eps * v), *v, obstacle)[4]
        assert change == pytest.approx((ahead - behind) / (2 * eps), abs=1e-3)
        assert np.linalg.norm(hessian @ v) <= bound + 1e-6
        assert np.linalg.norm(g) == pytest.approx(1.0)


def test_without_a_lag_the_model_is_unchanged_and_with_one_it_needs_the_acceleration_state():
    plain = DoubleIntegratorModel(8.0, 0.07, 2.0)
    lagged = DoubleIntegratorModel(8.0, 0.07, 2.0, actuator_lag=LAG, model_error=0.2)
    assert plain.state_size == 6 and lagged.state_size == 12
    with pytest.raises(ValueError, match="actuator_lag"):
        DoubleIntegratorModel(8.0, 0.07, 2.0, actuator_lag=(0.1, 0.0, 0.1))
    with pytest.raises(ValueError, match="model_error"):
        DoubleIntegratorModel(8.0, 0.07, 2.0, actuator_lag=LAG, model_error=float("nan"))


def test_a_lagging_plant_under_the_lagged_filter_keeps_h_nonnegative_where_the_plain_filter_does_not():
    """Integrate the true lagged, biased plant toward a sphere with a nominal that drives straight into it."""
    env = _sphere_env()

    def fly(lagged: bool, bias: np.ndarray) -> float:
        model = DoubleIntegratorModel(8.0, 0.07, 2.0, alpha=2.0, speed_alpha=3.0, actuator_lag=LAG if lagged else None, model_error=0.2)
        flt = CbfSafetyFilter(model, solver="osqp-direct")
        tau = np.array(LAG)
        p, v, a_lag = np.array([-1.0, 0.02, 1.0]), np.zeros(3), np.zeros(3)
        observer = AccelerationModel(LAG, observer_time_constant_s=0.3)
        dt_control, substeps = 1 / 48, 10
        lowest = math.inf
        for tick in range(48 * 5):
            now = tick * dt_control
            nominal = np.clip(4.0 * (np.array([2.0, 0.0, 0.0]) - v), -8, 8)  # 2 m/s straight at the sphere
            observer.advance(now)
            observer.observe(a_lag + bias, now)
            x = observer.predict(p, v, now, now) if lagged else np.concatenate([p, v])
            u, report = flt.compute(x, nominal, env)
            observer.commanded(now, u)
            for _ in range(substeps):
                h = dt_control / substeps
                a_lag += (u - a_lag) * (1 - np.exp(-h / tau))
                v += (a_lag + bias) * h
                p += v * h
                lowest = min(lowest, np.linalg.norm(p - np.array([1.0, 0.0, 1.0])) - 0.2 - 0.07)
        return lowest

    bias = np.array([1.0, 0.0, 0.0])  # the robot accelerates 1 m/s^2 more toward the sphere than commanded
    assert fly(False, bias) < -0.01
    assert fly(True, bias) >= -1e-3
    assert fly(True, np.zeros(3)) > 0.0


def test_prediction_is_exact_for_the_modelled_plant():
    model = AccelerationModel(LAG, actuator_delay_s=0.01)
    model.advance(0.0)
    model.commanded(0.0, np.array([2.0, -1.0, 0.5]))
    model.advance(0.05)
    model.commanded(0.05, np.array([0.0, 1.0, 0.0]))
    model.advance(0.1)
    # the same plant integrated finely: commands act 10 ms late, through the lag
    tau = np.array(LAG)
    p, v, a = np.zeros(3), np.zeros(3), np.zeros(3)
    t, h = 0.0, 1e-5
    while t < 0.11 - 1e-12:
        u = np.zeros(3) if t < 0.01 else np.array([2.0, -1.0, 0.5]) if t < 0.06 else np.array([0.0, 1.0, 0.0])
        a += (u - a) * h / tau
        v += a * h
        p += v * h
        t += h
    predicted = model.predict(np.zeros(3), np.zeros(3), stamp=0.0, now=0.1)
    np.testing.assert_allclose(predicted[:3], p, atol=1e-5)
    np.testing.assert_allclose(predicted[3:6], v, atol=1e-4)
    np.testing.assert_allclose(predicted[6:9], a, atol=1e-3)


def test_the_observer_finds_a_constant_bias_and_says_when_it_is_beyond_the_bound():
    model = AccelerationModel(LAG, observer_time_constant_s=0.2, max_bias_mps2=1.0)
    bias = np.array([0.3, -0.2, 0.5])
    for tick in range(200):
        now = tick / 48
        model.advance(now)
        model.observe(model.acceleration - model.bias + bias, now)  # the plant: the lag plus the true bias
    np.testing.assert_allclose(model.bias, bias, atol=1e-3)
    assert not model.bias_saturated
    for tick in range(200, 400):
        now = tick / 48
        model.advance(now)
        model.observe(model.acceleration - model.bias + np.array([0.0, 0.0, 2.5]), now)
    assert model.bias_saturated and model.bias[2] == pytest.approx(1.0)


def test_the_quadrotor_filter_node_warns_when_the_measured_acceleration_leaves_its_model():
    """An IMU saying the robot falls 3 m/s^2 faster than commanded: the bias saturates, the report warns, and it is counted."""
    from aegis.msgs import AccelCommand, ImuSample, RobotState
    from aegis.node import Received
    from aegis.nodes.quadrotor_safety_filter import QuadrotorSafetyFilterParams, SafetyFilter

    params = QuadrotorSafetyFilterParams(robot_radius_m=0.07, actuator_lag_s=LAG, model_error_mps2=0.2, max_bias_mps2=1.0)
    node = SafetyFilter("filter", params, rate_hz=48)
    node.reset(0)
    reports = []
    for tick in range(96):
        now = tick / 48
        odometry = RobotState(stamp=now, position=np.array([0.0, 0.0, 1.0]), linear_velocity=np.zeros(3))
        imu = ImuSample(stamp=now, linear_acceleration=np.array([0.0, 0.0, 9.81 - 3.0]))  # level, specific force short of g by 3
        nominal = AccelCommand(stamp=now, linear=np.zeros(3))
        out = node.step(now, {"state": Received(odometry, 0.0, False), "nominal": Received(nominal, 0.0, False), "imu": Received(imu, 0.0, False)})
        reports.append(out["report"])
    assert reports[0].model_warning == "" and reports[0].level == 0
    assert "bias at its bound" in reports[-1].model_warning and reports[-1].level == 1
    assert node.metrics()["model_warnings"] > 0 and node.metrics()["max_model_residual_mps2"] > 0.2
    np.testing.assert_allclose(node.acceleration_model.bias, [0.0, 0.0, -1.0], atol=1e-6)
