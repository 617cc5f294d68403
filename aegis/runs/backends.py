"""Where a campaign's episodes run: a local process pool (the default) or a Ray cluster, behind one ``run_jobs``.

A job is a module-level function and its arguments (picklable: a launch plan, an episode number, a
seed); every job's result comes back to the caller as it finishes (``on_result``, for a progress
bar) and the list is returned in job order, so the caller's document does not depend on which
worker finished first. ``local`` runs the jobs in the calling process (one worker) or in a pool of
spawned processes, one job per task. ``ray`` sends them to a Ray cluster (``address``), or to a Ray
instance started here with ``workers`` CPUs, in chunks of several jobs per task: Ray's per-task
overhead makes one-second tasks one by one slow (ray#8950), and a chunk per task also pays a worker's
imports (PyBullet, onnxruntime) once per chunk instead of once per episode. Each job computes the same
thing wherever it runs (its seed is in its arguments), so both backends give the same results.

Ray is an optional dependency (``pip install 'aegis[cluster]'``); without it ``--backend ray`` is a
one-line error, as is an address where no Ray cluster answers (checked with a plain TCP connect
first: Ray itself retries an unreachable address for minutes). A cluster that `ray start` set up
with token authentication (Ray's default when a token exists, e.g. ~/.ray/auth_token) takes drivers
that set ``RAY_AUTH_MODE=token`` (and find the token): the error says so.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aegis.cli_options import UsageError

BACKENDS = ("local", "ray")
"""The places episodes can run: a local process pool, or a Ray cluster."""

CHUNKS_PER_CPU = 2
"""Ray tasks per cluster CPU a campaign is cut into: few enough that per-task overhead vanishes, enough to balance the load."""

CONNECT_TIMEOUT_S = 5.0
"""How long the reachability check of a Ray address waits for a TCP connection."""

RAY_MISSING = "--backend ray needs Ray: pip install 'aegis[cluster]' (or pip install 'ray>=2.9')"


class BackendError(UsageError):
    """A backend that cannot run: Ray missing, an address nobody answers at (one line; the command line exits 2)."""


@dataclass(frozen=True)
class Backend:
    """Which backend, with how many local workers (processes, or the CPUs of a Ray instance started here) and which Ray address."""

    kind: str = "local"
    workers: int = 1
    address: str | None = None
    """A running Ray cluster (``HOST:PORT`` of its head, ``ray://HOST:PORT`` for Ray Client, or ``auto``); None: start one here."""
    chunk_size: int | None = None
    """Ray: jobs per task (None: :func:`chunk_size` of the cluster's CPUs)."""

    def __post_init__(self) -> None:
        if self.kind not in BACKENDS:
            raise BackendError(f"unknown backend {self.kind!r}: one of {', '.join(BACKENDS)}")
        if self.address is not None and self.kind != "ray":
            raise BackendError("--address names a Ray cluster: give --backend ray too")


def backend_from_args(args: Any, jobs: int) -> Backend:
    """The backend of a command's ``--backend``, ``--address`` and ``--workers`` (default: the CPU count, at most ``jobs``)."""
    workers = min(getattr(args, "workers", None) or os.cpu_count() or 1, max(1, jobs))
    return Backend(args.backend, workers, args.address)


def chunk_size(jobs: int, cpus: int) -> int:
    """Jobs per Ray task: the jobs spread over CHUNKS_PER_CPU tasks per CPU, at least one job each."""
    return max(1, math.ceil(jobs / max(1, cpus * CHUNKS_PER_CPU)))


def chunks(jobs: Sequence[tuple], size: int) -> list[list[tuple]]:
    """``jobs`` cut into consecutive lists of ``size`` (the last may be shorter)."""
    return [list(jobs[i : i + size]) for i in range(0, len(jobs), size)]


def run_chunk(fn: Callable[..., Any], jobs: Sequence[tuple]) -> list[Any]:
    """Run ``fn(*job)`` for each job, in order (what one Ray task does)."""
    return [fn(*job) for job in jobs]


def run_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple],
    backend: Backend,
    on_result: Callable[[Any], None] | None = None,
    pool: ProcessPoolExecutor | None = None,
) -> list[Any]:
    """``fn(*job)`` for every job on ``backend``; ``on_result`` sees each result as it arrives; results in job order.

    ``pool``: local workers kept open across several calls (:func:`job_pool`); None: a pool for this call alone.
    """
    report = on_result or (lambda result: None)
    if backend.kind == "ray":
        return _run_ray(fn, jobs, backend, report)
    return _run_local(fn, jobs, backend.workers, report, pool)


@contextmanager
def job_pool(backend: Backend) -> Iterator[ProcessPoolExecutor | None]:
    """Workers for several :func:`run_jobs` calls in a row (a training run's stages): local processes started once, not once
    per call (each pays PyBullet's and the solvers' imports), or one Ray connection; yields the local pool (None otherwise)."""
    if backend.kind == "ray":
        if backend.address is not None:
            check_address(backend.address)  # before Ray's import, as _run_ray does
        ray = import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            connect_ray(ray, backend)
        try:
            yield None
        finally:
            if started_here:
                ray.shutdown()
        return
    if backend.workers <= 1:
        yield None
        return
    with ProcessPoolExecutor(max_workers=backend.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def _run_local(
    fn: Callable[..., Any], jobs: Sequence[tuple], workers: int, report: Callable[[Any], None], pool: ProcessPoolExecutor | None = None
) -> list[Any]:
    results: list[Any] = [None] * len(jobs)
    if workers <= 1 or len(jobs) <= 1:
        for index, job in enumerate(jobs):
            results[index] = fn(*job)
            report(results[index])
        return results
    if pool is None:
        # spawn, not fork: a worker starts clean, with no PyBullet client or thread state inherited
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as own:
            return _run_local(fn, jobs, workers, report, own)
    futures = {pool.submit(fn, *job): index for index, job in enumerate(jobs)}
    for future in as_completed(futures):
        results[futures[future]] = future.result()
        report(results[futures[future]])
    return results


def import_ray() -> Any:
    """The ``ray`` module; BackendError naming the extra to install when it is missing."""
    try:
        import ray
    except ImportError:
        raise BackendError(RAY_MISSING) from None
    return ray


def check_address(address: str) -> None:
    """Refuse (BackendError) a ``HOST:PORT`` or ``ray://HOST:PORT`` where nothing accepts a TCP connection; ``auto`` passes."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise BackendError(f"--address {address}: expected HOST:PORT (a Ray head's GCS port, e.g. 10.0.0.5:6379), ray://HOST:PORT or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise BackendError(f"--address {address}: no Ray cluster answers there ({exc.strerror or exc})") from None


def connect_ray(ray: Any, backend: Backend) -> None:
    """``ray.init`` for ``backend``: its address (checked first), or a local instance of ``backend.workers`` CPUs, quiet."""
    import logging

    options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if backend.address is not None:
        check_address(backend.address)
        options["address"] = backend.address
    else:
        # a local instance: its workers find this checkout of aegis (a cluster's nodes must have aegis installed)
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        options.update(num_cpus=backend.workers, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        hint = ""
        if backend.address is not None and "RAY_AUTH_MODE" not in os.environ:
            hint = " (a cluster with token authentication, Ray's default for `ray start`, needs RAY_AUTH_MODE=token and its token here too)"
        raise BackendError(f"--backend ray{' --address ' + backend.address if backend.address else ''}: {str(exc).splitlines()[0]}{hint}") from None


def _run_ray(fn: Callable[..., Any], jobs: Sequence[tuple], backend: Backend, report: Callable[[Any], None]) -> list[Any]:
    if backend.address is not None:
        check_address(backend.address)  # before Ray's import (a second or more): a wrong address fails at once
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        connect_ray(ray, backend)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        size = backend.chunk_size or chunk_size(len(jobs), cpus)
        task = ray.remote(num_cpus=1)(run_chunk)
        pending = {task.remote(fn, chunk): start for start, chunk in zip(range(0, len(jobs), size), chunks(jobs, size))}
        results: list[Any] = [None] * len(jobs)
        while pending:
            (done,), _ = ray.wait(list(pending), num_returns=1)
            start = pending.pop(done)
            for offset, result in enumerate(ray.get(done)):
                results[start + offset] = result
                report(result)
        return results
    finally:
        if started_here:
            ray.shutdown()
