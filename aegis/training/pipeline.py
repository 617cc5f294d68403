"""`aegis train`: expert demonstrations, DAgger iterations through the real policy node, Lipschitz-bounded BC, ONNX export.

1. Demonstrations: ``episodes`` randomized episodes with the expert in the filtered chain (each state
   labelled by what the expert proposed there; aegis.training.rollout).
2. For each DAgger iteration: the current policy, exported with its contract, takes the expert's
   place in the chain (the ``quadrotor_policy`` / ``diff_drive_policy`` node, exactly as it is
   deployed); the states it visits are labelled by the expert and added to the data (beta = 0:
   the learner alone drives after the demonstrations); the policy is trained again, from the
   same seed, on everything gathered.
3. The last policy is written with its contract; certified and empirical Lipschitz bounds and the
   imitation error on held-out expert episodes (never trained on) are reported.

Same config, options and seed give the same file, byte for byte, whatever runs the rollouts (one
pool of workers serves every stage; with local workers the held-out episodes run while round 0
trains, as neither needs the other). With ``dynamics`` every episode's plant draws from that set per
its seed; with ``overlay`` plant and expert are centred on it; with ``privileged_expert`` the expert is told
each episode's true plant (aegis.runs.privileged); the contract's producer records all three.
"""

from __future__ import annotations

import importlib
import math
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from aegis.config_files import sha256_of
from aegis.runs.backends import Backend, job_pool, run_jobs
from aegis.runs.policy_swap import policy_overrides
from aegis.training.bc import BcSettings, train_bc
from aegis.training.dataset import Dataset, imitation_error
from aegis.training.expert import ExpertSetup, expert_setup
from aegis.training.export import export_policy, policy_contract
from aegis.training.lipschitz import certified_bound, empirical_bounds, forward, spectral_norms
from aegis.training.rollout import EpisodeData, run_episode
from aegis.training.scenarios import training_episodes
from aegis.training.stage_clock import StageClock, StageTime, critical_path_s

VALIDATION_STREAM = 1000
"""Scenario stream of the held-out expert episodes (iterations use 0, 1, 2, ...)."""

Progress = Callable[[str, int, int, str], None]
"""progress(stage, done, total, note): called as episodes and epochs finish."""


@dataclass(frozen=True)
class TrainSettings:
    """One training run: the expert config (and overrides), output file, seed, data budget, network and optimiser."""

    config: Path
    out: Path
    seed: int = 0
    overrides: tuple[str, ...] = ()
    observation: tuple[str, ...] | None = None
    """Observation fields (default: the robot kind's DEFAULT_OBSERVATIONS)."""
    episodes: int = 30
    iterations: int = 3
    dagger_episodes: int = 15
    validation_episodes: int = 6
    max_duration_s: float = 20.0
    bc: BcSettings = field(default_factory=BcSettings)
    command: str = ""
    backend: Backend = field(default_factory=Backend)
    """Where the rollouts run (aegis.runs.backends; default: one after another in this process); the model does not depend on it."""
    dynamics: str | None = None
    """A dynamics set (a shipped name or a file, aegis.sim.dynamics) every episode's plant draws from, per its seed; None: nominal."""
    overlay: Path | None = None
    """A hw_config fragment (what `aegis sysid` writes) laid over the config before ``overrides``: plant and expert both take it."""
    privileged_expert: bool = False
    """The expert is told each episode's true plant (aegis.runs.privileged): demonstrations and DAgger labels."""


@dataclass
class IterationReport:
    """One round: where its data came from, how much there is, and how the policy it trained does."""

    iteration: int
    source: str
    episodes: int
    samples_added: int
    samples_total: int
    rollout_collisions: int | None
    rollout_tracking_rmse_m: float | None
    train_loss: float
    heldout_error: float


@dataclass
class TrainReport:
    """What `aegis train` prints and the model card quotes."""

    out: Path
    sha256: str
    expert: str
    robot_kind: str
    seed: int
    samples: int
    heldout_samples: int
    heldout_error_untrained: float
    heldout_error: float
    layer_bound: float
    layer_norms: list[float]
    certified_bound: float
    certified_bound_physical: float
    empirical_gradient: float
    empirical_ratio: float
    empirical_gradient_physical: float
    empirical_ratio_physical: float
    iterations: list[IterationReport]
    wall_time_s: float
    plant: dict[str, Any] = field(default_factory=dict)
    """The dynamics set and overlay it was trained on, as the contract records them (empty: the config's own plant)."""
    stages: list[StageTime] = field(default_factory=list)
    """Per stage: this process's CPU, the local workers' CPU and the wall seconds (aegis.training.stage_clock)."""
    cores: int | None = None
    """The cores the rollouts ran on here (local workers; 1 when one after another in this process); None with Ray, whose workers' CPU is not read."""
    critical_path_s: float | None = None
    """Estimated wall seconds on ``cores`` free cores, from the stages' CPU (aegis.training.stage_clock.critical_path_s)."""

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        data["out"] = str(self.out)
        return data


def train(settings: TrainSettings, progress: Progress | None = None) -> TrainReport:
    """Run the pipeline; write ``settings.out``; return the numbers."""
    started = time.perf_counter()
    clock = StageClock()
    report = clock.wrap(progress or (lambda stage, done, total, note: None))
    setup = expert_setup(settings.config, plant_overrides_of(settings), settings.observation, settings.privileged_expert)
    with tempfile.TemporaryDirectory(prefix="aegis-train-") as work, job_pool(settings.backend) as pool:
        folder = Path(work)
        collect = partial(_collect, setup, settings, folder=folder, report=report, pool=pool)  # one set of workers for every stage
        if pool is not None:  # this process waits through the demonstrations: torch's import (about 1 s) is done there, not before round 0's fit
            threading.Thread(target=_import_torch, name="import-torch", daemon=True).start()
        demos = collect(0, settings.episodes, stage="expert demonstrations")
        parts = [Dataset(np.concatenate([e.observations for e in demos]), np.concatenate([e.actions for e in demos]))]
        heldout, model = _heldout_while_fitting(
            partial(collect, VALIDATION_STREAM, settings.validation_episodes, stage="held-out expert episodes"),
            partial(_fit, setup, settings, Dataset.concat(parts), 0, report),
            overlap=pool is not None,
        )
        validation = Dataset.concat([Dataset(e.observations, e.actions) for e in heldout])
        rounds: list[IterationReport] = []
        rounds.append(_round(0, "expert", demos, parts, model, validation, setup))
        for iteration in range(1, settings.iterations + 1):
            policy_file = folder / f"policy_{iteration - 1}.onnx"
            _export(setup, settings, model, policy_file, f"DAgger iteration {iteration - 1} of: {settings.command}")
            takeover = tuple(policy_overrides(setup.config, policy_file))  # as `aegis sim --policy` swaps it in
            visited = collect(iteration, settings.dagger_episodes, stage=f"DAgger {iteration}: policy rollouts", takeover=takeover)
            parts.append(Dataset(np.concatenate([e.observations for e in visited]), np.concatenate([e.actions for e in visited])))
            model = _fit(setup, settings, Dataset.concat(parts), iteration, report)
            rounds.append(_round(iteration, "policy", visited, parts, model, validation, setup))
    report("export and bounds", 0, 1, "")
    data = Dataset.concat(parts)
    weights, mean, std = model
    certified = certified_bound(weights)
    _export(setup, settings, model, settings.out, settings.command)
    inputs = (data.observations - mean) / std
    # the network's map and the physical one on the same points and pairs, their Jacobians and forward passes computed once
    empirical, physical = empirical_bounds(weights, inputs, np.random.default_rng((settings.seed, 7)), [(None, None), (1.0 / std, setup.action_scale)])
    report("export and bounds", 1, 1, "")
    stages = clock.stop()
    cores = None if settings.backend.kind == "ray" else max(1, settings.backend.workers)
    return TrainReport(
        out=settings.out,
        sha256=sha256_of(settings.out),
        expert=setup.type_name,
        robot_kind=setup.robot_kind,
        seed=settings.seed,
        samples=len(data),
        heldout_samples=len(validation),
        heldout_error_untrained=imitation_error(np.zeros_like(validation.actions), validation.actions, setup.action_limit),
        heldout_error=rounds[-1].heldout_error,
        layer_bound=settings.bc.layer_bound,
        layer_norms=spectral_norms(weights),
        certified_bound=certified,
        certified_bound_physical=certified_bound(weights, input_gain=1.0 / std, output_scale=setup.action_scale),
        empirical_gradient=empirical.gradient,
        empirical_ratio=empirical.ratio,
        empirical_gradient_physical=physical.gradient,
        empirical_ratio_physical=physical.ratio,
        iterations=rounds,
        wall_time_s=time.perf_counter() - started,
        plant=plant_record(settings),
        stages=stages,
        cores=cores,
        critical_path_s=None if cores is None else round(critical_path_s(stages, cores), 3),
    )


Model = tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]
"""(float32 weights, observation mean, observation std)."""


def _collect(
    setup: ExpertSetup,
    settings: TrainSettings,
    stream: int,
    count: int,
    folder: Path,
    stage: str,
    report: Progress,
    takeover: tuple[str, ...] = (),
    pool: Any = None,
) -> list[EpisodeData]:
    episodes = training_episodes(setup.robot_kind, setup.config.scenario, count, settings.seed, stream, folder, settings.max_duration_s)
    arrived = [0]
    report(stage, 0, count, "")

    def one_more(done: EpisodeData) -> None:
        arrived[0] += 1
        report(stage, arrived[0], count, f"{done.name}: {len(done.actions)} samples, {done.collisions} collisions, {done.crashes} crashes")

    # Longest first, so that no worker is left with a long episode while the others idle at the stage's end; the
    # results are put back in episode order whichever worker ran them: the same data, the same model, on every backend.
    order = sorted(range(len(episodes)), key=lambda i: -episodes[i].duration_s)
    results = run_jobs(run_episode, [(setup, episodes[i], takeover) for i in order], settings.backend, one_more, pool)
    in_order: list[EpisodeData] = [None] * len(episodes)  # type: ignore[list-item]
    for i, result in zip(order, results):
        in_order[i] = result
    return in_order


def _import_torch() -> None:
    """Import torch ahead of the first fit; a missing or broken torch is reported by the fit itself, as without this."""
    try:
        importlib.import_module("torch")
    except Exception:  # noqa: BLE001 - the fit raises the real error with its own message
        pass


def _heldout_while_fitting(
    collect: Callable[[], list[EpisodeData]], fit: Callable[[], Model], overlap: bool
) -> tuple[list[EpisodeData], Model]:
    """The held-out episodes and round 0's fit; with local workers (``overlap``) at once: the held-out episodes need no
    policy, so the workers run them (a thread here waits on them) while this process trains, instead of idling
    through it. The same episodes and the same fit either way: neither reads the other's result."""
    if not overlap:
        return collect(), fit()
    with ThreadPoolExecutor(max_workers=1) as side:
        pending = side.submit(collect)
        model = fit()
        return pending.result(), model


def _fit(setup: ExpertSetup, settings: TrainSettings, data: Dataset, iteration: int, report: Progress) -> Model:
    mean, std = data.normalization()
    stage = f"training {iteration}: {len(data)} samples"
    report(stage, 0, settings.bc.epochs, "")
    result = train_bc(
        (data.observations - mean) / std,
        data.actions / setup.action_scale,
        settings.bc,
        settings.seed,
        progress=lambda epoch, loss: report(stage, epoch, settings.bc.epochs, f"loss {loss:.2e}"),
    )
    return result.weights, mean, std


def _round(
    iteration: int, source: str, episodes: list[EpisodeData], parts: list[Dataset], model: Model, validation: Dataset, setup: ExpertSetup
) -> IterationReport:
    weights, mean, std = model
    predicted = np.clip(forward(weights, (validation.observations - mean) / std) * setup.action_scale, -setup.action_limit, setup.action_limit)
    rmse = [e.tracking_rmse_m for e in episodes if math.isfinite(e.tracking_rmse_m)]
    total = Dataset.concat(parts)
    loss = float(np.mean(np.square(forward(weights, (total.observations - mean) / std) - np.clip(total.actions / setup.action_scale, -1, 1))))
    return IterationReport(
        iteration=iteration,
        source=source,
        episodes=len(episodes),
        samples_added=len(parts[-1]),
        samples_total=len(total),
        rollout_collisions=sum(e.collisions for e in episodes) if source == "policy" else None,
        rollout_tracking_rmse_m=float(np.mean(rmse)) if source == "policy" and rmse else None,
        train_loss=loss,
        heldout_error=imitation_error(predicted, validation.actions, setup.action_limit),
    )


def _export(setup: ExpertSetup, settings: TrainSettings, model: Model, path: Path, command: str) -> Path:
    weights, mean, std = model
    contract = policy_contract(setup, mean, std, certified_bound(weights), command, settings.seed, plant=plant_record(settings))
    return export_policy(weights, contract, path)


def plant_overrides_of(settings: TrainSettings) -> tuple[str, ...]:
    """The config overrides training runs with: the overlay's keys, then ``--set``'s, then the plant's dynamics set.

    The expert (its model parameters come from the same config) and the plant both see the overlay, so
    training is centred on it; the dynamics set then perturbs the plant alone, per episode seed, as
    `aegis eval --dynamics` does. ConfigError/UsageError naming a bad set, overlay file or key.
    """
    from aegis.config import load_config
    from aegis.cli_options import overlay_overrides
    from aegis.sim.dynamics import plant_overrides

    overrides = [*overlay_overrides(settings.overlay), *settings.overrides]
    if settings.dynamics is None:
        return tuple(overrides)
    return (*overrides, *plant_overrides(load_config(settings.config, overrides), settings.dynamics))


def plant_record(settings: TrainSettings) -> dict[str, Any]:
    """What the contract's producer records of the plant it was trained on: the dynamics set (its name and ranges), the overlay."""
    from aegis.cli_options import flatten_mapping
    from aegis.config_files import read_yaml_mapping
    from aegis.sim.dynamics import PARAMETERS, load_dynamics, resolve_dynamics

    record: dict[str, Any] = {}
    if settings.dynamics is not None:
        dynamics = load_dynamics(resolve_dynamics(settings.dynamics))
        ranges = {name: {"low": getattr(dynamics, name).low, "high": getattr(dynamics, name).high} for name in PARAMETERS}
        record["dynamics"] = {"set": Path(str(settings.dynamics)).stem, "description": dynamics.description, **ranges}
    if settings.overlay is not None:
        record["overlay"] = dict(flatten_mapping(read_yaml_mapping(settings.overlay)))
    if settings.privileged_expert:
        record["privileged_expert"] = True
    return record
