"""The expert of a hw_config: which node it is, what a policy imitating it reads and writes, and how it labels a state.

A training config is a hw_config whose chain holds one MPC expert (``quadrotor_mpc`` or
``diff_drive_mpc``) upstream of the safety filter. The policy trained from it takes that node's
place (``quadrotor_policy`` / ``diff_drive_policy``), so it reads the same odometry, runs at the
same rate and proposes the same nominal command, which the filter corrects.

Labels come from the real expert node: :meth:`Labeler.label` calls its ``step`` with the odometry
the controller saw, at the time it saw it, and reads the nominal command it proposes.

Where the reference is at rest the diff-drive MPC is ill posed for imitation: its linearisation
loses the lateral direction (aegis.controllers.mpc.diff_drive) and, with no moving sample in its
horizon, it turns to its ``heading at rest``, the scenario's start heading, which no observation
carries; it answers 2 cm of error with full-rate turns whose sign a policy cannot know. There the
labeler asks it with the robot's own heading as the heading at rest (the node's ``heading_at_rest``,
restored after the call): the expert then corrects the error along the heading and does not turn,
a label the observation determines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aegis.config import HwConfig, load_config

from aegis.config_files import ConfigError
from aegis.controllers.mpc.diff_drive import REST_SPEED_MPS
from aegis.inference.observations import ACTION_LAYOUTS, DEFAULT_OBSERVATIONS, OBSERVATION_SOURCES, ActionSpec
from aegis.msgs import RobotState
from aegis.node import Node, Received
from aegis.registry import node_class
from aegis.runs.privileged import PRIVILEGED_EXPERTS

POLICY_NODE_FOR_EXPERT: dict[str, str] = {"quadrotor_mpc": "quadrotor_policy", "diff_drive_mpc": "diff_drive_policy"}
"""Expert node type -> the policy node type that takes its place in the chain."""

EXPERTS_ILL_POSED_AT_REST = frozenset({"diff_drive_mpc"})
"""Experts asked with the robot's own heading as their heading at rest where the reference is at rest (see the module doc)."""

ACTION_HEADROOM = 1.25
"""tanh output x (headroom x limit), clipped to the limit: a saturated expert is a target of 0.8, not tanh's asymptote 1."""

NOMINAL_PORT = "nominal"
STATE_PORT = "state"

_ACTION_FROM_COMMAND: dict[str, Callable[[Any], np.ndarray]] = {
    "quadrotor": lambda cmd: np.asarray(cmd.linear, dtype=float).copy(),  # AccelCommand: world acceleration
    "diff_drive": lambda cmd: np.array([cmd.linear[0], cmd.angular[2]], dtype=float),  # TwistCommand: v, omega
}


class TrainingConfigError(ConfigError):
    """A config cannot be trained from (no expert node, an unknown robot kind); the message names the file."""


@dataclass(frozen=True)
class ExpertSetup:
    """What training needs to know about a config's expert.

    ``node``: its name in the config; ``type_name``: quadrotor_mpc or diff_drive_mpc; ``policy_type``:
    the node type that replaces it; ``rate_hz``: its control rate; ``observation``: (field, size)
    pairs (the kind's default layout unless chosen); ``action``: the kind's action layout, with
    per-element ``action_limit`` (physical units): the box the expert plans within, from the safety limits.
    """

    config_path: Path
    overrides: tuple[str, ...]
    config: HwConfig
    node: str
    type_name: str
    policy_type: str
    robot_kind: str
    rate_hz: float
    observation: tuple[tuple[str, int], ...]
    action: tuple[ActionSpec, ...]
    action_limit: np.ndarray
    privileged: bool = False
    """The expert is told each episode's true plant (aegis.runs.privileged)."""

    @property
    def action_scale(self) -> np.ndarray:
        """The physical value of a full (+-1) tanh output: ACTION_HEADROOM x the limit, so the limit itself is reachable."""
        return ACTION_HEADROOM * self.action_limit

    @property
    def frame_size(self) -> int:
        return sum(size for _, size in self.observation)

    @property
    def action_size(self) -> int:
        return sum(spec.size for spec in self.action)


def expert_setup(
    config_path: str | Path, overrides: tuple[str, ...] = (), observation: tuple[str, ...] | None = None, privileged: bool = False
) -> ExpertSetup:
    """Read a training config: find its one expert node and derive the policy's layout and scales.

    ``observation``: the observation fields, in order (default: the robot kind's DEFAULT_OBSERVATIONS);
    each must be one aegis fills (aegis.inference.observations.OBSERVATION_SOURCES).
    """
    path = Path(config_path)
    config = load_config(path, list(overrides))
    experts = [(name, node) for name, node in config.nodes.items() if node.enabled and node.type in POLICY_NODE_FOR_EXPERT]
    if len(experts) != 1:
        found = ", ".join(f"{name} ({node.type})" for name, node in experts) or "none"
        raise TrainingConfigError(
            f"{path}: a training config needs exactly one expert node of type {' or '.join(POLICY_NODE_FOR_EXPERT)}; found {found}"
        )
    name, entry = experts[0]
    kind = config.robot.kind
    if kind not in DEFAULT_OBSERVATIONS or kind not in ACTION_LAYOUTS:
        raise TrainingConfigError(f"{path}: robot.kind {kind!r} has no policy layout (known: {', '.join(sorted(ACTION_LAYOUTS))})")
    fields = DEFAULT_OBSERVATIONS[kind] if observation is None else tuple(observation)
    unknown = [name for name in fields if name not in OBSERVATION_SOURCES]
    if unknown or not fields:
        known = ", ".join(sorted(OBSERVATION_SOURCES))
        raise TrainingConfigError(f"observation fields {', '.join(unknown) or '(none)'}: not ones aegis fills (known: {known})")
    if privileged and entry.type not in PRIVILEGED_EXPERTS:
        raise TrainingConfigError(
            f"{path}: --privileged-expert: {name} ({entry.type}) has no parameters for the true plant (experts that do: "
            f"{', '.join(sorted(PRIVILEGED_EXPERTS))})"
        )
    cls = node_class(entry.type)
    params = cls.Params.model_validate(entry.params)
    return ExpertSetup(
        config_path=path,
        overrides=tuple(overrides),
        config=config,
        node=name,
        type_name=entry.type,
        policy_type=POLICY_NODE_FOR_EXPERT[entry.type],
        robot_kind=kind,
        rate_hz=float(entry.rate_hz or cls.default_rate_hz),
        observation=tuple((name, OBSERVATION_SOURCES[name].size) for name in fields),
        action=ACTION_LAYOUTS[kind],
        action_limit=_action_limit(kind, config, params),
        privileged=privileged,
    )


def _action_limit(kind: str, config: HwConfig, params: Any) -> np.ndarray:
    """The box each action element stays in (the limits the expert itself plans within), physical units."""
    if kind == "quadrotor":
        return np.full(3, config.safety.max_accel_mps2)  # translational_mpc's per-axis acceleration box
    return np.array([config.safety.max_speed_mps, params.max_turn_rate_radps])  # diff_drive_mpc's (v, omega) box


class Labeler:
    """The expert node of an episode's config, asked what it would propose in a state: ``label(t, state)``.

    ``reference(t)`` is the expert's own reference (position, velocity, acceleration at time t),
    which the observation's reference fields are built from.
    """

    def __init__(self, node: Node, robot_kind: str) -> None:
        self.node = node
        self.reference: Callable[[float], tuple[np.ndarray, np.ndarray, np.ndarray]] = node.reference  # type: ignore[attr-defined]
        self._action = _ACTION_FROM_COMMAND[robot_kind]
        self._needs_motion = node.type_name in EXPERTS_ILL_POSED_AT_REST
        node.reset(0)

    def label(self, t: float, state: RobotState) -> np.ndarray | None:
        """The expert's proposed action (physical units) at time ``t`` in ``state``; None when it proposes nothing."""
        at_rest = self._needs_motion and float(np.linalg.norm(self.reference(t)[1][:2])) <= REST_SPEED_MPS
        held = getattr(self.node, "heading_at_rest", None) if at_rest else None
        if at_rest:
            if held is None:
                raise AttributeError(f"{self.node.type_name} has no heading_at_rest: the at-rest labels need its heading at rest")
            self.node.heading_at_rest = _yaw(state.orientation)  # type: ignore[attr-defined]
        try:
            outputs = self.node.step(t, {STATE_PORT: Received(state, 0.0, False)})
        finally:
            if at_rest:
                self.node.heading_at_rest = held  # type: ignore[attr-defined]
        command = outputs.get(NOMINAL_PORT)
        return None if command is None else self.action_of(command)

    def action_of(self, command: Any) -> np.ndarray | None:
        """The action (physical units) a nominal command of this expert carries; None when it is not finite."""
        action = self._action(command)
        return action if np.all(np.isfinite(action)) else None


def _yaw(q: np.ndarray) -> float:
    """Heading about +z of a quaternion (x, y, z, w)."""
    x, y, z, w = q
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))
