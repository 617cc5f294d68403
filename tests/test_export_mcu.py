"""C export on a Cortex-M4F: built with arm-none-eabi-gcc, run under QEMU mps2-an386, equal to onnxruntime; sizes.

Slow (a few seconds of cross-compiling and emulation). Needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and
qemu-system-arm (Debian packages; .ci/run installs them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from aegis.export import export_c, samples
from aegis.export.mcu import (
    build_footprint_image,
    missing_tools,
    policy_object_sizes,
    run_on_mcu,
    run_qemu,
)
from aegis.export.reference import int8_error_bound
from aegis.export.toolchain import host_cc

N_INPUTS = 2000
FLASH_TARGET = 32 * 1024  # issue 5: the Cortex-M4F image with the 12-64-64-4 policy fits 32 KB of flash
TOLERANCE = 1e-5  # relative and absolute: the M4F's float ops and newlib's tanhf against x86 onnxruntime

_missing = missing_tools()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(_missing),
        reason=f"needs {', '.join(_missing)} (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)",
    ),
]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return samples.mlp_gemm(tmp_path_factory.mktemp("models") / "mlp_gemm.onnx")  # 12-64-64-4, ends in Tanh


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return samples.random_inputs(N_INPUTS, 12, seed=42)


@pytest.fixture(scope="module")
def float_model(model: Path, inputs: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


def test_float32_on_the_cortex_m4f_equals_onnxruntime(model: Path, inputs: np.ndarray, float_model: np.ndarray, tmp_path: Path) -> None:
    report = export_c(model, tmp_path / "c")
    outputs, image = run_on_mcu(report, inputs, tmp_path / "mcu")
    error = np.abs(outputs - float_model)
    print(f"QEMU mps2-an386 float32: max abs error vs onnxruntime {error.max():.3g} over {N_INPUTS} inputs; "
          f"test image text={image.sizes.text} data={image.sizes.data} bss={image.sizes.bss}")
    np.testing.assert_allclose(outputs, float_model, rtol=TOLERANCE, atol=TOLERANCE)
    if host_cc() is not None:  # same C, same summation order: the host gives the same bits except libm's last bit
        from aegis.export.host import build_host

        host = build_host(report).infer(inputs)
        same = np.mean(host.view(np.uint32) == outputs.view(np.uint32))
        print(f"bit-identical to the host build: {same:.2%} of outputs; max difference {np.abs(host - outputs).max():.3g}")
        assert np.max(np.abs(host - outputs)) <= 1e-6


def test_int8_on_the_cortex_m4f_stays_within_its_quantization_bound(model: Path, inputs: np.ndarray, float_model: np.ndarray, tmp_path: Path) -> None:
    report = export_c(model, tmp_path / "c", precision="int8")
    outputs, _ = run_on_mcu(report, inputs, tmp_path / "mcu")
    error = np.abs(outputs - float_model)
    print(f"QEMU mps2-an386 int8: max abs error vs the float model {error.max():.3g}")
    assert np.all(error <= int8_error_bound(report.plan, inputs) + TOLERANCE)


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_the_policy_image_runs_and_fits_32_kb_of_flash(model: Path, tmp_path: Path, precision: str) -> None:
    report = export_c(model, tmp_path / "c", precision=precision)
    image = build_footprint_image(report, tmp_path / "mcu")
    run_qemu(image.elf, timeout=30)  # boots, runs one inference and exits 0 (a fault exits 1)
    policy = policy_object_sizes(report, tmp_path / "mcu")
    print(f"{precision}: image flash {image.sizes.flash} B, RAM {image.sizes.ram} B (+ stack); "
          f"policy.o text {policy.text} B (weights {report.weight_bytes}), bss {policy.bss} B")
    # the policy's RAM is its two activation buffers, its flash is its weights plus a little code
    assert policy.data == 0 and policy.bss == report.activation_bytes
    assert report.weight_bytes <= policy.text <= report.weight_bytes + 2048
    assert image.sizes.flash <= FLASH_TARGET


@pytest.mark.skipif(host_cc() is None, reason="no host C compiler (looked for $CC, cc, gcc, clang)")
def test_without_libm_the_cortex_m4f_gives_the_host_bits_exactly(tmp_path: Path) -> None:
    from aegis.export.host import build_host

    model = samples.mlp_matmul_add(tmp_path / "relu.onnx")  # MatMul, Add, Relu only: no tanhf or expf
    inputs = samples.random_inputs(N_INPUTS, 12, seed=7)
    report = export_c(model, tmp_path / "c")
    outputs, _ = run_on_mcu(report, inputs, tmp_path / "mcu")
    host = build_host(report).infer(inputs)
    np.testing.assert_array_equal(outputs.view(np.uint32), host.view(np.uint32))


# --- physical units: the shipped policy with its contract in the C ------------------------------------------------

QUADROTOR = Path(__file__).resolve().parents[1] / "models" / "quadrotor_tracking.onnx"


@pytest.fixture(scope="module")
def physical() -> tuple:
    """The shipped quadrotor policy's contract, physical observations (1, 10 and 100 std from the mean) and the runtime's actions."""
    from aegis.inference.contract import read_contract
    from aegis.inference.runtime import PolicyRuntime

    contract = read_contract(QUADROTOR)
    rng = np.random.default_rng(9)
    offset, gain = contract.observation_affine()
    spread = rng.choice([1.0, 10.0, 100.0], size=(N_INPUTS, offset.size), p=[0.5, 0.4, 0.1])
    observations = (offset + rng.standard_normal((N_INPUTS, offset.size)) * spread / np.abs(gain)).astype(np.float32)
    runtime = PolicyRuntime(QUADROTOR)
    return contract, observations, np.array([runtime.act(row.astype(np.float64)) for row in observations])


def _roundings(contract, observations: np.ndarray) -> np.ndarray:
    """float32 rounding of a physical observation (normalised units) through the network and the action scale."""
    offset, gain = contract.observation_affine()
    scale = contract.action_affine()[0]
    return np.abs(scale) * 2.0**-24 * (1.0 + np.max(np.abs(observations * gain), axis=1, keepdims=True) + np.max(np.abs(offset * gain)))


def test_physical_float32_on_the_cortex_m4f_equals_the_runtime(physical: tuple, tmp_path: Path) -> None:
    contract, observations, expected = physical
    report = export_c(QUADROTOR, tmp_path / "c")
    assert report.physical
    outputs, image = run_on_mcu(report, observations, tmp_path / "mcu")
    ratio = np.abs(outputs - expected) / _roundings(contract, observations)
    _, _, low, high = contract.action_affine()
    at_limit = (expected == low) | (expected == high)
    print(f"QEMU mps2-an386, quadrotor in physical units: worst {ratio.max():.2f} float32 roundings from the aegis runtime over "
          f"{N_INPUTS} observations ({at_limit.mean():.0%} of the commands at a limit); image flash {image.sizes.flash} B")
    assert ratio.max() <= 8  # summation order and newlib's tanhf (its last bit, times the scale 10)
    assert np.all(outputs >= low) and np.all(outputs <= high) and np.array_equal(outputs[at_limit], expected[at_limit])


def test_physical_int8_on_the_cortex_m4f_stays_within_its_bound_of_the_runtime(physical: tuple, tmp_path: Path) -> None:
    contract, observations, expected = physical
    report = export_c(QUADROTOR, tmp_path / "c", precision="int8")
    outputs, _ = run_on_mcu(report, observations, tmp_path / "mcu")
    bound = int8_error_bound(report.plan, observations) + 8 * _roundings(contract, observations)
    print(f"QEMU int8, quadrotor in physical units: max {np.abs(outputs - expected).max():.3g} m/s^2 from the runtime")
    assert np.all(np.abs(outputs - expected) <= bound)
