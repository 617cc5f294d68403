"""The swarm_sim_bridge node: several quadrotors in ONE PyBullet world, one odometry and one command topic per robot.

It is the plant and the clock of a multi-robot lockstep run, as ``sim_bridge`` is for one robot
(list it first, at the physics rate; one tick = one physics step; it publishes the state AT
``now`` and then applies the commands it holds and advances to ``now + dt``). Its robots are the
ones its ``robots`` parameter names, in that order, from the scenario's ``robots:`` section (each
starts at its own start); its ``command`` input and ``state`` output are many ports with one topic
per robot, in the same order::

    robots: [cf1, cf2]
    topics: {command: [/cf1/cmd_motors, /cf2/cmd_motors], state: [/cf1/odom, /cf2/odom]}

Each robot's rotor commands go through the same hold-then-cut rule as ``sim_bridge``
(aegis.sim.command_hold): a fresh command is held up to 0.1 s, then the motors are cut, counted per
robot. The scenario's obstacles are spawned and published on /obstacles; its wind and impulses act
on every robot. Odometry frames are ``odom`` -> ``<robot>/base_link`` (tf-prefix style), with the
configured noise drawn from one seeded stream.

What it counts, every physics step, per robot and in total: obstacle collisions (a robot starts
touching an obstacle), inter-robot collisions (a pair's bounding spheres, ``body_radius_m`` about
each centre of mass, start overlapping: centres closer than twice that radius; each start counts
once per pair and once for each of its two robots) and the smallest centre-to-centre distance to
any other robot. The bodies also collide physically: robots that meet bump and may fall.

As ``sim_bridge`` does for one robot, it is also the referee: with ``truth`` topics listed (one
per robot, in the same order; none listed: nothing published), each robot's exact state (no noise)
goes out on them at the odometry rate, and evaluation measures from them; no controller may read
them. After every physics step each robot's true state is judged (aegis.sim.crash: flip, hard
ground contact, non-finite state, leaving the world); the first crash ends the run
(:class:`~aegis.node.EndRun`) and is counted for its robot, with its reason.

Not here (``sim_bridge`` has them for one robot): lidar, camera, IMU output, sensing latency and
domain randomisation (``aegis eval`` needs the last, so it does not run swarm configs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from aegis.config import CRAZYFLIE_2X, RobotConfig
from aegis.msgs import ImuSample, MotorSpeeds, RobotState
from aegis.node import EndRun, Node, NodeParams, Port, Received
from aegis.nodes.sim_bridge import COMMAND_TIMEOUT_S, OBSTACLES_PORT, scenario_disturbances
from aegis.sim.command_hold import CommandHold
from aegis.sim.crash import CrashJudge, CrashParams
from aegis.sim.sensors import NoiseParams, noisy_state

RobotName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]


class SwarmSimBridgeParams(NodeParams):
    robot: RobotConfig = Field(CRAZYFLIE_2X, description="every simulated robot (filled from the hw_config's robot section)")
    scenario: Path | None = Field(None, description="scenario file with a robots: section (filled from the hw_config's scenario)")
    robots: tuple[RobotName, ...] = Field(
        min_length=1, description="the scenario's robots to simulate, in the order of the command and state topics"
    )
    gravity_mps2: Annotated[float, Field(gt=0)] = Field(9.81, description="gravity (m/s^2), along world -z")
    sensor_decimation: Annotated[int, Field(ge=1)] = Field(1, description="publish odometry every Nth physics step")
    ground_plane: bool = Field(True, description="a ground plane at z = 0")
    gui: bool = Field(False, description="open the PyBullet GUI instead of DIRECT (one per process)")
    obstacles_rate_hz: Annotated[float, Field(gt=0)] = Field(
        10.0, description="how often the obstacles are published on /obstacles (an empty list when there are none)"
    )
    noise: NoiseParams = Field(NoiseParams(), description="white noise on every robot's odometry (0: exact)")
    crash: CrashParams = Field(CrashParams(), description="when a robot has crashed and the run ends (aegis.sim.crash)")

    @field_validator("robot")
    @classmethod
    def _quadrotor_only(cls, robot: RobotConfig) -> RobotConfig:
        if robot.kind != "quadrotor":
            raise ValueError(f"swarm_sim_bridge simulates kind quadrotor, not {robot.kind!r}")
        return robot

    @model_validator(mode="after")
    def _robots_of_the_scenario(self) -> SwarmSimBridgeParams:
        if self.scenario is None:
            raise ValueError("swarm_sim_bridge needs a scenario with a robots: section (the hw_config's scenario key)")
        from aegis.scenario import load_scenario

        have = load_scenario(self.scenario).robot_names
        missing = [name for name in self.robots if name not in have]
        if missing:
            raise ValueError(f"robots {missing} are not in {self.scenario} (its robots: {', '.join(have) or 'none'})")
        repeated = sorted({name for name in self.robots if self.robots.count(name) > 1})
        if repeated:
            raise ValueError(f"robots {repeated} listed twice")
        return self


class SwarmSimBridge(Node):
    """Quadrotors sharing one PyBullet world, commanded by rotor speeds (module doc)."""

    type_name = "swarm_sim_bridge"
    referee_outputs = ("truth",)
    inputs = (
        Port(
            "command", MotorSpeeds, (), max_age_s=COMMAND_TIMEOUT_S, many=True, one_per="robots",
            description="each robot's rotor speed command (rad/s), one topic per robot",
        ),
    )
    outputs = (
        Port("state", RobotState, (), many=True, one_per="robots", description="each robot's odometry (twist in its body frame)"),
        Port("imu", ImuSample, (), many=True, description="each robot's IMU at its centre of mass, body frame (ideal): none, or one topic per robot"),
        Port(
            "truth", RobotState, (), many=True,
            description="each robot's exact state (no noise), one topic per robot or none: the referee's, no controller reads it",
        ),
        OBSTACLES_PORT,
    )
    Params = SwarmSimBridgeParams
    default_rate_hz = 240.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from aegis.scenario import load_scenario

        p = self.params
        truth = self.topics["truth"]
        if truth and len(truth) != len(p.robots):
            raise ValueError(
                f"node {self.name!r} (swarm_sim_bridge): port 'truth' needs none or {len(p.robots)} topics, one per entry of "
                f"robots ({', '.join(p.robots)}), got {len(truth)}"
            )
        self._truth = bool(truth)
        self.scenario = load_scenario(p.scenario)
        self.tasks = [self.scenario.task(name) for name in p.robots]
        self._judge_state = CrashJudge(p.crash, self.scenario.geofence)
        self.obstacles = self.scenario.obstacles
        self.world: Any = None  # built at the first reset
        self._spawned = None
        self._holds = [CommandHold(4, COMMAND_TIMEOUT_S, f"{self.name} ({name})") for name in p.robots]
        self._imu_wired = bool(self.topics["imu"])
        if self._imu_wired and len(self.topics["imu"]) != len(p.robots):
            raise ValueError(f"node {self.name!r}: port 'imu' needs no topics or one per entry of robots ({len(p.robots)}), got {len(self.topics['imu'])}")
        self._frames = [f"{name}/base_link" for name in p.robots]
        self._obstacles_every = max(1, round(self.rate_hz / p.obstacles_rate_hz))
        self._noisy = any(std > 0.0 for std in p.noise.model_dump().values())
        self._rng = np.random.default_rng()
        self._tick = 0
        count = len(p.robots)
        self._touching: list[frozenset[int]] = [frozenset()] * count
        self._overlapping: set[tuple[int, int]] = set()
        self.obstacle_collisions = [0] * count
        self.inter_robot_collisions = [0] * count
        self.pair_collisions = 0
        self.min_distance = [math.inf] * count
        self.crashes = [0] * count
        self.crash_reasons: list[str | None] = [None] * count
        self.crash_time_s: float | None = None

    def reset(self, seed: int | None = None) -> None:
        """Every robot back to its start, at rest (hovering if it starts in the air); counters to zero."""
        from aegis.sim.pybullet_world import COLLISION_HALF_HEIGHT_M

        p = self.params
        if self.world is None:
            from aegis.sim.swarm_world import SwarmWorld

            self.world = SwarmWorld(p.robot, len(p.robots), self.rate_hz, p.gravity_mps2, p.ground_plane, p.gui)
            if self.obstacles:
                from aegis.sim.obstacles import spawn_obstacles

                self._spawned = spawn_obstacles(self.world.client, self.obstacles, visual=p.gui)
        positions = [np.array(task.start.position, dtype=float) for task in self.tasks]
        hover = self.world.model.hover_motor_speed
        speeds = [hover if position[2] > COLLISION_HALF_HEIGHT_M + 1e-6 else 0.0 for position in positions]
        self.world.place(positions, [task.start.yaw_rad for task in self.tasks], speeds)
        for hold, speed in zip(self._holds, speeds):
            hold.start(speed)
        self._rng = np.random.default_rng(None if seed is None else [seed, 1])
        self._tick = 0
        count = len(self._holds)
        self._touching = [frozenset()] * count
        self._overlapping = set()
        self.obstacle_collisions = [0] * count
        self.inter_robot_collisions = [0] * count
        self.pair_collisions = 0
        self.min_distance = [math.inf] * count
        self.crashes = [0] * count
        self.crash_reasons = [None] * count
        self.crash_time_s = None
        self._count_collisions()

    def close(self) -> None:
        """Release the PyBullet client."""
        if self.world is not None:
            self.world.close()
            self.world = None

    def step(self, now: float, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.world is None:
            self.reset()
        outputs: dict[str, Any] = {}
        robots = range(len(self._holds))
        if self._tick % self.params.sensor_decimation == 0:
            exact = [self._exact(now, index) for index in robots]
            outputs["state"] = tuple(self._noisy_state(msg) for msg in exact)
            if self._truth:
                outputs["truth"] = tuple(exact)
            if self._imu_wired:
                outputs["imu"] = tuple(self._imu(now, index) for index in robots)
        if self._tick % self._obstacles_every == 0:  # none is news too: a filter waits for its obstacles
            from aegis.scenario import obstacles_msg

            outputs["obstacles"] = obstacles_msg(self.obstacles, stamp=now)
        self._judge(now, outputs)
        received: tuple[Received | None, ...] = inputs.get("command") or (None,) * len(self._holds)
        commands = [hold.update(now, one) for hold, one in zip(self._holds, received)]
        wind, force = scenario_disturbances(self.scenario, now)
        self.world.step(commands, wind, force)
        self._tick += 1
        self._count_collisions()
        return outputs

    def metrics(self) -> dict[str, Any]:
        """The plant-side numbers of a run: in total, and per robot under ``robots``."""
        robots = {
            name: {
                "collisions": self.obstacle_collisions[i] + self.inter_robot_collisions[i],
                "obstacle_collisions": self.obstacle_collisions[i],
                "inter_robot_collisions": self.inter_robot_collisions[i],
                "min_inter_robot_distance_m": _finite_or_none(self.min_distance[i]),
                "command_timeouts": self._holds[i].timeouts,
                "crashes": self.crashes[i],
                "crash_reason": self.crash_reasons[i],
            }
            for i, name in enumerate(self.params.robots)
        }
        obstacle_collisions = sum(self.obstacle_collisions)
        return {
            "collisions": obstacle_collisions + self.pair_collisions,
            "obstacle_collisions": obstacle_collisions,
            "inter_robot_collisions": self.pair_collisions,
            "min_inter_robot_distance_m": _finite_or_none(min(self.min_distance)),
            "command_timeouts": sum(hold.timeouts for hold in self._holds),
            "crashes": sum(self.crashes),
            "crash_time_s": self.crash_time_s,
            "body_radius_m": self.world.body_radius_m if self.world else None,
            "robots": robots,
        }

    def _exact(self, now: float, index: int) -> RobotState:
        """Robot ``index``'s exact state at ``now``, as odometry has it (twist in its body frame)."""
        state = self.world.bodies[index].state()
        return RobotState(
            stamp=now,
            frame_id="odom",
            child_frame_id=self._frames[index],
            position=state.position,
            orientation=state.orientation,
            linear_velocity=state.velocity_body,
            angular_velocity=state.body_rates,
        )

    def _noisy_state(self, msg: RobotState) -> RobotState:
        return noisy_state(msg, self.params.noise, self._rng) if self._noisy else msg

    def _imu(self, now: float, index: int) -> ImuSample:
        state = self.world.bodies[index].state()
        return ImuSample(
            stamp=now, frame_id=self._frames[index], orientation=state.orientation,
            angular_velocity=state.body_rates, linear_acceleration=state.specific_force_body,
        )

    def _judge(self, now: float, outputs: dict[str, Any]) -> None:
        """End the run (EndRun, with this tick's outputs and every robot's truth) at the first robot that crashed."""
        import pybullet

        world = self.world
        for index, body in enumerate(world.bodies):
            position = body.position
            low = world.plane_id is not None and position[2] <= world.body_radius_m + 0.05
            touching = low and bool(
                pybullet.getContactPoints(bodyA=body.body_id, bodyB=world.plane_id, physicsClientId=world.client)
            )
            reason = self._judge_state(position, body.orientation, body.velocity_world, touching)
            if reason is not None:
                self.crashes[index], self.crash_reasons[index], self.crash_time_s = 1, reason, now
                if self._truth and "truth" not in outputs:
                    outputs["truth"] = tuple(self._exact(now, k) for k in range(len(world.bodies)))
                raise EndRun(f"{self.name}: {self.params.robots[index]} crashed: {reason}", outputs)

    def _count_collisions(self) -> None:
        """Obstacle contacts and bounding-sphere overlaps that started this step; the closest approach so far."""
        if self._spawned is not None:
            for index, body in enumerate(self.world.bodies):
                touching = frozenset(self._spawned.touching(body.body_id))
                self.obstacle_collisions[index] += len(touching - self._touching[index])
                self._touching[index] = touching
        contact = 2.0 * self.world.body_radius_m
        for i, j, distance in self.world.pair_distances():
            self.min_distance[i] = min(self.min_distance[i], distance)
            self.min_distance[j] = min(self.min_distance[j], distance)
            if distance < contact:
                if (i, j) not in self._overlapping:
                    self._overlapping.add((i, j))
                    self.pair_collisions += 1
                    self.inter_robot_collisions[i] += 1
                    self.inter_robot_collisions[j] += 1
            else:
                self._overlapping.discard((i, j))


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
