"""The pipelined MCU tick of `aegis hil --mcu`: requests that never wait, answers taken a tick later, and the explicit fallbacks.

The filter's side (:class:`aegis.inference.mcu_session.McuQp` with a host solver) is checked with answers built here and the
real OSQP host solver (fast). The pipeline itself (:class:`aegis.inference.mcu_pipeline.StepPipeline`) runs the real PIL
image under QEMU (slow-marked, needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm): its answers are the
blocking session's, bit for bit; a stalled emulator (SIGSTOP) leaves ticks without an answer and a request given up, each
counted, and its late answer is dropped. Nothing is timed: waits are bounded and only for an answer to exist.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from aegis.controllers.cbf.qp import QpSpec
from aegis.controllers.cbf.solvers import make_solver
from aegis.inference.mcu_session import McuQp
from aegis.inference.mcu_step_frame import StepAnswer

SPEC = QpSpec(weights=(1.0, 1.0, 1.0), lower=(-8.0, -8.0, -8.0), upper=(8.0, 8.0, 8.0), max_rows=4)


def _rows(b0: float) -> tuple[np.ndarray, np.ndarray]:
    """One barrier row u_x >= b0 and three unused ones (a = 0, b = -1), as the filter pads them."""
    a, b = np.zeros((4, 3)), np.full(4, -1.0)
    a[0, 0], b[0] = 1.0, b0
    return a, b


def _answer(action: list[float], u: list[float]) -> StepAnswer:
    return StepAnswer(np.array(action), np.array(u), 0.0, True, 1, 1, 1000, 1100)


def _pipelined() -> McuQp:
    return McuQp(None, SPEC, dual=True, host=make_solver("osqp-direct", SPEC))  # type: ignore[arg-type]  # never asks the MCU


def test_the_mcu_answer_is_taken_when_it_meets_this_ticks_rows() -> None:
    qp = _pipelined()
    nominal = np.array([0.5, 0.0, 0.0])
    a, b = _rows(1.0)  # the answer's command 1.2 >= 1.0: it still meets the row the state moved to
    qp.ahead = (a, b, _answer(nominal.tolist(), [1.2, 0.0, 0.0]))
    solution = qp.solve(nominal, a, b)
    assert solution.solved and solution.u.tolist() == [1.2, 0.0, 0.0]
    assert (qp.answered_ahead, qp.host_solves) == (1, 0)


def test_an_answer_that_misses_this_ticks_row_is_the_hosts_solve_counted() -> None:
    qp = _pipelined()
    nominal = np.array([0.5, 0.0, 0.0])
    a, b = _rows(1.5)  # the row moved past the answer's 1.2 since it was asked
    qp.ahead = (a, b, _answer(nominal.tolist(), [1.2, 0.0, 0.0]))
    solution = qp.solve(nominal, a, b)
    assert solution.solved and solution.u[0] == pytest.approx(1.5, abs=1e-4)  # the host's minimal change for this tick
    assert (qp.answered_ahead, qp.host_solves) == (0, 1)


def test_no_answer_or_another_nominal_is_the_hosts_solve_counted() -> None:
    qp = _pipelined()
    a, b = _rows(-3.0)
    solution = qp.solve(np.array([0.5, 0.0, 0.0]), a, b)  # no answer taken this tick
    assert solution.solved and solution.u.tolist() == pytest.approx([0.5, 0.0, 0.0], abs=1e-6)
    qp.ahead = (a, b, _answer([0.4, 0.0, 0.0], [0.4, 0.0, 0.0]))  # an answer for another nominal (a held one, an escape)
    solution = qp.solve(np.array([0.5, 0.0, 0.0]), a, b)
    assert solution.u.tolist() == pytest.approx([0.5, 0.0, 0.0], abs=1e-6)
    assert (qp.answered_ahead, qp.host_solves) == (0, 2)
    assert qp.ahead is None  # an answer is for its own tick only


QUADROTOR = Path(__file__).resolve().parents[1] / "models" / "quadrotor_tracking.onnx"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory):
    from aegis.export import export_c
    from aegis.export.filter_dual import export_filter_dual
    from aegis.export.mcu import missing_tools
    from aegis.export.pil import build_pil_image

    missing = missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
    out = tmp_path_factory.mktemp("pipeline")
    report = export_c(QUADROTOR, out / "c")
    spec = QpSpec(weights=(1.0, 1.0, 1.0), lower=(-8.0, -8.0, -8.0), upper=(8.0, 8.0, 8.0), max_rows=8)
    return build_pil_image(report, out / "pil", export_filter_dual(spec, out / "qp")), report, spec


def _ticks(report, spec, n: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    ticks = []
    for _ in range(n):
        a, b = np.zeros((spec.max_rows, 3)), np.full(spec.max_rows, -1.0)
        a[:3], b[:3] = rng.normal(size=(3, 3)), rng.normal(size=3) * 4
        ticks.append((rng.normal(size=report.input_size).astype(np.float32), a.astype(np.float32), b.astype(np.float32)))
    return ticks


@pytest.mark.slow
def test_pipelined_answers_are_the_blocking_ones_a_tick_later(image) -> None:
    from aegis.inference.mcu_pipeline import StepPipeline
    from aegis.inference.mcu_session import PilSession

    elf, report, spec = image
    ticks = _ticks(report, spec, 6)
    with PilSession(elf, report.input_size, report.output_size) as session:
        blocking = [session.step(*tick) for tick in ticks]
        assert session.close() == 0
    with PilSession(elf, report.input_size, report.output_size) as session:  # a fresh image: the same warm starts
        pipeline = StepPipeline(session, timeout_s=30.0)
        taken = [pipeline.take()]  # tick 0: nothing was asked yet
        for tick in ticks:
            assert pipeline.send(*tick)
            assert not pipeline.send(*tick)  # one request in flight at most
            assert pipeline.wait(30.0)  # (the loop never waits: the next tick comes a period later)
            taken.append(pipeline.take())
        pipeline.close()
        assert session.close() == 0
    assert taken[0] is None
    for answer, got in zip(blocking, taken[1:]):
        assert got is not None and got.age_ticks == 1 and got.round_trip_s > 0
        np.testing.assert_array_equal(got.step.u, answer.u)
        np.testing.assert_array_equal(got.action, answer.action)
        assert (got.step.kept, got.step.slack) == (answer.kept, answer.slack)
    assert pipeline.ages == [1] * len(ticks) and pipeline.unanswered == 0


@pytest.mark.slow
def test_a_stalled_mcu_leaves_ticks_without_an_answer_and_its_late_answer_is_dropped(image) -> None:
    from aegis.inference.mcu_pipeline import StepPipeline
    from aegis.inference.mcu_session import PilSession

    elf, report, spec = image
    (x0, a0, b0), (x1, a1, b1) = _ticks(report, spec, 2)
    with PilSession(elf, report.input_size, report.output_size) as session:
        expected = session.act(x1)[0]
        pipeline = StepPipeline(session, timeout_s=0.05)
        os.kill(session.process.pid, signal.SIGSTOP)  # the emulator stalls: it cannot answer
        try:
            assert pipeline.send(x0, a0, b0)
            assert pipeline.take() is None  # the next tick: nothing to take, the request still in flight
            time.sleep(0.1)  # past the 0.05 s bound
            assert pipeline.take() is None and pipeline.unanswered == 1 and not pipeline.in_flight
        finally:
            os.kill(session.process.pid, signal.SIGCONT)
        assert pipeline.wait(30.0)  # the given-up request's answer comes after all
        assert pipeline.send(x1)  # the next tick's request (the observation alone)
        while (got := pipeline.take()) is None:  # the late answer is dropped, not taken for this request
            assert pipeline.wait(30.0)
        pipeline.close()
        assert session.close() == 0
    assert got.step is None
    np.testing.assert_array_equal(got.action.astype(np.float32), expected)
    assert pipeline.sent == 2 and pipeline.unanswered == 1


def test_a_wall_clock_request_carries_only_the_rows_that_can_bind() -> None:
    """A row every command in the input box meets (a u >= b for all u in [lower, upper]) never binds: the wall-clock route
    leaves it out (fewer bytes on the UART); with none left it sends one padding row (a = 0, b = -1); lockstep sends all."""
    from aegis.inference.mcu_session import _can_bind, _reachable_rows

    spec = QpSpec(weights=(1.0, 1.0, 1.0), lower=(-8.0, -8.0, -8.0), upper=(8.0, 8.0, 8.0), max_rows=8)
    a = np.array([[6.637, 0.0, 0.0], [0.0, 6.637, 0.0], [-0.327, -6.629, 0.0], [0.0, 0.0, 19.487]])
    b = np.array([-83.392, -53.0, -8.885, -27.628])  # the first two: min over the box -53.096 >= b, met everywhere
    assert _can_bind(a, b, spec).tolist() == [False, True, True, True]  # -53.096 < -53.0: the second can bind, just
    sent_a, sent_b = _reachable_rows(a, b, spec, binding_only=True)
    np.testing.assert_array_equal(sent_a, a[1:])
    np.testing.assert_array_equal(sent_b, b[1:])
    all_a, all_b = _reachable_rows(a, b, spec)
    np.testing.assert_array_equal(all_a, a)
    np.testing.assert_array_equal(all_b, b)
    none_a, none_b = _reachable_rows(a[:1], b[:1], spec, binding_only=True)
    assert none_a.tolist() == [[0.0, 0.0, 0.0]] and none_b.tolist() == [-1.0]


def test_a_wall_clock_request_carries_the_rows_near_binding_at_the_last_action() -> None:
    """Of the rows that can bind, a wall-clock request carries those within an eighth of the box's half-width (1 m/s^2 of
    +-8) of binding at the MCU's last action, at least the nearest; all of them before the first answer. The QP on the rows
    sent answers the whole QP when the rows left out are inactive at that answer: the cleared one here is."""
    from aegis.inference.mcu_session import _near_rows

    spec = SPEC
    a = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -1.0]])
    b = np.array([0.5, -10.0, -1.2])  # at the last action (0, 0, 0): 0.5 short, 5 clear, 1.2 clear (normalised)
    last = np.zeros(3)
    near_a, near_b = _near_rows(a, b, spec, last)
    np.testing.assert_array_equal(near_a, a[:1])
    np.testing.assert_array_equal(near_b, b[:1])
    all_a, all_b = _near_rows(a, b, spec, None)
    np.testing.assert_array_equal(all_a, a)
    np.testing.assert_array_equal(all_b, b)
    far_a, far_b = _near_rows(a[1:], b[1:], spec, last)  # none within the margin: the nearest still goes
    np.testing.assert_array_equal(far_a, a[2:])
    np.testing.assert_array_equal(far_b, b[2:])
    pad = lambda rows, right: (np.vstack([rows, np.zeros((spec.max_rows - len(rows), 3))]),  # noqa: E731
                               np.concatenate([right, np.full(spec.max_rows - len(right), -1.0)]))
    nominal = np.array([0.2, 0.0, 1.0])
    whole = make_solver("osqp-direct", spec).solve(nominal, *pad(a, b)).u.copy()
    sent = make_solver("osqp-direct", spec).solve(nominal, *pad(near_a, near_b)).u.copy()
    np.testing.assert_allclose(sent, whole, atol=1e-6)
    assert whole[0] == pytest.approx(0.5, abs=1e-6)  # the near row binds; the far ones are inactive
