"""aegis bench pil, briefly: the quadrotor chain flies the same flight with its policy on the emulated Cortex-M4F as in Python.

Slow (cross-compiling, QEMU, two short PyBullet flights). Needs the MCU tool chain, as the other MCU tests.
"""

from __future__ import annotations

import pytest

from aegis.bench.pil import run_pil_benchmark
from aegis.export.mcu import missing_tools

_missing = missing_tools()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(_missing), reason=f"needs {', '.join(_missing)}")]


def test_the_mcu_in_the_loop_flies_as_the_python_chain() -> None:
    document = run_pil_benchmark("quadrotor_oracle_sim", duration_s=2.0, seed=3)
    python, mcu = document["rows"]
    assert document["mcu_answers"] >= 90  # 48 Hz for 2 s: every policy tick went through the UART
    assert mcu["collisions"] == python["collisions"] == 0 and mcu["crashes"] == python["crashes"] == 0
    assert document["max_position_difference_m"] < 1e-4  # float32 on the M4F vs the runtime: the flights coincide
    assert document["rmse_difference_m"] <= 0.005 and document["targets"][0]["met"]
    assert document["firmware_exit_status"] == 0 and document["flash_bytes"] <= 64 * 1024


def test_with_the_float_active_set_filter_on_the_mcu_too_the_flights_coincide_and_a_tick_fits_the_period() -> None:
    document = run_pil_benchmark("quadrotor_oracle_sim", duration_s=2.0, seed=3, filter_on_mcu=True, filter_solver="active-set")
    python, mcu = document["rows"]
    assert document["qp_answers"] >= 90 and document["mcu_answers"] >= 90  # every tick's policy and QP went through the UART
    assert mcu["collisions"] == python["collisions"] == 0 and mcu["crashes"] == python["crashes"] == 0
    assert document["max_position_difference_m"] < 1e-4 and document["targets"][0]["met"]
    # policy + QP at 168 MHz, one instruction a cycle, against the 48 Hz period (3.5 M cycles): far inside it
    assert document["instructions_per_answer_max"] + document["qp_instructions_max"] < 200_000
    assert document["flash_bytes"] <= 64 * 1024 and document["firmware_exit_status"] == 0


def test_one_frame_a_tick_flies_the_flight_of_two_frames_a_tick() -> None:
    """The combined frame (ids 7/8) in the closed loop: every tick one round trip, and the same flight as an observation
    frame and a QP frame a tick (the same C on the same inputs: the distances to the Python flight are equal)."""
    one = run_pil_benchmark("quadrotor_oracle_sim", duration_s=2.0, seed=3, filter_on_mcu=True, filter_solver="active-set")
    two = run_pil_benchmark("quadrotor_oracle_sim", duration_s=2.0, seed=3, filter_on_mcu=True, filter_solver="active-set", two_frames=True)
    assert one["requests"]["observation_frames"] == one["requests"]["qp_frames"] == 0
    assert one["requests"]["one_frame_ticks"] == one["qp_answers"] == one["mcu_answers"] >= 90
    assert two["requests"]["one_frame_ticks"] == 0 and two["requests"]["qp_frames"] == two["requests"]["observation_frames"] >= 90
    assert one["max_position_difference_m"] == two["max_position_difference_m"] < 1e-6
    assert [row["tracking_rmse_m"] for row in one["rows"]] == [row["tracking_rmse_m"] for row in two["rows"]]
