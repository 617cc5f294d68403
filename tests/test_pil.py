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


def _oracle_filter_spec():
    """The QP spec of quadrotor_oracle_sim's safety filter (the plan's nodes built, then closed)."""
    from aegis.config import load_config
    from aegis.launch_plan import make_plan

    nodes = make_plan(load_config(Path(__file__).resolve().parents[1] / "hw_configs" / "quadrotor_oracle_sim.yaml")).instantiate()
    spec = next(n for n in nodes if hasattr(getattr(n, "filter", None), "spec")).filter.spec
    for node in nodes:
        if hasattr(node, "close"):
            node.close()
    return spec


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


def test_the_filter_qp_solves_on_the_mcu_beside_the_policy(tmp_path: Path) -> None:
    """The policy and the filter's exported QP in one image: QP problems over the UART are solved as the host's OSQP solves them."""
    from aegis.controllers.cbf.solvers import make_solver
    from aegis.export.filter_qp import export_filter_qp
    from aegis.export.pil import McuQp

    spec = _oracle_filter_spec()
    report = export_c(QUADROTOR, tmp_path / "c")
    image = build_pil_image(report, tmp_path / "pil", export_filter_qp(spec, tmp_path / "qp"))
    host = make_solver("osqp-direct", spec)
    rng = np.random.default_rng(2)
    with PilSession(image, report.input_size, report.output_size, timeout_s=60) as session:
        mcu = McuQp(session, spec)
        for _ in range(6):
            nominal = rng.normal(size=spec.n_inputs) * 3
            a, b = np.zeros((spec.max_rows, spec.n_inputs)), np.full(spec.max_rows, -1.0)  # rows a.u >= -1 with a = 0: inactive
            a[:2], b[:2] = rng.normal(size=(2, spec.n_inputs)), rng.normal(size=2)
            expected = host.solve(nominal, a, b).u.copy()
            answer = mcu.solve(nominal, a, b)
            assert answer.solved
            np.testing.assert_allclose(answer.u, expected, atol=1e-5)  # both OSQP at tolerance 1e-6 (doubles in software on the M4F)
        action, _ = session.act(np.zeros(report.input_size, dtype=np.float32))  # the policy still answers in the same image
        assert action.shape == (report.output_size,) and np.all(np.isfinite(action))
        assert session.close() == 0
    assert image.sizes.flash <= FLASH_TARGET and len(mcu.instructions) == 6


def test_one_frame_per_tick_answers_as_the_two_frames_do(tmp_path: Path) -> None:
    """The combined tick (id 7 -> id 8: observation and candidate rows out, action and filtered command back) gives the
    action of an observation frame and the QP answer of a problem frame whose nominal is that action, bit for bit; with
    more candidates than the QP's rows the MCU keeps the ones the host keeps (QpRows.load with the action)."""
    from aegis.controllers.cbf.rows import ConstraintRows, QpRows
    from aegis.export.filter_dual import export_filter_dual

    spec = _oracle_filter_spec()
    report = export_c(QUADROTOR, tmp_path / "c")
    image = build_pil_image(report, tmp_path / "pil", export_filter_dual(spec, tmp_path / "qp"))
    k, m = spec.max_rows, spec.n_inputs
    rng = np.random.default_rng(4)
    ticks = []
    for i in range(10):
        if i % 2:  # more candidates than the QP's K rows: the nominal chooses
            a, b = rng.normal(size=(k + 4, m)), rng.normal(size=k + 4) * 4
        else:  # at most K: padded as the filter pads them (a = 0, b = -1)
            a, b = np.zeros((k, m)), np.full(k, -1.0)
            a[:3], b[:3] = rng.normal(size=(3, m)), rng.normal(size=3) * 4
        ticks.append((rng.normal(size=report.input_size).astype(np.float32), a.astype(np.float32), b.astype(np.float32)))
    with PilSession(image, report.input_size, report.output_size) as session:  # the two frames a tick of today
        two = []
        for observation, a, b in ticks:
            action, _ = session.act(observation)
            rows, kept = ConstraintRows(m), QpRows(k, m)
            rows.a.extend(a.astype(np.float64).ravel().tolist())
            rows.b.extend(b.astype(np.float64).tolist())
            kept.load(rows, action.astype(np.float64))
            mask = (1 << len(b)) - 1 if kept.selected is None else sum(1 << int(i) for i in kept.selected)
            two.append((action, mask, session.solve_dual(action.astype(np.float64), kept.a if kept.selected is not None else a, kept.b if kept.selected is not None else b)))
        assert session.close() == 0
    with PilSession(image, report.input_size, report.output_size) as session:  # a fresh image: the same warm starts
        one = [session.step(observation, a, b) for observation, a, b in ticks]
        assert session.close() == 0
    assert report.output_size == m
    for (action, mask, (u, slack, solved, steps, _)), answer in zip(two, one):
        np.testing.assert_array_equal(answer.action.astype(np.float32).view(np.uint32), action.view(np.uint32))
        assert answer.kept == mask
        np.testing.assert_array_equal(answer.u, u)
        assert (answer.slack, answer.solved, answer.steps) == (slack, solved, steps)
        assert 0 < answer.policy_ticks < answer.ticks
    assert any(not np.allclose(answer.u, answer.action, atol=1e-6) for answer in one)  # some rows bind: the QP did something
    assert image.sizes.flash <= FLASH_TARGET


def test_fewer_rows_than_the_qp_keeps_are_padded_by_the_mcu_as_the_host_pads_them(tmp_path: Path) -> None:
    """A one-frame tick may carry fewer candidates than the QP's K rows (the wall-clock route sends only the rows that can
    bind): the MCU pads them with a = 0, b = -1, so the answer is the padded request's bit for bit; the mask names the sent."""
    from aegis.export.filter_dual import export_filter_dual

    spec = _oracle_filter_spec()
    report = export_c(QUADROTOR, tmp_path / "c")
    image = build_pil_image(report, tmp_path / "pil", export_filter_dual(spec, tmp_path / "qp"))
    k, m = spec.max_rows, spec.n_inputs
    rng = np.random.default_rng(11)
    ticks = []
    for live in (1, 3, k - 1):
        a, b = rng.normal(size=(live, m)).astype(np.float32), (rng.normal(size=live) * 4).astype(np.float32)
        ticks.append((rng.normal(size=report.input_size).astype(np.float32), a, b))
    with PilSession(image, report.input_size, report.output_size) as session:
        short = [session.step(observation, a, b) for observation, a, b in ticks]
        assert session.close() == 0
    with PilSession(image, report.input_size, report.output_size) as session:  # a fresh image: the same warm starts
        padded = []
        for observation, a, b in ticks:
            full_a, full_b = np.zeros((k, m), np.float32), np.full(k, -1.0, np.float32)
            full_a[: len(b)], full_b[: len(b)] = a, b
            padded.append(session.step(observation, full_a, full_b))
        assert session.close() == 0
    for (_, _, b), one, other in zip(ticks, short, padded):
        assert one.kept == (1 << len(b)) - 1 and other.kept == (1 << k) - 1
        np.testing.assert_array_equal(one.u.view(np.uint32), other.u.view(np.uint32))
        np.testing.assert_array_equal(one.action.view(np.uint32), other.action.view(np.uint32))
        assert (one.slack, one.solved, one.steps) == (other.slack, other.solved, other.steps)
