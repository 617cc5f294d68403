"""What the sim bridge nodes share: own a PyBullet world, apply commands, publish what the robot senses, count collisions.

A bridge is the plant and the clock of a lockstep run: list it first in a hw_config, at the
physics rate (its ``rate_hz``); every tick is exactly one physics step. At tick time ``now`` it
first publishes the state AT ``now`` (every ``sensor_decimation``-th step), then applies the
command it holds and advances the world to ``now + dt``. A controller running at the same
instant therefore reads the state of that instant, and its command acts from the next physics
step on (one physics step of actuation latency).

With a scenario (the hw_config's ``scenario``), the bridge starts the robot at the scenario's
start, spawns its obstacles (the shapes aegis.scenario measures clearance to; a scenario's ``layout``
is drawn anew at every ``reset(seed)``, aegis.scenario.layouts), applies its wind
and impulses every step, and, with ``randomize``, draws the scenario's randomisation at every
``reset(seed)`` (the controllers keep the nominal model: that is the mismatch). It counts
collisions: each time the robot starts touching an obstacle.

It is also the referee. Beside what the robot senses (``state`` on /odom: noisy, late) it
publishes the exact state on ``truth`` (/sim/ground_truth: no noise, no latency, at the sensor
rate, like Gazebo's ground-truth plugin), which evaluations measure from and no controller may
read. After every physics step it judges the true state (aegis.sim.crash): a flip, a hard ground
contact, a non-finite state or leaving the world is a crash, counted in ``crashes`` with its
``crash_reason``, and the run ends there (:class:`~aegis.node.EndRun`).

With ``dynamics`` (a file, aegis.sim.dynamics: ``aegis sim|eval --dynamics``), the plant's mass,
inertia, motor lag, rotor coefficients, drag, latencies and noise are perturbed from the nominal
robot, drawn at every ``reset(seed)`` and combined with the scenario's randomisation as that
module says. ``actuation_latency_s`` delays every command before it reaches the actuators, in
whole physics steps (``round(latency * rate_hz)``), on top of the one step every command waits.

Command safety is the subclass's: :class:`~aegis.nodes.quadrotor_sim_bridge.SimBridge` (quadrotor) holds a fresh rotor-speed
command up to the port's staleness bound and then hands over to its firmware's failsafe (level on the
last thrust, motors off after 2 s: aegis.sim.link_loss); :class:`~aegis.nodes.diff_drive_sim_bridge.DiffDriveSimBridge`
(ground robot) holds fresh wheel speeds as long and then brakes (see their docstrings).

PyBullet is imported when the world is built (at reset), so `aegis check` stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from aegis.config import CRAZYFLIE_2X, RobotConfig
from aegis.msgs import Image, LaserScan, Obstacles, PointCloud, RobotState
from aegis.sim.command_hold import CommandHold
from aegis.sim.command_delay import CommandDelay
from aegis.sim.crash import CrashJudge, CrashParams
from aegis.sim.dynamics import NOMINAL, DynamicsDraw
from aegis.sim.sensors import Camera, CameraParams, DelayLine, Lidar2D, LidarParams, NoiseParams, biased_imu, draw_imu_bias, noisy_imu, noisy_state
from aegis.sim.sensors import decimation as sensor_decimation
from aegis.sim.sensors.noise import NOMINAL_NOISE
from aegis.node import EndRun, Node, NodeParams, Port, Received

Vector3 = tuple[float, float, float]
COMMAND_TIMEOUT_S = 0.1


class SimBridgeParams(NodeParams):
    robot: RobotConfig = Field(CRAZYFLIE_2X, description="the simulated robot (filled from the hw_config's robot section)")
    scenario: Path | None = Field(None, description="scenario file (filled from the hw_config's scenario)")
    randomize: bool = Field(False, description="draw the scenario's randomisation at every reset(seed)")
    gravity_mps2: Annotated[float, Field(gt=0)] = Field(9.81, description="gravity (m/s^2), along world -z")
    initial_position_m: Vector3 = Field(
        (0.0, 0.0, 0.01), description="start position when there is no scenario, world frame (m)"
    )
    initial_yaw_rad: float = Field(0.0, description="start heading when there is no scenario (rad, about world z)")
    sensor_decimation: Annotated[int, Field(ge=1)] = Field(
        1, description="publish sensors every Nth physics step (sensor rate = rate_hz / N)"
    )
    ground_plane: bool = Field(True, description="a ground plane at z = 0")
    gui: bool = Field(False, description="open the PyBullet GUI instead of DIRECT (one per process)")
    obstacles_rate_hz: Annotated[float, Field(gt=0)] = Field(
        10.0,
        description="how often the scenario's obstacles are published on /obstacles (ground-truth perception; an empty "
        "list when it has none, so a safety filter knows there are none); keep the period within the filter's "
        "safety.stale_input_timeout_s",
    )
    noise: NoiseParams | Literal["nominal"] = Field(
        NoiseParams(),
        description="white noise on odometry and IMU (0: exact); nominal: the robot kind's realistic figures (aegis.sim.sensors.noise)",
    )
    latency_s: Annotated[float, Field(ge=0)] = Field(
        0.0, description="sensing latency: every sensor message is published this long after it was measured (s)"
    )
    state_latency_s: Annotated[float, Field(ge=0)] = Field(
        0.0,
        description="extra latency of the state output alone (odometry, or motion capture feeding a state_estimator), on top of latency_s (s)",
    )
    actuation_latency_s: Annotated[float, Field(ge=0)] = Field(
        0.0, description="actuation latency: every command reaches the actuators this much later (s, in whole physics steps)"
    )
    dynamics: Path | None = Field(
        None, description="dynamics perturbations file (aegis.sim.dynamics; `--dynamics NAME|FILE`), drawn at every reset(seed)"
    )
    crash: CrashParams = Field(CrashParams(), description="when the run is a crash and ends (aegis.sim.crash)")
    lidar: LidarParams | None = Field(None, description="a 2-D lidar on /scan (none by default)")
    camera: CameraParams | None = Field(None, description="an RGB-D camera on /camera/* (none by default)")

    @field_validator("scenario")
    @classmethod
    def _one_robot(cls, scenario: Path | None) -> Path | None:
        if scenario is not None:
            from aegis.scenario import load_scenario

            robots = load_scenario(scenario).robot_names
            if robots:
                raise ValueError(
                    f"{scenario} has several robots ({', '.join(robots)}): a sim bridge simulates one (swarm_sim_bridge simulates several)"
                )
        return scenario

    @field_validator("dynamics")
    @classmethod
    def _dynamics_loads(cls, dynamics: Path | None) -> Path | None:
        if dynamics is not None:
            from aegis.sim.dynamics import load_dynamics

            load_dynamics(dynamics)  # a bad file is refused here, naming the file and the key
        return dynamics

    def noise_params(self) -> NoiseParams:
        """The noise model: the configured figures, or the robot kind's nominal ones."""
        return NOMINAL_NOISE[self.robot.kind] if self.noise == "nominal" else self.noise


OBSTACLES_PORT = Port("obstacles", Obstacles, "/obstacles", description="the obstacles as they are (ground-truth perception)")
TRUTH_PORT = Port(
    "truth",
    RobotState,
    "/sim/ground_truth",
    description="the exact state (no noise, no latency) at the sensor rate: the referee's, for evaluation; no controller reads it",
)
SENSOR_PORTS = (
    Port("scan", LaserScan, "/scan", description="2-D lidar (when configured)"),
    Port("points", PointCloud, "/points", description="the lidar's planes as an organized cloud (when lidar.point_cloud)"),
    Port("rgb", Image, "/camera/image_raw", description="camera colour image, rgb8 (when configured)"),
    Port("depth", Image, "/camera/depth/image_raw", description="camera z-depth in metres, 32FC1 (when configured)"),
)


class SimBridgeBase(Node):
    """What every bridge shares: world lifecycle, scenario, disturbances, randomisation, collision counting.

    A subclass builds its world (``_build_world``), puts the robot at a pose (``_place``), turns
    inputs into the command the world steps with (``_command_for``) and says what it senses
    (``_sense``). The world offers ``client``, ``body_id``, ``reset``, ``step(command,
    wind_world, external_force_world)``, ``state()``, ``set_scales(...)``, ``body_radius_m`` and ``close()``.
    """

    referee_outputs = ("truth",)

    Params: ClassVar[type[SimBridgeParams]] = SimBridgeParams
    command_size: ClassVar[int]
    """How many actuator speeds the ``command`` input carries (4 rotors, 2 wheels)."""
    """Dynamics-file scales (aegis.sim.dynamics) beyond mass and inertia -> the world's ``set_scales`` keyword for each."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hold = CommandHold(self.command_size, COMMAND_TIMEOUT_S, self.name)
        self.world: Any = None  # built at the first reset
        self.scenario = None
        if self.params.scenario is not None:
            from aegis.scenario import load_scenario

            self.scenario = load_scenario(self.params.scenario)
        self._obstacles = None
        self.obstacles: tuple[Any, ...] = self.scenario.obstacles if self.scenario is not None else ()
        self._obstacles_every = max(1, round(self.rate_hz / self.params.obstacles_rate_hz))
        p = self.params
        self._lidar_every = sensor_decimation(p.lidar.rate_hz, self.rate_hz, "lidar") if p.lidar else 0
        self._camera_every = sensor_decimation(p.camera.rate_hz, self.rate_hz, "camera") if p.camera else 0
        self._lidar: Lidar2D | None = None
        self._camera: Camera | None = None
        self._noise = p.noise_params()
        self._noisy = False
        self._imu_bias = (np.zeros(3), np.zeros(3))
        self._imu_biased = False
        self._delay: DelayLine = DelayLine(p.latency_s)
        self._state_delay: DelayLine = DelayLine(p.state_latency_s)
        self._actuation = CommandDelay(0)
        self.dynamics = None
        if p.dynamics is not None:
            from aegis.sim.dynamics import load_dynamics

            self.dynamics = load_dynamics(p.dynamics)
        self.dynamics_drawn: dict[str, Any] = {}
        """What reset drew from the dynamics file: its name (``set``) and one value per parameter; empty without one."""
        self.crashes = 0
        self.crash_reason: str | None = None
        self.crash_time_s: float | None = None
        self._judge = CrashJudge(p.crash, self.scenario.geofence if self.scenario is not None else None)
        self._sensor_rng = np.random.default_rng()
        self._tick = 0
        self.collisions = 0
        self._touching: frozenset[int] = frozenset()
        self.randomization: dict[str, float] = {}

    # -- subclass hooks ---------------------------------------------------------------------
    def _build_world(self) -> Any:
        raise NotImplementedError

    def _place(self, position: np.ndarray, yaw: float) -> None:
        raise NotImplementedError

    def _sense(self, now: float) -> dict[str, Any]:
        raise NotImplementedError

    # -- node contract ------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """Back to the start (the world and its obstacles are built on the first call); draw randomisation from ``seed``."""
        p = self.params
        if self.world is None:
            self.world = self._build_world()
            if p.lidar is not None:
                self._lidar = Lidar2D(self.world.client, p.lidar, exclude_body=self.world.body_id)
            if p.camera is not None:
                self._camera = Camera(self.world.client, p.camera)
        if self.scenario is not None:
            start = self.scenario.task().start
            position, yaw = np.array(start.position, dtype=float), start.yaw_rad
        else:
            position, yaw = np.array(p.initial_position_m, dtype=float), p.initial_yaw_rad
        self.randomization = {}
        self.obstacles = self.scenario.obstacles if self.scenario is not None else ()
        if self.scenario is not None and self.scenario.layout is not None:
            from aegis.scenario.layouts import draw_layout

            self.obstacles = draw_layout(self.scenario, self.scenario.seed if seed is None else seed)
        rng = np.random.default_rng(seed)
        r, d = self._plant_draw(rng, seed)
        if r:
            self.randomization = r
            self.obstacles = _jittered(self.obstacles, r["obstacle_jitter_m"], rng)
        self._put_obstacles()
        self.dynamics_drawn = {"set": p.dynamics.stem, **d.as_dict()} if p.dynamics is not None else {}
        self._noise = p.noise_params().scaled(r.get("sensor_noise_scale", 1.0) * d.sensor_noise_scale)
        self._noisy = any(std > 0.0 for std in self._noise.model_dump().values())  # exact sensing draws nothing
        self._delay = DelayLine(p.latency_s + r.get("latency_s", 0.0) + d.sensing_latency_s)
        self._state_delay = DelayLine(p.state_latency_s)
        self._sensor_rng = np.random.default_rng(None if seed is None else [seed, 1])  # its own stream
        self._imu_bias = draw_imu_bias(self._noise, np.random.default_rng(None if seed is None else [seed, 2]))
        self._imu_biased = self._noise.accel_bias_std_mps2 > 0.0 or self._noise.gyro_bias_std_radps > 0.0
        self._set_scales(r, d)
        actuation_s = p.actuation_latency_s + d.actuation_latency_s
        self._actuation = CommandDelay(round(actuation_s * self.rate_hz))
        self._place(position, yaw)
        self._tick = 0
        self.collisions = 0
        self._touching = frozenset()
        self.crashes = 0
        self.crash_reason = None
        self.crash_time_s = None

    def plant_draw(self, seed: int | None) -> tuple[dict[str, float], DynamicsDraw]:
        """What ``reset(seed)`` draws for the plant: the scenario's randomisation (empty unless ``randomize``) and the dynamics draw.

        Pure (no world is built): aegis.training's privileged expert reads the episode's true plant from it.
        """
        return self._plant_draw(np.random.default_rng(seed), seed)

    def _plant_draw(self, rng: np.random.Generator, seed: int | None) -> tuple[dict[str, float], DynamicsDraw]:
        r: dict[str, float] = {}
        if self.params.randomize and self.scenario is not None:
            from aegis.scenario import sample_randomization

            r = sample_randomization(self.scenario.randomization, rng)
        return r, self.dynamics.draw(seed) if self.dynamics is not None else NOMINAL

    def _set_scales(self, r: Mapping[str, float], d: DynamicsDraw) -> None:
        """The world's physical scales: the scenario's draw ``r`` times the dynamics draw ``d`` (see aegis.sim.dynamics)."""
        self.world.set_scales(
            r.get("mass_scale", 1.0) * d.mass_scale,
            r.get("inertia_scale", 1.0) * d.inertia_scale,
            r.get("motor_constant_scale", 1.0),
            r.get("friction_scale", 1.0),
            **self._robot_scales(d),
        )

    def _robot_scales(self, d: DynamicsDraw) -> dict[str, float]:
        """The dynamics draw's scales the robot's world takes beyond mass and inertia, by its set_scales keyword."""
        return {"torque": d.torque_coeff_scale, "motor_time_constant": d.motor_time_constant_scale}

    def _put_obstacles(self) -> None:
        """This episode's obstacles into the world: the bodies moved there, or spawned anew when the shapes changed (a layout)."""
        if self._obstacles is not None and self._obstacles.fits(self.obstacles):
            self._obstacles.move(self.obstacles)
            return
        if self._obstacles is not None:
            self._obstacles.remove()
            self._obstacles = None
        if self.obstacles:
            from aegis.sim.obstacles import spawn_obstacles

            self._obstacles = spawn_obstacles(self.world.client, self.obstacles, visual=self.params.gui)

    def close(self) -> None:
        """Release the PyBullet client."""
        if self.world is not None:
            self.world.close()
            self.world = None

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        if self.world is None:
            self.reset()
        outputs = self._measure(now)
        if self._tick % self._obstacles_every == 0:  # none is news too: a filter waits for its obstacles
            from aegis.scenario import obstacles_msg

            outputs["obstacles"] = obstacles_msg(self.obstacles, stamp=now)
        reason = self._crash_check()
        if reason is not None:  # judged on the state at ``now``, which ``truth`` carries
            self.crashes, self.crash_reason, self.crash_time_s = 1, reason, now
            if "truth" not in outputs and np.all(np.isfinite(self.world.position)):
                outputs["truth"] = self._truth(now)
            raise EndRun(f"{self.name}: crash: {reason}", outputs)
        command = self._actuation.delayed(self._command_for(now, inputs))
        wind, force = self._disturbances(now)
        self.world.step(command, wind, force)
        self._tick += 1
        if self._obstacles is not None:
            self._count_collisions()
        return outputs

    def metrics(self) -> dict[str, Any]:
        """The plant-side numbers of a run, for its summary."""
        return {
            "collisions": self.collisions,
            "crashes": self.crashes,
            "crash_reason": self.crash_reason,
            "crash_time_s": self.crash_time_s,
            "command_timeouts": self.command_timeouts,
            "body_radius_m": self.world.body_radius_m if self.world else None,
        }

    @property
    def command_timeouts(self) -> int:
        """How many times the command went stale and the actuators were cut (or braked) since reset."""
        return self._hold.timeouts

    def _start_command(self, speeds: float) -> None:
        """At reset: the initial actuator speeds count as a command given at t = 0 (and fill the actuation delay)."""
        self._hold.start(speeds)
        self._actuation.fill(np.full(self.command_size, float(speeds)))

    def _truth(self, now: float) -> RobotState:
        """The exact state at ``now``, as odometry has it (twist in the body frame)."""
        return self._sense(now)["state"]

    def _touching_ground(self) -> bool:
        """Whether the robot touches the ground plane in a way that can be a crash (a flying robot's hook)."""
        return False

    def _crash_check(self) -> str | None:
        """Why the true state now is a crash, or None (aegis.sim.crash)."""
        world = self.world
        return self._judge(world.position, world.orientation, world.velocity_world, self._touching_ground())

    def _command_for(self, now: float, inputs: Mapping[str, Received | None]) -> np.ndarray:
        """Hold a fresh command (non-finite speeds count as zero); past the port's bound, cut to zero once and count it."""
        return self._hold.update(now, inputs.get("command"))

    # -- shared mechanics ---------------------------------------------------------------------
    def _measure(self, now: float) -> dict[str, Any]:
        """This tick's sensor outputs: measurements (each sensor at its own rate, with noise) that have waited out the latency."""
        tick = self._tick
        measured: dict[str, Any] = {}
        truth = None
        if tick % self.params.sensor_decimation == 0:
            measured = self._sense(now)
            truth = measured.get("state")  # exact: noise makes new messages
            if self._noisy and "state" in measured:
                measured["state"] = noisy_state(measured["state"], self._noise, self._sensor_rng)
            if self._noisy and "imu" in measured:
                measured["imu"] = noisy_imu(measured["imu"], self._noise, self._sensor_rng)
                if self._imu_biased:
                    measured["imu"] = biased_imu(measured["imu"], *self._imu_bias)
        if self._lidar is not None and tick % self._lidar_every == 0:
            pose = self.world.state()
            scan = self._lidar.scan(pose.position, pose.orientation, now, self._sensor_rng)
            if self._lidar.params.point_cloud:  # the cloud published first: lidar_obstacles runs on the scan and
                measured["points"] = self._lidar.cloud(now, self._sensor_rng)  # wants its cloud there (over DDS too)
            measured["scan"] = scan
        if self._camera is not None and tick % self._camera_every == 0:
            pose = self.world.state()
            measured.update(self._camera.capture(pose.position, pose.orientation, now, self._sensor_rng))
        if self._delay.latency_s != 0.0:
            for item in measured.items():
                self._delay.push(item, now)
            measured = dict(self._delay.pop_ready(now))
        if self._state_delay.latency_s != 0.0:
            if "state" in measured:
                self._state_delay.push(measured.pop("state"), now)
            for state in self._state_delay.pop_ready(now):
                measured["state"] = state  # the newest, if two come out at once
        if truth is not None:
            measured["truth"] = truth  # the referee's: never late
        return measured

    def _disturbances(self, now: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        return scenario_disturbances(self.scenario, now)

    def _count_collisions(self) -> None:
        touching = frozenset(self._obstacles.touching(self.world.body_id))
        self.collisions += len(touching - self._touching)
        self._touching = touching


def scenario_disturbances(scenario: Any, now: float) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The scenario's wind (m/s, world) and impulse force (N, world) at ``now``; None for each that is absent."""
    if scenario is None:
        return None, None
    from aegis.scenario import impulse_force_at, wind_at

    disturbances = scenario.disturbances
    wind = wind_at(disturbances.wind, now, scenario.seed) if _blows(disturbances.wind) else None
    force = impulse_force_at(disturbances.impulses, now) if disturbances.impulses else None
    return wind, force


def _jittered(obstacles: tuple[Any, ...], amplitude_m: float, rng: np.random.Generator) -> tuple[Any, ...]:
    """Each obstacle shifted along x and y by up to ``amplitude_m`` (uniform; one draw pair per obstacle)."""
    shifts = rng.uniform(-amplitude_m, amplitude_m, size=(len(obstacles), 2))
    return tuple(
        o.model_copy(update={"position": (o.position[0] + dx, o.position[1] + dy, o.position[2])})
        for o, (dx, dy) in zip(obstacles, shifts)
    )


def _blows(wind: Any) -> bool:
    return any(v != 0.0 for v in wind.velocity_mps) or wind.gust_std_mps > 0.0 or bool(wind.profile_mps)
