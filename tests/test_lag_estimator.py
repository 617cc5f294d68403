"""Fitting the plant's lag and dead time in flight: the estimator on a synthetic plant, and in the quadrotor filter node."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from aegis.controllers.cbf.lag_estimator import LagEstimator
from aegis.msgs import Obstacles

DECLARED_LAG, DECLARED_DELAY = (0.14, 0.14, 0.04), (0.055, 0.055, 0.0)
RATE_HZ = 48


class LaggingPlant:
    """A first-order lag after a dead time per axis, plus a constant bias, integrated at 1 ms (the truth the estimator fits)."""

    def __init__(self, lag, delay, bias=(0.3, -0.2, 0.0)):
        self.lag, self.delay, self.bias = np.asarray(lag, float), np.asarray(delay, float), np.asarray(bias, float)
        self.sent: list[tuple[float, np.ndarray]] = [(-10.0, np.zeros(3))]
        self.a, self.time = np.zeros(3), 0.0

    def command(self, now, u):
        self.sent.append((now, np.asarray(u, float)))

    def run_to(self, end):
        step = 1e-3
        while self.time < end - 1e-12:
            acting = np.array([next(u for t, u in reversed(self.sent) if t <= self.time - d)[axis] for axis, d in enumerate(self.delay)])
            self.a += (acting - self.a) * -np.expm1(-step / self.lag)
            self.time += step
        return self.a + self.bias


def _fly(estimator: LagEstimator, plant: LaggingPlant, seconds: float, rng, amplitude=2.0, start=0.0):
    """Commands that change every quarter second (horizontal, N(0, amplitude)), measured once a tick with 0.1 m/s^2 of noise."""
    u = np.zeros(3)
    for tick in range(int(seconds * RATE_HZ)):
        now = start + tick / RATE_HZ
        estimator.measured(now, plant.run_to(now) + rng.normal(0.0, 0.1, 3))
        estimator.update(now)
        if tick % (RATE_HZ // 4) == 0:
            u = np.array([*rng.normal(0.0, amplitude, 2), 0.0]) if amplitude else np.zeros(3)
        estimator.commanded(now, u)
        plant.command(now, u)
    return start + seconds


@pytest.mark.parametrize("true_lag, true_delay", [
    ((0.14, 0.14, 0.04), (0.11, 0.11, 0.0)),   # 55 ms more dead time (slow motors, actuation latency)
    ((0.28, 0.28, 0.04), (0.055, 0.055, 0.0)),  # twice the lag
    ((0.07, 0.07, 0.04), (0.03, 0.03, 0.0)),    # a faster plant
])
def test_the_estimator_finds_the_true_lag_and_dead_time(true_lag, true_delay):
    estimator = LagEstimator(DECLARED_LAG, DECLARED_DELAY)
    _fly(estimator, LaggingPlant(true_lag, true_delay), 4.0, np.random.default_rng(5))
    assert estimator.fits >= 8
    np.testing.assert_allclose(estimator.lag[:2], true_lag[0], rtol=0.13)  # within a step of the grid
    np.testing.assert_allclose(estimator.delay[:2], true_delay[0], atol=0.0101)
    assert estimator.lag[2] == DECLARED_LAG[2] and estimator.delay[2] == DECLARED_DELAY[2]  # z is not among the axes


def test_a_hovering_robot_teaches_nothing_and_a_learned_estimate_is_held_through_quiet_stretches():
    rng = np.random.default_rng(2)
    plant = LaggingPlant((0.14, 0.14, 0.04), (0.11, 0.11, 0.0))
    estimator = LagEstimator(DECLARED_LAG, DECLARED_DELAY)
    now = _fly(estimator, plant, 3.0, rng, amplitude=0.0)
    assert estimator.fits == 0 and np.array_equal(estimator.delay, DECLARED_DELAY)
    now = _fly(estimator, plant, 3.0, rng, start=now)
    learned = estimator.delay.copy()
    assert learned[0] > 0.1
    now = _fly(estimator, plant, 2.0, rng, amplitude=0.0, start=now)  # the window still sees the motion's tail a while
    assert np.array_equal(estimator.delay, learned)
    fits = estimator.fits
    _fly(estimator, plant, 3.0, rng, amplitude=0.0, start=now)
    assert estimator.fits == fits and np.array_equal(estimator.delay, learned)
    estimator.reset()
    assert np.array_equal(estimator.delay, DECLARED_DELAY) and estimator.fits == 0


def test_bad_estimator_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="declared_lag_s"):
        LagEstimator((0.1, 0.0, 0.1), 0.05)
    with pytest.raises(ValueError, match="declared_delay_s"):
        LagEstimator(DECLARED_LAG, -0.01)
    with pytest.raises(ValueError, match="window_s"):
        LagEstimator(DECLARED_LAG, DECLARED_DELAY, window_s=0.0)
    with pytest.raises(ValueError, match="axes"):
        LagEstimator(DECLARED_LAG, DECLARED_DELAY, axes=(3,))


def test_the_quadrotor_filter_refuses_fitting_without_a_declared_lag_or_an_imu():
    from aegis.nodes.quadrotor_safety_filter import QuadrotorSafetyFilterParams

    with pytest.raises(ValidationError, match="fit_actuator_lag"):
        QuadrotorSafetyFilterParams(robot_radius_m=0.07, fit_actuator_lag=True)
    with pytest.raises(ValidationError, match="fit_actuator_lag"):
        QuadrotorSafetyFilterParams(robot_radius_m=0.07, actuator_lag_s=DECLARED_LAG, fit_actuator_lag=True, imu_source="none")


def test_the_quadrotor_filter_node_reports_a_slower_plant_and_flies_as_without_the_fit():
    """The node in a closed loop with a plant 55 ms slower than declared: the fit finds it, the commands are unchanged."""
    from aegis.msgs import AccelCommand, ImuSample, RobotState
    from aegis.node import Received
    from aegis.nodes.quadrotor_safety_filter import QuadrotorSafetyFilterParams, SafetyFilter

    def flown(fit: bool) -> tuple[SafetyFilter, list[np.ndarray]]:
        params = QuadrotorSafetyFilterParams(
            robot_radius_m=0.07, actuator_lag_s=DECLARED_LAG, actuator_delay_s=DECLARED_DELAY, model_error_mps2=0.2,
            fit_actuator_lag=fit,
        )
        node = SafetyFilter("filter", params, rate_hz=RATE_HZ)
        node.reset(0)
        plant, rng = LaggingPlant((0.14, 0.14, 0.04), (0.11, 0.11, 0.0), bias=(0.0, 0.0, 0.0)), np.random.default_rng(8)
        nominal, commands = np.zeros(3), []
        for tick in range(4 * RATE_HZ):
            now = tick / RATE_HZ
            a = plant.run_to(now)
            if tick % (RATE_HZ // 4) == 0:
                nominal = np.array([*rng.normal(0.0, 2.0, 2), 0.0])
            inputs = {
                "state": Received(RobotState(stamp=now, position=np.array([0.0, 0.0, 1.0]), linear_velocity=np.zeros(3)), 0.0, False),
                "nominal": Received(AccelCommand(stamp=now, linear=nominal), 0.0, False),
                "obstacles": Received(Obstacles(stamp=now, obstacles=[]), 0.0, False),
                "imu": Received(ImuSample(stamp=now, linear_acceleration=a + np.array([0.0, 0.0, 9.81])), 0.0, False),
            }
            commands.append(node.step(now, inputs)["command"].linear.copy())
            plant.command(now, commands[-1])
        return node, commands

    fitted, fitted_commands = flown(True)
    metrics = fitted.metrics()
    assert metrics["actuator_lag_fits"] > 0
    assert metrics["actuator_delay_fitted_s"][0] == pytest.approx(0.11, abs=0.0101)
    assert metrics["actuator_lag_fitted_s"][0] == pytest.approx(0.14, rel=0.13)
    assert fitted.acceleration_model.delay.tolist() == list(DECLARED_DELAY)  # the filter still models the declared plant
    plain, plain_commands = flown(False)
    assert "actuator_lag_fits" not in plain.metrics()
    np.testing.assert_array_equal(np.array(fitted_commands), np.array(plain_commands))
    fitted.reset(0)
    assert fitted.metrics()["actuator_lag_fits"] == 0 and fitted.metrics()["actuator_delay_fitted_s"] == list(DECLARED_DELAY)
