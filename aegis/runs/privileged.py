"""The privileged expert: an episode's true plant (what its simulator draws) as the expert's model parameters.

With ``aegis train --privileged-expert`` the expert of every training episode is told what the
plant of that episode really is (``aegis eval --privileged-expert`` flies such an expert: what a
policy imitating it could at best do), the values the simulator bridge draws at ``reset(seed)`` from the
scenario's randomisation and the dynamics set (:meth:`aegis.nodes.sim_bridge.SimBridgeBase.plant_draw`,
the seed the lockstep graph gives the plant: :func:`aegis.executors.graph.node_seeds`). For the
quadrotor MPC (``quadrotor_mpc``) that is:

- ``mass_ratio``: the true mass over the config's, divided by the true thrust coefficient over the
  config's: the attitude loop converts an acceleration to thrust with the config's values, so the
  expert pre-scales its thrust vector by this ratio and the plant realises what it planned;
- ``dead_time_s``: the sensing latency (the bridge's own, the scenario's and the set's) plus the
  actuation latency in whole simulator steps, which the expert predicts the odometry over.

The policy trained on these labels still observes only its contract's fields: what it learns is
what such an expert does in the states it visits (the contract's producer records
``privileged_expert``).
"""

from __future__ import annotations

from typing import Any

from aegis.config_files import ConfigError
from aegis.executors.graph import node_seeds
from aegis.launch_plan import LaunchPlan

PRIVILEGED_EXPERTS = frozenset({"quadrotor_mpc"})
"""Experts with model parameters for the true plant (:func:`privileged_values` fills them per episode)."""


def privileged_values(plan: LaunchPlan, seed: int) -> dict[str, float]:
    """The true plant of the run of ``plan`` from ``seed``, as the quadrotor MPC's ``mass_ratio`` and ``dead_time_s``."""
    sim: Any = plan.nodes[0].instantiate()  # the simulator is listed first; no world is built before reset
    r, d = sim.plant_draw(node_seeds(seed, len(plan.nodes))[0])
    p = sim.params
    mass = r.get("mass_scale", 1.0) * d.mass_scale
    thrust = r.get("motor_constant_scale", 1.0) * d.thrust_coeff_scale
    sensing_s = p.latency_s + p.state_latency_s + r.get("latency_s", 0.0) + d.sensing_latency_s
    actuation_s = round((p.actuation_latency_s + d.actuation_latency_s) * sim.rate_hz) / sim.rate_hz
    return {"mass_ratio": mass / thrust, "dead_time_s": sensing_s + actuation_s}


def privileged_overrides(expert: str, plan: LaunchPlan, seed: int) -> list[str]:
    """The config overrides telling the expert node ``expert`` the true plant of the run of ``plan`` from ``seed``."""
    return [f"nodes.{expert}.params.{key}={value!r}" for key, value in privileged_values(plan, seed).items()]


def expert_node(plan: LaunchPlan, where: str) -> str:
    """The one node of ``plan`` that can be told the true plant; ConfigError naming ``where`` (the file) otherwise."""
    told = [node.name for node in plan.nodes if node.type_name in PRIVILEGED_EXPERTS]
    if len(told) != 1:
        raise ConfigError(
            f"{where}: --privileged-expert needs exactly one expert with parameters for the true plant "
            f"({', '.join(sorted(PRIVILEGED_EXPERTS))}); found {', '.join(told) or 'none'}"
        )
    return told[0]
