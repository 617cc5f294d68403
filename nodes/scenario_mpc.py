"""The quadrotor_scenario_mpc node: the scenario MPC planning around perceived obstacles, one plan per hypothesis of where they are.

It takes the place of the policy / quadrotor_mpc in the filtered chain (same outputs: /cmd_accel_nominal
and /reference), and reads /obstacles too, so the safety filter still corrects whatever it proposes.
Each tick it builds ``hypotheses`` obstacle hypotheses from the latest /obstacles message
(:func:`obstacle_hypotheses`) and solves aegis.controllers.mpc.scenario.ScenarioMpc on the
quadrotor's translation (the double integrator in 3-D, 48 Hz, the hw_config's acceleration and
speed limits) with the obstacles as circles in the horizontal plane (a level lidar's obstacles are
upright cylinders and walls as tall as the flight: the drone goes around, never over). The plans
share their first ``shared_steps`` inputs; the first is the nominal acceleration.

The hypotheses use the spread perception reports (Obstacle.uncertainty_m, 1 sigma, any direction):
hypothesis 0 is every obstacle where perception says it is; hypothesis i >= 1 moves each obstacle
by ``hypothesis_sigmas`` sigma, the i-th of K - 1 directions evenly around the circle starting
with the direction toward the robot (K = 2: toward the robot, where the obstacle would cut the
clearance most; K = 3: toward and away; K = 5: toward, left, away, right). Because the shared
segment must clear every hypothesis' obstacles, the input sent now is safe for all of them; the
plans beyond it may differ. A sphere or cylinder is its circle (centre, radius); a box (a wall) is
the point of its footprint nearest the robot, radius 0, re-taken each tick (the MPC re-linearises
about it; the filter behind it keeps the exact box). The ``max_obstacles`` obstacles nearest the
robot are planned around; fewer fill their slots with an obstacle out of reach.

What it cannot use it says by not publishing, counted in ``metrics()`` as the other nodes do: no
nominal when odometry is missing, stale or not finite (``lost_state_ticks``), when /obstacles is
missing, stale (past ``safety.stale_input_timeout_s``) or unusable (``stale_obstacle_ticks``:
unknown space is not free), or when the MPC holds no plan within its iteration budget
(``mpc_backup_ticks``, the scenario MPC's ``backup`` answer). The filter then filters zero (hover)
and says so in its report (stale nominal); the supervisor sees it. Which plan answered each tick
(solver, capped, shifted) is counted too. The node never raises in step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from aegis.config import SafetyConfig
from aegis.controllers.quadrotor_model import quaternion_to_matrix
from aegis.msgs import AccelCommand, Obstacles, RobotState
from aegis.node import Node, Port, Received
from aegis.nodes.mpc import PLANNING_OUTPUTS, TranslationalPlanning
from aegis.nodes.quadrotor_controller import QuadrotorControllerParams

Positive = Annotated[float, Field(gt=0)]
OUT_OF_REACH_M = 1.0e3
"""How far from the robot an empty obstacle slot is put (m): its half-space never binds."""


class QuadrotorScenarioMpcParams(QuadrotorControllerParams):
    safety: SafetyConfig = Field(SafetyConfig(), description="acceleration and speed limits, obstacles' staleness bound (filled from the hw_config)")
    horizon: Annotated[int, Field(ge=2, le=200)] = Field(20, description="prediction steps, one per control period")
    shared_steps: Annotated[int, Field(ge=1)] = Field(3, description="first inputs common to every hypothesis' plan (the consensus segment)")
    hypotheses: Annotated[int, Field(ge=1, le=8)] = Field(2, description="obstacle hypotheses K: the estimates, then K-1 moved by hypothesis_sigmas")
    hypothesis_sigmas: Annotated[float, Field(ge=0)] = Field(
        2.0, description="how far hypotheses 1..K-1 move each obstacle, in sigmas of its uncertainty_m (the first toward the robot)"
    )
    max_obstacles: Annotated[int, Field(ge=1, le=32)] = Field(4, description="the nearest obstacles planned around (the QP's size is fixed)")
    robot_radius_m: Annotated[float, Field(ge=0)] = Field(0.07, description="the robot's radius, added to every obstacle's (m)")
    margin_m: Annotated[float, Field(ge=0)] = Field(0.1, description="clearance the plans keep beyond the robot's radius (m)")
    solver: Literal["osqp", "clarabel"] = Field("osqp", description="the scenario MPC's QP solver (aegis.controllers.mpc.scenario)")
    max_iterations: Annotated[int, Field(ge=1)] = Field(50, description="solver iterations per tick, all its solves together")
    position_weight: Positive = Field(100.0, description="state weight on position error")
    velocity_weight: Positive = Field(4.0, description="state weight on velocity error")
    accel_weight: Positive = Field(0.25, description="input weight on acceleration")

    @model_validator(mode="after")
    def _shared_within_horizon(self) -> QuadrotorScenarioMpcParams:
        if self.shared_steps > self.horizon:
            raise ValueError(f"shared_steps ({self.shared_steps}) must be <= horizon ({self.horizon})")
        return self


def hypothesis_directions(hypotheses: int) -> np.ndarray:
    """(K, 2) unit directions in the frame (toward the robot, its left): row 0 zero (the estimate), rows 1.. evenly around the circle."""
    directions = np.zeros((hypotheses, 2))
    for i in range(1, hypotheses):
        angle = 2.0 * math.pi * (i - 1) / (hypotheses - 1)
        directions[i] = (math.cos(angle), math.sin(angle))
    return directions


def obstacle_circle(obstacle: Any, robot_xy: np.ndarray) -> tuple[np.ndarray, float]:
    """The planar circle (centre (2,), radius) the MPC avoids for one Obstacle: a sphere's or cylinder's own; a box's nearest footprint point, radius 0."""
    centre = np.asarray(obstacle.position[:2], dtype=float)
    if obstacle.shape != "box":
        return centre, 0.5 * float(obstacle.size[0])
    qx, qy, qz, qw = obstacle.orientation
    yaw = math.atan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))
    c, s = math.cos(yaw), math.sin(yaw)
    rotation = np.array([[c, -s], [s, c]])
    local = rotation.T @ (robot_xy - centre)
    half = 0.5 * np.asarray(obstacle.size[:2], dtype=float)
    return centre + rotation @ np.clip(local, -half, half), 0.0


def obstacle_hypotheses(
    obstacles: Obstacles, robot_xy: np.ndarray, hypotheses: int, slots: int, sigmas: float, inflation_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """(centres (K, J, 2), radii (K, J)) of the ``slots`` obstacles nearest ``robot_xy``, K ways (module docstring).

    Every radius is the obstacle's own plus ``inflation_m`` (the robot's radius and margin); hypothesis
    i >= 1 moves each centre by ``sigmas`` times its ``uncertainty_m`` along :func:`hypothesis_directions`
    turned into the frame pointing from the obstacle to the robot. Empty slots sit out of reach, radius 0.
    """
    robot_xy = np.asarray(robot_xy, dtype=float)
    centres = np.empty((hypotheses, slots, 2))
    centres[:] = robot_xy + np.array([OUT_OF_REACH_M, 0.0])
    radii = np.zeros((hypotheses, slots))
    circles = [(*obstacle_circle(o, robot_xy), o.uncertainty_m) for o in obstacles.obstacles]
    circles.sort(key=lambda circle: float(np.linalg.norm(circle[0] - robot_xy)) - circle[1])
    directions = hypothesis_directions(hypotheses)
    for j, (centre, radius, sigma) in enumerate(circles[:slots]):
        toward = robot_xy - centre
        distance = float(np.linalg.norm(toward))
        toward = toward / distance if distance > 1e-9 else np.array([1.0, 0.0])
        frame = np.column_stack([toward, [-toward[1], toward[0]]])  # columns: toward the robot, its left
        centres[:, j] = centre + sigmas * sigma * directions @ frame.T
        radii[:, j] = radius + inflation_m
    return centres, radii


class QuadrotorScenarioMpc(TranslationalPlanning, Node):
    """Plans ``hypotheses`` trajectories around the perceived obstacles with a shared first segment; proposes its first acceleration."""

    type_name = "quadrotor_scenario_mpc"
    inputs = (
        Port("state", RobotState, "/odom", max_age_s=0.05, description="odometry (twist in the body frame)"),
        Port("obstacles", Obstacles, "/obstacles", description="perceived obstacles with their uncertainty_m"),
    )
    outputs = PLANNING_OUTPUTS
    Params = QuadrotorScenarioMpcParams
    default_rate_hz = 48.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from aegis.controllers.mpc.scenario import ScenarioMpc

        p = self.params
        problem = self._planning_setup().problem
        self.mpc = ScenarioMpc(
            problem, p.hypotheses, p.max_obstacles, position_indices=[0, 1], shared_steps=p.shared_steps,
            solver=p.solver, max_iterations=p.max_iterations,
        )
        self._inflation = p.robot_radius_m + p.margin_m
        self.reset()

    def input_max_age(self, port: Port) -> float | None:
        """Obstacles are bounded by ``safety.stale_input_timeout_s`` (as the safety filter bounds them); odometry by its port."""
        bound = self.params.safety.stale_input_timeout_s
        return bound if port.max_age_s is None else min(port.max_age_s, bound)

    def reset(self, seed: int | None = None) -> None:
        self.mpc.reset()
        self.lost_state_ticks = self.stale_obstacle_ticks = 0
        self.answers: dict[str, int] = {"solver": 0, "capped": 0, "shifted": 0, "backup": 0}
        self.max_solve_iterations = 0

    def metrics(self) -> dict[str, Any]:
        return {
            "mpc_failures": self.answers["backup"], "mpc_backup_ticks": self.answers["backup"],
            "mpc_capped_ticks": self.answers["capped"], "mpc_shifted_ticks": self.answers["shifted"],
            "stale_obstacle_ticks": self.stale_obstacle_ticks, "lost_state_ticks": self.lost_state_ticks,
        }

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        from aegis.controllers.mpc import translational_reference

        table, outputs = self._horizon_reference(now)
        state = self._usable_state(inputs)
        if state is None:
            return outputs
        seen = inputs.get("obstacles")
        if seen is None or seen.stale or seen.msg.problems():
            self.stale_obstacle_ticks += 1  # unknown space is not free: no plan, the filter filters a hover
            return outputs
        p = self.params
        x0 = np.concatenate([state.position, quaternion_to_matrix(state.orientation) @ state.linear_velocity])
        centres, radii = obstacle_hypotheses(seen.msg, x0[:2], p.hypotheses, p.max_obstacles, p.hypothesis_sigmas, self._inflation)
        x_ref, u_ref = translational_reference(*table)
        u0, info = self.mpc.compute(x0, x_ref, centres, radii, u_ref=u_ref)
        self.answers[info.answer] += 1
        if not info.ok or not np.all(np.isfinite(u0)):
            return outputs
        outputs["nominal"] = AccelCommand(stamp=now, frame_id="odom", linear=u0)
        return outputs
