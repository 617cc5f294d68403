"""A quantized policy judged against its float model closed loop: the same randomized episodes, tracking, collisions, actions.

Both models fly the config's scenario in the nominal command source's place, under the filter,
on the same seeds (aegis.runs.evaluation campaigns); per episode the tracking RMSE of each and their
difference, and the collisions. The action difference is measured where it means something: both
models are fed the observations the float model met in closed loop, and the largest difference of
each action element (physical units) is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aegis.config_files import ConfigError
from aegis.runs.backends import Backend
from aegis.runs.evaluation import run_campaign
from aegis.policy_tools.rollouts import policy_campaign, record_policy_inputs

_SAME = ("robot_kind", "control_rate_hz", "history_length", "observation", "action")
"""Contract fields the float and the quantized model must share to be compared."""


def action_differences(float_model: Path, quantized: Path, observations: np.ndarray, mapping: Path | None = None) -> np.ndarray:
    """|a_float - a_quantized| per observation row and action element (physical units); rows where either refuses are NaN."""
    from aegis.inference.runtime import PolicyRuntime

    runtimes = [PolicyRuntime(float_model, contract=mapping), PolicyRuntime(quantized)]
    differences = np.full((len(observations), runtimes[0].action_size), np.nan)
    for i, row in enumerate(observations):
        a, b = (runtime.act(row) for runtime in runtimes)
        if a is not None and b is not None:
            differences[i] = np.abs(a - b)
    return differences


def judge_quantized(
    config: Path,
    float_model: Path,
    quantized: Path,
    episodes: int,
    seed: int = 0,
    duration_s: float | None = None,
    workers: int = 1,
    mapping: Path | None = None,
    overrides: Sequence[str] = (),
    backend: Backend | None = None,
) -> dict[str, Any]:
    """Closed-loop numbers of both models on the same episodes, their paired differences, and the action difference.

    ``overrides`` apply to ``config`` for both models (e.g. a dynamics perturbation of the plant); the episodes run
    on ``backend`` (default: a local pool of ``workers``, aegis.runs.backends)."""
    from aegis.inference.contract import read_contract

    contracts = [read_contract(float_model, mapping), read_contract(quantized)]
    differing = [key for key in _SAME if getattr(contracts[0], key) != getattr(contracts[1], key)]
    if differing:
        raise ConfigError(f"{quantized}: its contract differs from {float_model}'s in {', '.join(differing)}: not a quantization of it")
    campaigns = [
        policy_campaign(config, model, episodes, seed, duration_s, m, overrides) for model, m in ((float_model, mapping), (quantized, None))
    ]
    results = [run_campaign(campaign, workers=workers, backend=backend) for campaign in campaigns]
    rows = []
    for f, q in zip(results[0]["episodes"], results[1]["episodes"]):
        both = f["tracking_rmse_m"] is not None and q["tracking_rmse_m"] is not None
        rows.append({
            "episode": f["episode"], "seed": f["seed"],
            "float_rmse_m": f["tracking_rmse_m"], "quantized_rmse_m": q["tracking_rmse_m"],
            "rmse_difference_m": q["tracking_rmse_m"] - f["tracking_rmse_m"] if both else None,
            "float_collisions": f["collisions"], "quantized_collisions": q["collisions"],
            "float_crashes": f["crashes"], "quantized_crashes": q["crashes"],
            "float_success": f["success"], "quantized_success": q["success"],
        })  # fmt: skip
    observations = record_policy_inputs(campaigns[0])
    differences = action_differences(float_model, quantized, observations, mapping)
    paired = [abs(r["rmse_difference_m"]) for r in rows if r["rmse_difference_m"] is not None]
    return {
        "config": str(config),
        "float_model": str(float_model),
        "quantized_model": str(quantized),
        "seed": seed,
        "float": results[0]["aggregate"],
        "quantized": results[1]["aggregate"],
        "episodes": rows,
        "max_abs_rmse_difference_m": max(paired) if paired else None,
        "action_elements": [f.name if f.size == 1 else f"{f.name}[{i}]" for f in contracts[0].action for i in range(f.size)],
        "frames_compared": int(np.isfinite(differences).all(axis=1).sum()),
        "max_action_difference": np.nanmax(differences, axis=0).tolist() if len(differences) else None,
        "mean_action_difference": np.nanmean(differences, axis=0).tolist() if len(differences) else None,
    }
