"""The hover-thrust estimator (aegis.controllers.hover_thrust): it learns a heavier or lighter plant's thrust ratio
in flight through the real cascade and model, removes the hover sag, and freezes on unusable measurements."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from aegis.config import CRAZYFLIE_2X
from aegis.controllers.hover_thrust import HoverThrustEstimator, HoverThrustParams
from aegis.controllers.quadrotor_cascade import CascadeGains, QuadrotorCascade
from aegis.controllers.quadrotor_model import QuadrotorModel
from aegis.msgs import AccelCommand, RobotState
from aegis.node import Received
from aegis.nodes.quadrotor_chain import AttitudeControllerParams, QuadrotorAttitudeController

RATE_HZ = 240.0
DT = 1.0 / RATE_HZ
LEVEL = np.array([0.0, 0.0, 0.0, 1.0])


def fly_vertically(true_ratio: float, estimate: bool, seconds: float = 8.0, seed: int = 0) -> tuple[float, float, HoverThrustEstimator]:
    """Hold 1 m with the cascade on a level plant whose mass is ``true_ratio`` x the model's; odometry velocity noise 2 cm/s.

    The plant: the thrust the model's mixer gives for the cascade's rotor speeds, on the true mass, one control
    tick of actuation delay. Returns (mean |height error| over the last 2 s, the ratio used last, the estimator).
    """
    model = QuadrotorModel.from_robot(CRAZYFLIE_2X)
    gains = CascadeGains(velocity_ki=(0.0, 0.0, 0.0))  # no integrator: a mass error shows as a standing sag
    cascade = QuadrotorCascade(model, gains, DT)
    estimator = HoverThrustEstimator(HoverThrustParams(), DT, model.gravity_mps2)
    rng = np.random.default_rng(seed)
    mass = model.mass_kg * true_ratio
    z, vz, thrust, thrust_z = 1.0, 0.0, model.weight_n, 1.0
    errors = []
    steps = int(seconds * RATE_HZ)
    for k in range(steps):
        measured_vz = vz + rng.normal(0.0, 0.02)
        if estimate:
            cascade.thrust_ratio = estimator.update(measured_vz, thrust_z, 1.0, True, cascade.thrust_limited)
        speeds = cascade.compute(np.array([0.0, 0.0, z]), np.array([0.0, 0.0, measured_vz]), LEVEL, np.zeros(3), np.array([0.0, 0.0, 1.0]))
        thrust_z = cascade.thrust_setpoint / model.weight_n
        accel = thrust / mass - model.gravity_mps2  # the previous tick's thrust acts now
        thrust = model.wrench(speeds)[0]
        vz += accel * DT
        z += vz * DT
        if k >= steps - 2 * RATE_HZ:
            errors.append(abs(z - 1.0))
    return float(np.mean(errors)), cascade.thrust_ratio, estimator


@pytest.mark.parametrize("true_ratio", [0.7, 1.3])
def test_it_learns_a_lighter_or_heavier_plant_and_removes_the_sag(true_ratio: float) -> None:
    sag_without, _, _ = fly_vertically(true_ratio, estimate=False)
    sag_with, ratio, estimator = fly_vertically(true_ratio, estimate=True)
    assert ratio == pytest.approx(true_ratio, abs=0.02)
    assert estimator.std < 0.05 and estimator.fused > 60  # 8 s of 0.1 s windows
    # without it: a P-P-only height loop sags g (1 - 1/r) / (kp_v kp_p) = 0.22 m (heavy) / 0.34 m (light) ...
    assert sag_without > 0.15
    # ... with it, the noise's jitter alone
    assert sag_with < 0.02


def test_the_model_plant_stays_at_one() -> None:
    _, ratio, _ = fly_vertically(1.0, estimate=True)
    assert ratio == pytest.approx(1.0, abs=0.02)


def test_it_freezes_on_unusable_tilted_or_saturated_ticks() -> None:
    p = HoverThrustParams(window_ticks=4)
    estimator = HoverThrustEstimator(p, DT)
    before = (estimator.ratio, estimator.variance)
    # a heavy plant's measurements (falling at g (1/1.3 - 1) under the nominal hover thrust), each tick spoiled once
    falling = 9.81 * (1 / 1.3 - 1)
    for k in range(200):
        vz = falling * k * DT
        bad = k % 3
        if bad == 0:
            estimator.update(vz, 1.0, 1.0, usable=False)
        elif bad == 1:
            estimator.update(vz, 1.0, math.cos(math.radians(40.0)))
        else:
            estimator.update(vz, 1.0, 1.0, saturated=True)
    assert (estimator.ratio, estimator.variance) == before
    assert estimator.fused == 0 and estimator.frozen_ticks == 200
    estimator.update(math.nan, 1.0, 1.0)
    assert estimator.ratio == before[0] and estimator.frozen_ticks == 201
    # the same measurements, clean: it moves toward 1.3
    for k in range(200):
        estimator.update(falling * k * DT, 1.0, 1.0)
    assert estimator.ratio > 1.2


def test_the_gate_refuses_a_touchdown_and_the_bounds_hold() -> None:
    estimator = HoverThrustEstimator(HoverThrustParams(window_ticks=4), DT)
    for _ in range(100):  # on the ground: no vertical motion at a tenth of the hover thrust
        estimator.update(0.0, 0.1, 1.0)
    assert estimator.ratio == 1.0 and estimator.rejected > 0 and estimator.fused == 0
    bounded = HoverThrustEstimator(HoverThrustParams(window_ticks=4, max_ratio=1.2, initial_ratio_std=1.0, gate=100.0), DT)
    for k in range(400):  # a plant twice as heavy: falling at g/2 under the nominal hover thrust
        bounded.update(-4.905 * k * DT, 1.0, 1.0)
    assert bounded.ratio == 1.2


@pytest.mark.parametrize(
    ("params", "key"),
    [({"window_ticks": 0}, "window_ticks"), ({"min_ratio": 1.5}, "min_ratio"), ({"accel_noise_std_mps2": 0.0}, "accel_noise_std_mps2")],
)
def test_bad_settings_are_refused_by_name(params: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        HoverThrustParams(**params)


def test_the_attitude_node_is_off_by_default_and_reports_its_estimate_when_on() -> None:
    node = QuadrotorAttitudeController("attitude", rate_hz=RATE_HZ)
    assert node.hover_thrust is None and node.metrics() == {}
    with pytest.raises(ValidationError, match="hover_thrust.unknown"):
        AttitudeControllerParams(hover_thrust={"unknown": 1})
    with pytest.raises(ValidationError, match="hover_thrust.min_ratio"):
        AttitudeControllerParams(hover_thrust={"min_ratio": 1.5})
    node = QuadrotorAttitudeController("attitude", AttitudeControllerParams(hover_thrust={"enabled": True}), rate_hz=RATE_HZ)
    node.reset(0)
    state = RobotState(stamp=0.0, frame_id="odom", child_frame_id="base_link", position=np.array([0.0, 0.0, 1.0]))
    command = AccelCommand(stamp=0.0, frame_id="odom", linear=np.zeros(3))
    for k in range(120):  # 0.5 s: four whole 0.1 s windows
        now = k * DT
        node.step(now, {"state": Received(state, 0.0, False), "acceleration": Received(command, 0.0, False)})
    metrics = node.metrics()
    assert metrics["hover_thrust_fused"] == 4 and metrics["hover_thrust_frozen_ticks"] == 1  # its first tick: no thrust of its own yet
    assert metrics["hover_thrust_ratio"] == pytest.approx(1.0, abs=0.01)
    assert metrics["hover_thrust_mass_kg"] == pytest.approx(CRAZYFLIE_2X.mass_kg, rel=0.01)


@pytest.mark.parametrize("bump", [0.0, 1000.0])
def test_a_refused_estimate_reopens_its_gate_only_with_the_bump(bump: float) -> None:
    """A start-up transient that looked like a light plant, then a heavy one's steady fall: the gate refuses the
    heavy windows; bumping the variance on each refusal (PX4's) lets it re-converge, without it the estimate sticks."""
    estimator = HoverThrustEstimator(HoverThrustParams(window_ticks=4, rejection_bump=bump), DT)
    vz = 0.0
    for true_ratio, ticks in ((0.6, 200), (1.3, 2400)):
        for _ in range(ticks):
            vz += 9.81 * (1.0 / true_ratio - 1.0) * DT  # the nominal hover thrust on this plant
            estimator.update(vz, 1.0, 1.0)
        if true_ratio == 0.6:
            assert estimator.ratio == pytest.approx(0.6, abs=0.05)
    assert estimator.rejected > 0
    if bump:
        assert estimator.ratio == pytest.approx(1.3, abs=0.02)
    else:
        assert estimator.ratio < 0.7


def test_the_motor_lag_model_pairs_a_thrust_step_with_the_acceleration_it_really_gives() -> None:
    """A thrust step through rotors with a 50 ms lag on the model plant: with the lag modelled no window is refused
    and the ratio stays at 1; pairing the raw command, the step's first windows look like a heavier plant."""
    tau = 0.05
    results = {}
    for modelled in (True, False):
        estimator = HoverThrustEstimator(HoverThrustParams(motor_time_constant_s=tau if modelled else 0.0), DT)
        vz, realised, worst = 0.0, 1.0, 0.0
        for k in range(240):
            command = 1.0 if k < 60 else 1.3
            worst = max(worst, abs(estimator.update(vz, command, 1.0) - 1.0))
            realised += (1.0 - math.exp(-DT / tau)) * (command - realised)
            vz += 9.81 * (realised - 1.0) * DT
        results[modelled] = worst
    assert results[True] < 0.005
    assert results[False] > 2 * results[True] + 0.01
