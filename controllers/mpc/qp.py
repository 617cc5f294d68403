"""The sparse QP of an :class:`MpcProblem` over ONE flat decision variable, in OSQP's form, with the index maps for per-tick updates.

Decision variable (one flat vector, no helper variables)::

    z = [x_1, ..., x_N, u_0, ..., u_{N-1}]        (N n + N m entries; x_0 is the measurement, not a variable)

OSQP's form  minimise 1/2 z' H z + g' z  subject to  l <= C z <= h  with

    H = 2 blockdiag(Q, ..., Q, P, R, ..., R)                 (constant)
    g = -2 [Q r_1; ...; Q r_{N-1}; P r_N; R s_0; ...]         (per tick: the reference)
    rows 0 .. Nn-1:      A_k x_k - x_{k+1} + B_k u_k = -c_k   (x_0 term moved right: -A_0 x_0 - c_0)
    rows Nn .. +Nm-1:    u_min <= u_k <= u_max
    rows after:          x_min <= x_k[S] <= x_max  for the constrained states S, k = 1 .. N

Per tick only g, l and h change (and, for a time-varying model, the entries of A_k and B_k in C: their
positions in C's CSC data are kept here, so an update writes them without rebuilding C).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from aegis.controllers.mpc.problem import MpcProblem


@dataclass(frozen=True, eq=False)
class SparseMpcQp:
    """The QP matrices of one problem and where things live in them (see the module doc)."""

    hessian: sp.csc_matrix
    """H, upper triangle (what OSQP reads)."""
    constraints: sp.csc_matrix
    """C (rows: dynamics, inputs, constrained states)."""
    lower: np.ndarray
    """l with the constant parts filled (input and state limits); the dynamics rows are set per tick."""
    upper: np.ndarray
    a_positions: np.ndarray
    """(N-1, n, n) positions in C.data of A_1 .. A_{N-1} (-1 where an entry is not stored: time-invariant zeros)."""
    b_positions: np.ndarray
    """(N, n, m) positions in C.data of B_0 .. B_{N-1} (-1 where not stored)."""
    z_shift: np.ndarray
    """Indices that shift a primal solution one step ahead (last step repeated): the warm start."""
    y_shift: np.ndarray
    """The same for the dual solution (one entry per row of C)."""

    @property
    def n_variables(self) -> int:
        return self.constraints.shape[1]

    @property
    def n_rows(self) -> int:
        return self.constraints.shape[0]


def csc_with_positions(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> tuple[sp.csc_matrix, np.ndarray]:
    """A CSC matrix from COO triplets (no duplicates; explicit zeros kept) and, per triplet, its index in the CSC data."""
    order = sp.coo_matrix((np.arange(1, len(rows) + 1, dtype=float), (rows, cols)), shape=shape).tocsc()
    if order.nnz != len(rows):
        raise ValueError("duplicate (row, column) entries")
    triplet_of_slot = order.data.astype(np.int64) - 1
    positions = np.empty(len(rows), dtype=np.int64)
    positions[triplet_of_slot] = np.arange(len(rows))
    matrix = sp.csc_matrix((np.asarray(values, dtype=float)[triplet_of_slot], order.indices.copy(), order.indptr.copy()), shape=shape)
    return matrix, positions


def block_shift(blocks: int, size: int) -> np.ndarray:
    """Indices moving each of ``blocks`` consecutive blocks of ``size`` one block forward, the last repeated."""
    source = np.minimum(np.arange(blocks) + 1, blocks - 1)
    return (source[:, None] * size + np.arange(size)[None, :]).ravel()


def build_qp(problem: MpcProblem) -> SparseMpcQp:
    """The sparse QP of ``problem`` (time-varying problems store every entry of A_k and B_k, so all can be updated)."""
    n, m, horizon = problem.n, problem.m, problem.horizon
    nx, nu = horizon * n, horizon * m
    selected = problem.constrained_states
    ns = len(selected)

    blocks = [sp.kron(sp.eye(horizon - 1), 2.0 * problem.q), 2.0 * problem.p, sp.kron(sp.eye(horizon), 2.0 * problem.r)]
    hessian = sp.block_diag(blocks, format="csc")
    hessian = sp.triu(hessian, format="csc")
    hessian.eliminate_zeros()

    a_mask = np.ones((n, n), dtype=bool) if problem.time_varying else problem.a != 0.0
    b_mask = np.ones((n, m), dtype=bool) if problem.time_varying else problem.b != 0.0
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    ai, aj = np.nonzero(a_mask)
    bi, bj = np.nonzero(b_mask)
    a_table = np.full((max(horizon - 1, 0), n, n), -1, dtype=np.int64)
    b_table = np.full((horizon, n, m), -1, dtype=np.int64)
    count = 0

    def add(r: np.ndarray, c: np.ndarray, v: np.ndarray) -> np.ndarray:
        nonlocal count
        rows.append(r)
        cols.append(c)
        vals.append(v)
        index = np.arange(count, count + len(r))
        count += len(r)
        return index

    for k in range(horizon):
        base = k * n
        add(base + np.arange(n), k * n + np.arange(n), -np.ones(n))  # -x_{k+1}
        if k >= 1:
            a_table[k - 1, ai, aj] = add(base + ai, (k - 1) * n + aj, problem.a[ai, aj])
        b_table[k, bi, bj] = add(base + bi, nx + k * m + bj, problem.b[bi, bj])
    add(nx + np.arange(nu), nx + np.arange(nu), np.ones(nu))  # input limits
    if ns:
        state_cols = (np.arange(horizon)[:, None] * n + selected[None, :]).ravel()
        add(nx + nu + np.arange(horizon * ns), state_cols, np.ones(horizon * ns))
    n_rows = nx + nu + horizon * ns
    constraints, positions = csc_with_positions(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), (n_rows, nx + nu))
    a_positions = np.where(a_table >= 0, positions[np.maximum(a_table, 0)], -1)
    b_positions = np.where(b_table >= 0, positions[np.maximum(b_table, 0)], -1)

    lower = np.zeros(n_rows)
    upper = np.zeros(n_rows)
    lower[nx : nx + nu] = np.tile(problem.u_min, horizon)
    upper[nx : nx + nu] = np.tile(problem.u_max, horizon)
    if ns:
        lower[nx + nu :] = np.tile(problem.x_min[selected], horizon)
        upper[nx + nu :] = np.tile(problem.x_max[selected], horizon)

    z_shift = np.concatenate([block_shift(horizon, n), nx + block_shift(horizon, m)])
    y_parts = [block_shift(horizon, n), nx + block_shift(horizon, m)]
    if ns:
        y_parts.append(nx + nu + block_shift(horizon, ns))
    y_shift = np.concatenate(y_parts)
    for array in (a_positions, b_positions, z_shift, y_shift):
        array.setflags(write=False)
    return SparseMpcQp(hessian, constraints, lower, upper, a_positions, b_positions, z_shift, y_shift)
