"""The PID controller: gains, saturation, and anti-windup that lets it leave saturation promptly."""

from __future__ import annotations

import numpy as np
import pytest

from aegis.controllers.pid import Pid


def test_terms_add_up_before_saturation() -> None:
    pid = Pid(kp=2.0, ki=0.5, kd=0.1, dim=2)
    out = pid.compute(np.array([1.0, -2.0]), np.array([0.5, 0.0]), dt=0.1)
    np.testing.assert_allclose(out, [2.0 + 0.05, -4.0])  # integral starts at zero
    out = pid.compute(np.array([1.0, -2.0]), np.zeros(2), dt=0.1)
    np.testing.assert_allclose(out, [2.0 + 0.5 * 0.1, -4.0 + 0.5 * -0.2])


def test_output_saturates_and_back_calculation_limits_windup() -> None:
    def integral_after_saturation(windup_gain: float) -> float:
        pid = Pid(kp=1.0, ki=1.0, kd=0.0, output_limit=1.0, windup_gain=windup_gain)
        for _ in range(1000):  # 10 s of a large error that saturates the output
            out = pid.compute(np.array([5.0]), np.zeros(1), dt=0.01)
            assert abs(out[0]) <= 1.0
        return float(pid.integral[0])

    assert integral_after_saturation(0.0) == pytest.approx(50.0)  # no anti-windup: integrates all 5 x 10 s
    # back-calculation settles where the error balances the excess: 5 + (1 - (5 + I)) = 0, so I = 1
    assert integral_after_saturation(1.0) == pytest.approx(1.0, abs=1e-3)


def test_integral_clamp_and_reset() -> None:
    pid = Pid(kp=0.0, ki=1.0, kd=0.0, integral_limit=0.3, windup_gain=0.0)
    for _ in range(100):
        pid.compute(np.array([1.0]), np.zeros(1), dt=0.1)
    assert pid.integral[0] == pytest.approx(0.3)
    pid.reset()
    assert pid.integral[0] == 0.0


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="output_limit must be > 0"):
        Pid(kp=1.0, ki=0.0, kd=0.0, output_limit=0.0)
