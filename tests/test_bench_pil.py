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
