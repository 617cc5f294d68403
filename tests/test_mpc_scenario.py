"""Scenario MPC: one plan per obstacle hypothesis, a shared first segment safe for every hypothesis, failures as a status.

A planar point mass (4 states / 2 inputs, 0.1 s steps, horizon 20) drives along +x toward a goal;
an obstacle's position is uncertain: hypothesis 0 puts it just left of the path, hypothesis 1 just
right. Each plan must go round its own obstacle, on the side it leaves free, while the inputs they
share (and so the states they share) avoid both.
"""

from __future__ import annotations

import numpy as np
import pytest

from aegis.controllers.mpc.linear import OsqpSettings
from aegis.controllers.mpc.quadrotor import translational_mpc
from aegis.controllers.mpc.scenario import ScenarioMpc

DT = 0.1
HORIZON = 20
SHARED = 3
RADIUS = 0.5
GOAL = np.array([5.0, 0.0, 0.0, 0.0])
LEFT_RIGHT = np.array([[[2.2, 0.3]], [[2.2, -0.3]]])  # (K=2, J=1, d=2)


def problem():
    return translational_mpc(DT, HORIZON, a_max=3.0, v_max=1.5, dims=2).problem


def distances(plan: np.ndarray, centre: np.ndarray) -> np.ndarray:
    return np.linalg.norm(plan[:, :2] - centre, axis=1)


@pytest.mark.parametrize("solver", ["clarabel", "osqp"])
def test_each_plan_avoids_its_hypothesis_and_the_shared_segment_avoids_both(solver: str) -> None:
    # the formulation's test: four passes from cold, each solved to the end at the linear MPC's tolerance (a tick's default budget would cap the first)
    mpc = ScenarioMpc(
        problem(), hypotheses=2, obstacles=1, position_indices=[0, 1], shared_steps=SHARED, solver=solver, settings=OsqpSettings(), max_iterations=10_000
    )
    x0 = np.array([0.0, 0.0, 1.0, 0.0])
    u0, info = mpc.compute(x0, GOAL, LEFT_RIGHT, RADIUS, passes=4)
    assert info.ok, info.status
    assert info.max_slack < 1e-4
    # consensus: the first inputs are one and the same, and u0 is them
    np.testing.assert_allclose(info.u_pred[0, :SHARED], info.u_pred[1, :SHARED], atol=1e-4)  # equal within the solver tolerance
    np.testing.assert_allclose(u0, info.u_pred[0, 0], atol=1e-9)
    assert np.abs(info.u_pred[0, SHARED:] - info.u_pred[1, SHARED:]).max() > 0.1  # and then they part
    # each plan keeps clear of its own obstacle
    for i in range(2):
        assert distances(info.x_pred[i], LEFT_RIGHT[i, 0]).min() >= RADIUS - 1e-3
    # the shared states (x_1 .. x_SHARED) are clear of both obstacles, whichever is real
    for i in range(2):
        for j in range(2):
            assert distances(info.x_pred[i, 1 : SHARED + 1], LEFT_RIGHT[j, 0]).min() >= RADIUS - 1e-3
    # each goes round on the side its obstacle leaves free: right of a left obstacle, left of a right one
    passing = [np.argmin(np.abs(info.x_pred[i, :, 0] - 2.2)) for i in range(2)]
    assert info.x_pred[0, passing[0], 1] < -0.15 and info.x_pred[1, passing[1], 1] > 0.15


def test_closed_loop_waits_when_the_hypotheses_block_both_sides_and_never_touches_either() -> None:
    """Left and right overlap over the path: only the shared segment is flown, so the robot stops short of both.

    Clarabel only: held against two strongly pulled, switching half-spaces OSQP needs thousands of
    iterations and sometimes reaches its limit (a failure status, as designed), the reason Clarabel
    is the scenario MPC's default.
    """
    model = problem()
    mpc = ScenarioMpc(model, hypotheses=2, obstacles=1, position_indices=[0, 1], shared_steps=SHARED)
    x = np.array([0.0, 0.0, 1.0, 0.0])
    clearance = np.inf
    for _ in range(50):
        u, info = mpc.compute(x, GOAL, LEFT_RIGHT, RADIUS)
        assert info.ok, info.status
        x = model.a @ x + model.b @ u
        clearance = min(clearance, min(np.linalg.norm(x[:2] - LEFT_RIGHT[i, 0]) for i in range(2)))
    assert clearance >= RADIUS - 1e-2
    assert x[0] < 2.2 and abs(x[2]) < 0.2  # stopped in front


@pytest.mark.parametrize("solver", ["clarabel", "osqp"])
def test_closed_loop_passes_an_obstacle_whose_side_is_known_but_not_its_distance(solver: str) -> None:
    model = problem()
    hypotheses = np.array([[[2.2, 0.35]], [[2.2, 0.9]]])  # both left of the path: pass right of the nearer
    mpc = ScenarioMpc(model, hypotheses=2, obstacles=1, position_indices=[0, 1], shared_steps=SHARED, solver=solver)
    x = np.array([0.0, 0.0, 1.0, 0.0])
    clearance = np.full(2, np.inf)
    for _ in range(80):
        u, info = mpc.compute(x, GOAL, hypotheses, RADIUS)
        assert info.ok, info.status
        x = model.a @ x + model.b @ u
        clearance = np.minimum(clearance, [np.linalg.norm(x[:2] - hypotheses[i, 0]) for i in range(2)])
    assert np.all(clearance >= RADIUS - 1e-2), clearance
    assert np.linalg.norm(x[:2] - GOAL[:2]) < 0.05


def test_sharing_the_whole_horizon_makes_one_plan() -> None:
    mpc = ScenarioMpc(problem(), hypotheses=2, obstacles=1, position_indices=[0, 1], shared_steps=HORIZON)
    _, info = mpc.compute(np.array([0.0, 0.0, 1.0, 0.0]), GOAL, LEFT_RIGHT, RADIUS, passes=3)
    assert info.ok
    np.testing.assert_allclose(info.x_pred[0], info.x_pred[1], atol=1e-5)


@pytest.mark.parametrize("solver", ["clarabel", "osqp"])
def test_hard_constraints_fail_with_a_status_when_the_robot_is_inside_an_obstacle_and_soft_ones_report_the_slack(solver: str) -> None:
    inside = np.array([[[0.1, 0.0]], [[0.1, 0.0]]])
    x0 = np.array([0.0, 0.0, 0.0, 0.0])
    hard = ScenarioMpc(problem(), hypotheses=2, obstacles=1, position_indices=[0, 1], slack_weight=None, solver=solver)
    u0, info = hard.compute(x0, GOAL, inside, RADIUS)
    assert not info.ok and info.answer == "backup" and np.isnan(u0).all()
    if solver == "clarabel":  # OSQP's budget ends before it can prove it (status: maximum iterations reached)
        assert "infeasible" in info.status.lower()
    # the soft QP solved to the end (within the default budget OSQP, cold, answers "backup": its capped plans cross the obstacle)
    soft = ScenarioMpc(problem(), hypotheses=2, obstacles=1, position_indices=[0, 1], solver=solver, max_iterations=10_000)
    u0, info = soft.compute(x0, GOAL, inside, RADIUS)
    assert info.ok and info.max_slack > 0.1 and np.isfinite(u0).all()


@pytest.mark.parametrize(
    ("centres", "radius", "message"),
    [(np.zeros((2, 2, 2)), RADIUS, "obstacle_centres must be"), (np.full((2, 1, 2), np.nan), RADIUS, "non-finite"), (LEFT_RIGHT, np.nan, "non-finite")],
)
def test_bad_obstacles_give_a_status_not_an_exception(centres: np.ndarray, radius: float, message: str) -> None:
    mpc = ScenarioMpc(problem(), hypotheses=2, obstacles=1, position_indices=[0, 1])
    u0, info = mpc.compute(np.zeros(4), GOAL, centres, radius)
    assert not info.ok and message in info.status and np.isnan(u0).all()


def test_construction_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="shared_steps"):
        ScenarioMpc(problem(), 2, 1, [0, 1], shared_steps=0)
    with pytest.raises(ValueError, match="position_indices"):
        ScenarioMpc(problem(), 2, 1, [0, 0])
    with pytest.raises(ValueError, match="weights"):
        ScenarioMpc(problem(), 2, 1, [0, 1], weights=[1.0])
    with pytest.raises(ValueError, match="solver"):
        ScenarioMpc(problem(), 2, 1, [0, 1], solver="qpoases")  # type: ignore[arg-type]


@pytest.mark.parametrize("solver", ["clarabel", "osqp"])
def test_solves_print_nothing(capfd: pytest.CaptureFixture[str], solver: str) -> None:
    mpc = ScenarioMpc(problem(), hypotheses=2, obstacles=1, position_indices=[0, 1], solver=solver)
    far = np.array([[[20.0, 20.0]], [[-20.0, 20.0]]])
    for _ in range(5):
        mpc.compute(np.array([0.0, 0.0, 0.1, 0.0]), np.zeros(4), far, RADIUS)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_a_tick_whose_budget_runs_out_with_no_plan_to_fall_back_on_answers_backup_and_says_so() -> None:
    """Cold (no plan yet), five iterations for the tick, the robot already inside one hypothesis' radius: no plan holds, so the caller's backup must act."""
    mpc = ScenarioMpc(problem(), hypotheses=2, obstacles=1, position_indices=[0, 1], shared_steps=SHARED, solver="osqp", max_iterations=5)
    u0, info = mpc.compute(np.array([2.0, 0.2, 1.0, 0.0]), GOAL, np.array([[[2.2, 0.35]], [[2.2, 0.9]]]), RADIUS)
    assert not info.ok and info.answer == "backup" and np.isnan(u0).all()
    assert "maximum iterations" in info.status and "backup" in info.status
    assert info.iterations <= 5


def test_capped_ticks_answer_with_a_checked_plan_that_clears_every_hypothesis() -> None:
    """After six solved ticks the budget drops to one iteration: each tick says which plan answered and that plan clears its obstacles.

    Here the first capped ticks fly the previous plans one step on ("shifted": the command is the last
    plan's next input), and once those no longer hold the capped iterates answer ("capped").
    """
    model = problem()
    hypotheses = np.array([[[2.2, 0.35]], [[2.2, 0.9]]])
    mpc = ScenarioMpc(model, hypotheses=2, obstacles=1, position_indices=[0, 1], shared_steps=SHARED, solver="osqp", max_iterations=10_000)
    x = np.array([0.0, 0.0, 1.0, 0.0])
    answers, next_input = [], None
    for tick in range(14):
        if tick == 6:
            mpc.max_iterations = 1
        u, info = mpc.compute(x, GOAL, hypotheses, RADIUS)
        answers.append(info.answer)
        if info.answer == "backup":  # nothing held: NaN, and the caller's backup acts (here: coast)
            assert not info.ok and np.isnan(u).all() and "backup" in info.status
            u = np.zeros(2)
        else:
            assert info.ok and np.isfinite(u).all(), info.status
        if tick >= 6:
            assert info.iterations <= 1
        if info.answer == "shifted":
            assert "shifted previous plan" in info.status
            np.testing.assert_allclose(u, np.clip(next_input, -3.0, 3.0), atol=1e-12)
        if info.answer in ("capped", "shifted"):
            # OSQP at its limit: "maximum iterations reached", or "solved inaccurate" for an iterate within 10x its tolerances
            assert "maximum iterations" in info.status or "inaccurate" in info.status
            for i in range(2):
                assert distances(info.x_pred[i], hypotheses[i, 0]).min() >= RADIUS - mpc.feasibility_tolerance
        next_input = info.u_pred[0, 1].copy()
        x = model.a @ x + model.b @ u
    assert set(answers[:6]) == {"solver"} and {"capped", "shifted"} <= set(answers[6:])


def test_the_budget_leaves_the_closed_loop_as_it_was() -> None:
    """The same encounter flown with the default budget and with an unbounded one: the same path within 15 cm, clear of both hypotheses, at the goal."""
    model = problem()
    hypotheses = np.array([[[2.2, 0.35]], [[2.2, 0.9]]])
    paths = []
    for budget in (None, 10_000):
        extra = {} if budget is None else {"max_iterations": budget}
        mpc = ScenarioMpc(model, hypotheses=2, obstacles=1, position_indices=[0, 1], shared_steps=SHARED, solver="osqp", **extra)
        x = np.array([0.0, 0.0, 1.0, 0.0])
        path = []
        for _ in range(80):
            u, info = mpc.compute(x, GOAL, hypotheses, RADIUS)
            assert info.ok, info.status
            x = model.a @ x + model.b @ u
            path.append(x[:2].copy())
        paths.append(np.array(path))
        for i in range(2):
            assert distances(paths[-1], hypotheses[i, 0]).min() >= RADIUS - 1e-2
        assert np.linalg.norm(x[:2] - GOAL[:2]) < 0.05
    # budget 50: the first ticks' capped iterates start a little slower (13 cm behind at most, then the same path)
    assert np.abs(paths[0] - paths[1]).max() < 0.15
