"""Linear MPC: the problem's checks, the OSQP fast path against the cvxpy reference, limits, closed loop, warm start, silence, failures.

The model is the planar point mass (double integrator, 4 states / 2 inputs) of
aegis.controllers.mpc.quadrotor.translational_mpc(dims=2). Agreement with the reference is checked
at tight tolerances (OSQP eps 1e-9 against Clarabel at 1e-12): the test is that both paths solve the
same problem; the default tolerance's own accuracy is checked separately.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import scipy.linalg

from aegis.controllers.mpc.linear import LinearMpc, OsqpSettings
from aegis.controllers.mpc.problem import mpc_problem
from aegis.controllers.mpc.quadrotor import double_integrator, translational_mpc
from aegis.controllers.mpc.reference import CvxpyMpc, per_step_problem, qp_size

DT = 0.05
HORIZON = 20
A_MAX = 2.0
V_MAX = 1.0
TIGHT = OsqpSettings(eps_abs=1e-9, eps_rel=1e-9, max_iter=200_000)
CLARABEL_TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "tol_ktratio": 1e-10, "max_iter": 500}


def point_mass(settings: OsqpSettings = OsqpSettings(), relax: bool = False) -> LinearMpc:
    """No relaxed fallback unless ``relax`` (the default of translational_mpc): an infeasible tick is a failure."""
    return translational_mpc(DT, HORIZON, a_max=A_MAX, v_max=V_MAX, dims=2, relax_state_limits=relax, settings=settings)


def random_state(rng: np.random.Generator) -> np.ndarray:
    """Positions within 2 m, speeds well inside the limit (so that the state limits stay feasible)."""
    return np.concatenate([rng.uniform(-2.0, 2.0, 2), rng.uniform(-0.6, 0.6, 2)])


def random_reference(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    if rng.random() < 0.5:
        return np.concatenate([rng.uniform(-2.0, 2.0, 2), np.zeros(2)]), None  # a setpoint
    t = DT * np.arange(HORIZON + 1)
    w, phase = rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
    position = np.column_stack([np.sin(w * t + phase), np.cos(w * t)])
    velocity = np.column_stack([w * np.cos(w * t + phase), -w * np.sin(w * t)])
    accel = np.column_stack([-w * w * np.sin(w * t + phase), -w * w * np.cos(w * t)])
    return np.hstack([position, velocity]), accel[:-1]


# --- the problem definition ---------------------------------------------------------------------


def test_default_terminal_weight_solves_the_riccati_equation() -> None:
    problem = point_mass().problem
    a, b, q, r, p = problem.a, problem.b, problem.q, problem.r, problem.p
    np.testing.assert_allclose(p, scipy.linalg.solve_discrete_are(a, b, q, r), rtol=1e-10)
    k = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
    residual = a.T @ p @ a - p - a.T @ p @ b @ k + q
    assert np.abs(residual).max() < 1e-8 * np.abs(p).max()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"q": np.ones((3, 3))}, "q must be"),
        ({"r": np.array([[1.0, 2.0], [0.0, 1.0]])}, "r must be symmetric"),
        ({"r": np.zeros((2, 2))}, "r must be positive definite"),
        ({"q": -np.eye(4)}, "q must be positive semi-definite"),
        ({"horizon": 0}, "horizon"),
        ({"u_min": [1.0, 1.0], "u_max": [0.0, 0.0]}, "u_min must be <= u_max"),
        ({"x_min": [np.nan] * 4}, "must not be NaN"),
        ({"b": np.ones((3, 2))}, "b must be"),
    ],
)
def test_a_bad_problem_is_refused_naming_what_is_wrong(kwargs: dict, message: str) -> None:
    a, b = double_integrator(DT, 2)
    arguments = {"a": a, "b": b, "horizon": HORIZON, "q": np.eye(4), "r": np.eye(2), **kwargs}
    with pytest.raises(ValueError, match=message):
        mpc_problem(**arguments)


def test_an_unstabilisable_model_needs_an_explicit_terminal_weight() -> None:
    a = np.array([[1.1, 0.0], [0.0, 1.0]])
    b = np.array([[0.0], [1.0]])  # the unstable mode is not actuated
    with pytest.raises(ValueError, match="pass p"):
        mpc_problem(a, b, 10, np.eye(2), np.eye(1))
    assert mpc_problem(a, b, 10, np.eye(2), np.eye(1), np.eye(2)).horizon == 10


def test_warm_start_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="warm_start"):
        LinearMpc(point_mass().problem, warm_start="hot")  # type: ignore[arg-type]


# --- one flat decision variable -------------------------------------------------------------------


def test_one_flat_variable_gives_the_solver_half_the_variables_of_a_per_step_formulation() -> None:
    mpc = point_mass()
    problem = mpc.problem
    flat = qp_size(CvxpyMpc(problem).cvxpy_problem)
    per_step = qp_size(per_step_problem(problem))
    n_z = HORIZON * (problem.n + problem.m)
    assert flat["variables"] == mpc.qp.n_variables == n_z
    assert flat["equalities"] == HORIZON * problem.n  # the dynamics, nothing else
    assert per_step["variables"] >= 1.8 * flat["variables"]
    print(f"\nQP sizes (4x2, N={HORIZON}): flat {flat}; per-step {per_step}; OSQP direct {mpc.qp.n_variables} x {mpc.qp.n_rows}")


# --- the fast path equals the reference -----------------------------------------------------------


def test_osqp_direct_equals_the_cvxpy_reference_on_random_states() -> None:
    rng = np.random.default_rng(0)
    fast = point_mass(TIGHT)
    reference = CvxpyMpc(fast.problem, cp.CLARABEL, CLARABEL_TIGHT)
    for _ in range(40):
        x0 = random_state(rng)
        x_ref, u_ref = random_reference(rng)
        fast.reset()
        u_fast, info_fast = fast.compute(x0, x_ref, u_ref)
        u_ref_path, info_ref = reference.compute(x0, x_ref, u_ref)
        assert info_fast.ok and info_ref.ok, (info_fast.status, info_ref.status)
        np.testing.assert_allclose(u_fast, u_ref_path, atol=1e-4)
        np.testing.assert_allclose(info_fast.u_pred, info_ref.u_pred, atol=1e-4)
        np.testing.assert_allclose(info_fast.x_pred, info_ref.x_pred, atol=1e-4)
        assert info_fast.objective == pytest.approx(info_ref.objective, rel=1e-6, abs=1e-6)


def test_default_tolerance_is_accurate_to_a_fraction_of_a_percent_of_the_input_range() -> None:
    rng = np.random.default_rng(1)
    fast = point_mass()
    reference = CvxpyMpc(fast.problem, cp.CLARABEL, CLARABEL_TIGHT)
    worst = 0.0
    for _ in range(40):
        x0 = random_state(rng)
        x_ref, u_ref = random_reference(rng)
        fast.reset()
        u_fast, info = fast.compute(x0, x_ref, u_ref)
        assert info.ok
        worst = max(worst, float(np.abs(u_fast - reference.compute(x0, x_ref, u_ref)[0]).max()))
    assert worst <= 5e-3 * 2 * A_MAX, worst


# --- limits, closed loop, warm start -----------------------------------------------------------------


def test_the_plan_respects_the_limits_and_follows_the_model() -> None:
    rng = np.random.default_rng(2)
    mpc = point_mass()
    problem = mpc.problem
    tolerance = 1e-3
    for _ in range(30):
        x0 = random_state(rng)
        target = np.concatenate([rng.uniform(-20.0, 20.0, 2), np.zeros(2)])  # far: the limits bind
        u0, info = mpc.compute(x0, target)
        assert info.ok
        assert np.all(u0 >= -A_MAX) and np.all(u0 <= A_MAX)  # the command itself: exactly
        assert np.all(np.abs(info.u_pred) <= A_MAX + tolerance)
        assert np.all(np.abs(info.x_pred[1:, 2:]) <= V_MAX + tolerance)
        assert np.abs(info.u_pred).max() > A_MAX - tolerance  # the limits did bind
        predicted = info.x_pred[:-1] @ problem.a.T + info.u_pred @ problem.b.T
        np.testing.assert_allclose(info.x_pred[1:], predicted, atol=1e-3)
        assert np.array_equal(info.x_pred[0], x0)


def test_closed_loop_reaches_a_setpoint_and_tracks_a_moving_reference() -> None:
    mpc = point_mass()
    a, b = mpc.problem.a, mpc.problem.b
    x = np.array([1.5, -1.0, 0.0, 0.0])
    target = np.array([-0.5, 0.5, 0.0, 0.0])
    for _ in range(int(5.0 / DT)):
        u, info = mpc.compute(x, target)
        assert info.ok
        x = a @ x + b @ u
    assert np.abs(x - target).max() < 1e-3

    errors = []
    w = 2 * np.pi / 8.0  # peak speed 0.79 m/s per axis: inside the limit
    for k in range(int(12.0 / DT)):
        t = (k + np.arange(HORIZON + 1)) * DT
        x_ref = np.column_stack([np.sin(w * t), 0.5 * np.sin(2 * w * t), w * np.cos(w * t), w * np.cos(2 * w * t)])
        u_ref = np.column_stack([-w * w * np.sin(w * t), -2 * w * w * np.sin(2 * w * t)])[:-1]
        u, info = mpc.compute(x, x_ref, u_ref)
        assert info.ok
        x = a @ x + b @ u
        if k * DT > 6.0:
            errors.append(np.linalg.norm(x[:2] - x_ref[1, :2]))
    assert max(errors) < 1e-3


def _iterations(warm_start: str) -> list[int]:
    mpc = LinearMpc(point_mass().problem, warm_start=warm_start)  # type: ignore[arg-type]
    a, b = mpc.problem.a, mpc.problem.b
    x = np.array([1.5, -1.0, 0.3, 0.0])
    target = np.array([-0.5, 0.5, 0.0, 0.0])
    counts = []
    for _ in range(80):
        u, info = mpc.compute(x, target)
        assert info.ok
        counts.append(info.iterations)
        x = a @ x + b @ u
    return counts


def test_warm_start_does_not_increase_iterations_on_a_steady_reference() -> None:
    shifted, previous, cold = _iterations("shift"), _iterations("previous"), _iterations("cold")
    print(f"\niterations over 80 ticks to a setpoint: shifted {sum(shifted)}, previous {sum(previous)}, cold {sum(cold)}")
    assert sum(shifted) <= sum(cold)
    assert sum(previous) <= sum(cold)


def test_reset_forgets_the_previous_solution() -> None:
    mpc = point_mass()
    x0, target = np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(4)
    first = mpc.compute(x0, target)[1].iterations
    mpc.compute(x0, target)
    mpc.reset()
    assert mpc.compute(x0, target)[1].iterations == first


# --- silence and failures ---------------------------------------------------------------------------


def test_solves_print_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    """osqp 1.1 prints "Polishing not needed" from C when polishing finds no active set: the fast path must not polish."""
    mpc = point_mass()
    x = np.array([0.1, 0.0, 0.0, 0.0])
    for _ in range(20):  # nothing active: what made osqp print
        u, info = mpc.compute(x, np.zeros(4))
        x = mpc.problem.a @ x + mpc.problem.b @ u
    mpc.compute(np.array([0.0, 0.0, 3.0, 0.0]), np.zeros(4))  # infeasible: fails quietly too
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_infeasible_state_limits_give_a_status_not_an_exception() -> None:
    mpc = point_mass()
    u0, info = mpc.compute(np.array([0.0, 0.0, 1.5, 0.0]), np.zeros(4))  # 1.5 m/s: cannot get under 1 m/s in one step
    assert not info.ok
    assert "infeasible" in info.status
    assert np.isnan(u0).all() and np.isnan(info.x_pred).all() and np.isnan(info.u_pred).all()
    u0, info = mpc.compute(np.array([0.0, 0.0, 0.5, 0.0]), np.zeros(4))  # and the next tick is fine again
    assert info.ok and np.isfinite(u0).all()


def test_an_infeasible_tick_is_solved_again_without_the_state_limits_when_asked() -> None:
    plain, relaxing = point_mass(), point_mass(relax=True)
    past_the_limit = np.array([0.0, 0.0, 1.5, 0.0])  # no input gets the speed under 1 m/s in one step
    assert not plain.compute(past_the_limit, np.zeros(4))[1].ok
    u0, info = relaxing.compute(past_the_limit, np.zeros(4))
    assert info.ok and info.relaxed and "state limits dropped" in info.status
    assert u0[0] == pytest.approx(-A_MAX, abs=1e-3)  # braking as hard as it can
    assert np.all(np.abs(info.u_pred) <= A_MAX + 1e-3)  # the input limits stay
    relaxed_reference = CvxpyMpc(plain.problem.without_state_limits(), cp.CLARABEL, CLARABEL_TIGHT)
    np.testing.assert_allclose(u0, relaxed_reference.compute(past_the_limit, np.zeros(4))[0], atol=1e-2)
    # back within the limits, the limits hold again, exactly as without the fallback
    inside = np.array([0.0, 0.0, 0.9, 0.0])
    u_relaxing, info = relaxing.compute(inside, np.array([5.0, 0.0, 0.0, 0.0]))
    assert info.ok and not info.relaxed
    assert np.all(np.abs(info.x_pred[1:, 2:]) <= V_MAX + 1e-3)
    np.testing.assert_allclose(u_relaxing, plain.compute(inside, np.array([5.0, 0.0, 0.0, 0.0]))[0], atol=1e-3)


@pytest.mark.parametrize("bad", ["x0", "x_ref", "u_ref"])
def test_non_finite_inputs_give_a_status(bad: str) -> None:
    mpc = point_mass()
    x0, x_ref, u_ref = np.zeros(4), np.ones(4), np.zeros(2)
    locals_ = {"x0": x0, "x_ref": x_ref, "u_ref": u_ref}
    locals_[bad] = np.full_like(locals_[bad], np.nan)
    u0, info = mpc.compute(locals_["x0"], locals_["x_ref"], locals_["u_ref"])
    assert not info.ok and "non-finite" in info.status and np.isnan(u0).all()


def test_time_varying_updates_need_a_time_varying_problem_and_the_right_shapes() -> None:
    mpc = point_mass()
    a = np.repeat(mpc.problem.a[None], HORIZON, axis=0)
    b = np.repeat(mpc.problem.b[None], HORIZON, axis=0)
    with pytest.raises(ValueError, match="time_varying"):
        mpc.set_dynamics(a, b)
    problem = mpc.problem
    varying = LinearMpc(
        mpc_problem(problem.a, problem.b, HORIZON, problem.q, problem.r, problem.p, u_min=problem.u_min, u_max=problem.u_max, time_varying=True)
    )
    with pytest.raises(ValueError, match="expected"):
        varying.set_dynamics(a[:-1], b)
    # the same model given per step gives the time-invariant answer
    varying.set_dynamics(a, b)
    x0 = np.array([1.0, -0.5, 0.2, 0.1])
    plain = LinearMpc(mpc_problem(problem.a, problem.b, HORIZON, problem.q, problem.r, problem.p, u_min=problem.u_min, u_max=problem.u_max), TIGHT)
    varying_tight = LinearMpc(varying.problem, TIGHT)
    varying_tight.set_dynamics(a, b)
    np.testing.assert_allclose(varying_tight.compute(x0, np.zeros(4))[0], plain.compute(x0, np.zeros(4))[0], atol=1e-6)
    bad_a = a.copy()
    bad_a[3, 0, 0] = np.nan
    varying.set_dynamics(bad_a, b)
    assert not varying.compute(x0, np.zeros(4))[1].ok
