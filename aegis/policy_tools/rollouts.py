"""Closed-loop rollouts of an ONNX policy recording every model input it was fed: calibration data and comparison points.

Static int8 quantization calibrates its activation ranges on the observations the policy meets in
closed loop, not on random inputs; judging a quantized model compares its actions with the float
model's on those same observations. Episodes are the campaign's (aegis.runs.evaluation): the config's
plan with the policy in the nominal source's place, the plant's randomisation on, seed + episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aegis.config import load_config
from aegis.runs.evaluation import Campaign, campaign_plan
from aegis.runs.policy_swap import policy_overrides

DEFAULT_CONFIGS = {"quadrotor": "quadrotor_oracle_sim.yaml", "diff_drive": "husky_oracle_sim.yaml"}
"""Robot kind -> the shipped sim config a model of that kind is rolled out in when no config is given (the ground-truth
chains: the observations a policy is trained on, and what the documented quantization numbers were measured with)."""


def policy_campaign(
    config: Path, model: Path, episodes: int, seed: int = 0, duration_s: float | None = None,
    mapping: Path | None = None, overrides: Sequence[str] = (),
) -> Campaign:
    """A campaign of ``config`` (with ``overrides``) flying ``model`` in the nominal command source's place."""
    base = load_config(config, list(overrides))
    return Campaign(config, (*overrides, *policy_overrides(base, model, mapping)), episodes, seed, duration_s)


def record_policy_inputs(campaign: Campaign) -> np.ndarray:
    """Every model input (physical units, history stacked) the campaign's policy node was fed, over all episodes, in order."""
    from aegis.nodes.policy import POLICY_NODE_TYPES
    from aegis.runs.plan_run import load_plan_scenario, run_duration, run_plan

    plan = campaign_plan(campaign)
    duration = run_duration(load_plan_scenario(plan), campaign.duration_s)
    recorded: list[np.ndarray] = []

    def record_inputs(nodes: list) -> None:
        next(n for n in nodes if n.type_name in POLICY_NODE_TYPES.values()).input_log = recorded

    for episode in range(campaign.episodes):
        run_plan(plan, duration, campaign.seed + episode, prepare=record_inputs)
    return np.asarray(recorded)
