"""One training episode in lockstep: the states the controller in the loop saw, as observation frames, labelled by the expert.

The controller in the loop is the expert itself (demonstrations) or the policy node in its place
(DAgger: the states the learner visits). Either way the whole chain runs as `aegis sim` runs it
(simulator, controller, safety filter, inner loops; PyBullet DIRECT, randomisation on, fixed
seed), and a listener keeps, at every tick the controller proposes a command, the odometry it
read. Afterwards each such state is turned into an observation frame through the one table of
observation fields (:class:`aegis.inference.observations.ObservationBuilder`, as the policy node
does) and labelled by the expert. When the expert itself was in the loop, its label is the command it
proposed then (it saw that very state at that very time: asking a second copy would solve the same
MPC again), except for an expert the labeler asks differently (aegis.training.expert:
EXPERTS_ILL_POSED_AT_REST); otherwise a fresh expert node is asked (:class:`aegis.training.expert.Labeler`).
A privileged expert (``ExpertSetup.privileged``) is told the episode's true plant, in the loop and as labeler
(aegis.runs.privileged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aegis.config import load_config
from aegis.runs.episode import TRUTH_PORT
from aegis.inference.observations import ObservationBuilder, PolicyInput
from aegis.launch_plan import LaunchPlan, make_plan
from aegis.msgs import RobotState
from aegis.runs.plan_run import run_plan
from aegis.runs.privileged import privileged_overrides
from aegis.training.expert import EXPERTS_ILL_POSED_AT_REST, NOMINAL_PORT, STATE_PORT, ExpertSetup, Labeler
from aegis.training.scenarios import Episode

MAX_POSITION_ERROR_M = 3.0
"""States farther than this from the reference are left out: outside any envelope a policy is flown in."""


@dataclass(frozen=True)
class EpisodeData:
    """Observation frames (n, frame_size) and expert actions (n, action_size), physical units, and the run's numbers."""

    observations: np.ndarray
    actions: np.ndarray
    name: str
    collisions: int
    tracking_rmse_m: float
    """Measured from the simulator's ground truth at each labelled tick (the observations are what the controller read)."""
    crashes: int = 0
    """1 when the bridge ended the episode as a crash (aegis.sim.crash)."""


def episode_overrides(setup: ExpertSetup, episode: Episode) -> list[str]:
    """The config overrides of an episode: its scenario, the plant's randomisation on."""
    plant = next(iter(setup.config.nodes))  # the simulator is listed first
    return [*setup.overrides, f"scenario={episode.scenario.resolve()}", f"nodes.{plant}.params.randomize=true"]


def run_episode(setup: ExpertSetup, episode: Episode, controller_overrides: tuple[str, ...] = ()) -> EpisodeData:
    """Run ``episode`` with the expert in the loop, or with what ``controller_overrides`` put in its place; label every state."""
    overrides = episode_overrides(setup, episode)
    expert_plan = make_plan(load_config(setup.config_path, overrides))
    plan = make_plan(load_config(setup.config_path, [*overrides, *controller_overrides])) if controller_overrides else expert_plan
    if setup.privileged:  # the expert (in the loop, or labelling) is told this episode's true plant; the plant is the same
        told = make_plan(load_config(setup.config_path, [*overrides, *privileged_overrides(setup.node, expert_plan, episode.seed)]))
        plan = plan if controller_overrides else told
        expert_plan = told
    seen, truths, proposed, plant_metrics = _visited_states(plan, setup.node, episode)
    labeler = Labeler(_node_named(expert_plan, setup.node).instantiate(), setup.robot_kind)
    own_labels = not controller_overrides and setup.type_name not in EXPERTS_ILL_POSED_AT_REST
    builder = ObservationBuilder(setup.observation)
    frames, actions, errors = [], [], []
    for (t, state), truth, command in zip(seen, truths, proposed):
        position, velocity, acceleration = (np.asarray(v, dtype=float) for v in labeler.reference(t))
        error = float(np.linalg.norm(position - state.position))
        if error > MAX_POSITION_ERROR_M or not state.is_usable():
            continue
        error = float(np.linalg.norm(position - truth.position))  # the RMSE is the truth's; the label is for what was read
        action = labeler.action_of(command) if own_labels else labeler.label(t, state)
        if action is None:
            continue
        frames.append(builder.build(PolicyInput(state, position, velocity, acceleration)).copy())
        actions.append(action)
        errors.append(error)
    return EpisodeData(
        observations=np.asarray(frames, dtype=float).reshape(-1, setup.frame_size),
        actions=np.asarray(actions, dtype=float).reshape(-1, setup.action_size),
        name=episode.name,
        collisions=int(plant_metrics.get("collisions", 0)),
        crashes=int(plant_metrics.get("crashes", 0)),
        tracking_rmse_m=float(np.sqrt(np.mean(np.square(errors)))) if errors else float("nan"),
    )


def _node_named(plan: LaunchPlan, name: str) -> Any:
    for node in plan.nodes:
        if node.name == name:
            return node
    raise KeyError(f"the plan has no node {name!r}")


def _visited_states(
    plan: LaunchPlan, controller: str, episode: Episode
) -> tuple[list[tuple[float, RobotState]], list[RobotState], list[Any], dict[str, Any]]:
    """(time, odometry the controller read) at each tick it proposed a command, the true state at each of those
    ticks (the plant's ``truth`` port; its odometry when it has none), the command it proposed, and the plant's counters."""
    outputs = plan.nodes[0].outputs
    state_topic = outputs[STATE_PORT]
    truth_topic = outputs.get(TRUTH_PORT, state_topic)
    nominal_topic = _node_named(plan, controller).outputs[NOMINAL_PORT]
    latest: dict[str, RobotState] = {}
    seen: list[tuple[float, RobotState]] = []
    truths: list[RobotState] = []
    proposed: list[Any] = []

    def listen(topic: str, msg: Any, t_ns: int) -> None:
        if topic == truth_topic:
            latest["truth"] = msg
        if topic == state_topic:
            latest["state"] = msg
        elif topic == nominal_topic and "state" in latest:
            seen.append((t_ns / 1e9, latest["state"]))  # the plant published first this instant: what the controller read
            truths.append(latest.get("truth", latest["state"]))
            proposed.append(msg)

    run = run_plan(plan, episode.duration_s, episode.seed, [listen])
    return seen, truths, proposed, run.node_metrics[0]
