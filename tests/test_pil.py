"""Processor in the loop: the shipped quadrotor policy on the Cortex-M4F under QEMU, fed and answered in wire frames over its UART.

Slow (cross-compiling and emulation, a few seconds). Needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and
qemu-system-arm, as the other MCU tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aegis.export import export_c
from aegis.export.mcu import missing_tools, run_on_mcu
from aegis.export.pil import PilSession, build_pil_image

QUADROTOR = Path(__file__).resolve().parents[1] / "models" / "quadrotor_tracking.onnx"
N = 40
FLASH_TARGET = 64 * 1024  # issue 14: the PIL image fits 64 KB of flash

_missing = missing_tools()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(_missing), reason=f"needs {', '.join(_missing)} (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)"),
]


def test_the_policy_answers_observation_frames_over_the_uart_as_the_runtime_acts(tmp_path: Path) -> None:
    from aegis.inference.contract import read_contract
    from aegis.inference.runtime import PolicyRuntime

    contract = read_contract(QUADROTOR)
    offset, gain = contract.observation_affine()
    rng = np.random.default_rng(5)
    observations = (offset + rng.standard_normal((N, offset.size)) * rng.choice([0.3, 1.0, 3.0], size=(N, 1)) / np.abs(gain)).astype(np.float32)
    runtime = PolicyRuntime(QUADROTOR)
    expected = np.array([runtime.act(row.astype(np.float64)) for row in observations])

    report = export_c(QUADROTOR, tmp_path / "c")
    image = build_pil_image(report, tmp_path / "pil")
    with PilSession(image, report.input_size, report.output_size) as session:
        answers = [session.act(row) for row in observations]
        assert session.close() == 0  # the stop frame ends the firmware cleanly
    actions = np.array([a for a, _ in answers])
    instructions = np.array([n for _, n in answers])

    batch, _ = run_on_mcu(report, observations, tmp_path / "semihosting")
    np.testing.assert_array_equal(actions.view(np.uint32), batch.view(np.uint32))  # the same C on the same core, bit for bit
    np.testing.assert_allclose(actions, expected, rtol=0, atol=1e-4)  # the runtime in float64 (test_export_mcu bounds it tighter)
    assert not np.all(np.abs(actions) == 8.0)  # not every command at its limit: the comparison means something
    assert image.sizes.flash <= FLASH_TARGET
    print(f"PIL on QEMU mps2-an386: {N} observation frames answered over UART0, max |action - runtime| "
          f"{np.abs(actions - expected).max():.2g} m/s^2; instructions per answer (frame check + inference, -icount) "
          f"median {np.median(instructions):.0f}, max {instructions.max():.0f} = {np.median(instructions) / 168e6 * 1e6:.0f} us at "
          f"168 MHz and one instruction a cycle; image flash {image.sizes.flash} B, RAM {image.sizes.ram} B (without stack)")
