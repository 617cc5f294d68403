"""hw_config: the typed, validated description of one deployment (robot x target), loaded from YAML.

One schema for everything that starts: robot and its physical parameters, the nodes with their
rates, parameters and topic remaps, inference target, safety limits, real-time and ROS settings.
Everything is checked before anything runs; every error names the file and the key path.
Layered overrides (``--set nodes.pid.params.kp=2.0``) apply to the raw YAML before validation,
so an override is validated exactly like the file.

The file is long (a little over 400 lines) because it holds every section's schema, each field
described for the generated config reference, together with the checks across sections (node
parameters against their types, shared sections, referenced files) that need them all.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aegis.config_files import ConfigError, Finite, PositiveFinite, RateHz, apply_override, file_problem, format_errors
from aegis.config_files import pydantic_errors, read_yaml_mapping, safe_resolve, sha256_of, urdf_problem
from aegis.node import NodeParams, topic_count_problem, topic_problem
from aegis.registry import UnknownNodeType, node_class

PositiveFloat = PositiveFinite
Vector3 = tuple[Finite, Finite, Finite]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # every number finite: inf, NaN refused


PositiveVector3 = tuple[PositiveFloat, PositiveFloat, PositiveFloat]

# Crazyflie 2.x (cf2x) values as gym-pybullet-drones' cf2x.urdf gives them (after Förster, "System
# Identification of the Crazyflie 2.0 Nano Quadrocopter", ETH 2015), which states kf = 3.16e-10 N/rpm^2
# and km = 7.94e-12 N m/rpm^2. In rad/s units (1 rpm = 2π/60 rad/s): kf = 3.16e-10 (60/2π)^2
# = 2.8816e-8 N/(rad/s)^2 and km = 7.94e-12 (60/2π)^2 = 7.2404e-10 N m/(rad/s)^2.
_RPM2_PER_RADPS2 = (60.0 / (2.0 * 3.141592653589793)) ** 2


class QuadrotorConfig(_Strict):
    """An X-configuration quadrotor's physical parameters (FLU body), shared by the simulator and the controllers.

    Defaults: a Crazyflie 2.x. The mass is the robot's ``mass_kg``.
    """

    arm_length_m: PositiveFloat = Field(0.0397, description="centre to rotor axis (m)")
    kf: PositiveFloat = Field(3.16e-10 * _RPM2_PER_RADPS2, description="rotor thrust = kf w^2 (N/(rad/s)^2)")
    km: PositiveFloat = Field(7.94e-12 * _RPM2_PER_RADPS2, description="rotor drag torque = km w^2 (N m/(rad/s)^2)")
    inertia_kg_m2: PositiveVector3 = Field((1.4e-5, 1.4e-5, 2.17e-5), description="principal inertia about body x, y, z")
    # First-order motor lag: 40 rad/s motor bandwidth, as arlk/cf-model's Crazyflie 2 model (tf(40, [1 40])).
    motor_time_constant_s: PositiveFloat = Field(0.025, description="first-order rotor speed lag")
    # 21,714 rpm: thrust-to-weight 2.25 at 27 g, as gym-pybullet-drones' cf2x.
    max_motor_speed_radps: PositiveFloat = Field(2274.0, description="rotor speed limit (rad/s)")
    # Rotor (induced) drag F = -c * sum(w) * v_body per axis, gym-pybullet-drones' drag_coeff_xy/z.
    rotor_drag_coeff: PositiveVector3 = Field((9.1785e-7, 9.1785e-7, 10.311e-7), description="body x, y, z (kg/rad)")
    ground_effect: bool = Field(False, description="extra thrust near the ground (gym-pybullet-drones' model)")
    ground_effect_coeff: PositiveFloat = Field(11.36859, description="ground-effect coefficient (dimensionless)")
    prop_radius_m: PositiveFloat = Field(0.0231348, description="propeller radius (m), for the ground effect")


# Clearpath Husky A200 as pybullet_data's husky/husky.urdf gives it: wheel collision cylinders of radius
# 0.17775 m; wheel joints at y = +-0.2854 m from base_link (front_left_wheel origin 0.256 0.2854 0.03282),
# so the track is 2 x 0.2854 = 0.5708 m; chassis 33.455 kg + 4 wheels x 2.637 kg = 44.0 kg.
# Top speed 1.0 m/s (Clearpath's husky_control limit) is 1.0 / 0.17775 = 5.63 rad/s at the wheel.
class DiffDriveConfig(_Strict):
    """A differential-drive (or four-wheel skid-steer) ground robot's parameters (FLU body), shared by simulator and controllers.

    Defaults: a Clearpath Husky A200 as pybullet_data's husky/husky.urdf describes it. The mass is
    the robot's ``mass_kg``. Each side's wheels turn at the same commanded speed (left, right).
    """

    urdf: str = Field("husky/husky.urdf", description="URDF in pybullet_data, used when the robot section has no urdf")
    left_wheel_joints: tuple[str, ...] = Field(("front_left_wheel", "rear_left_wheel"), min_length=1, description="URDF joint names")
    right_wheel_joints: tuple[str, ...] = Field(("front_right_wheel", "rear_right_wheel"), min_length=1, description="URDF joint names")
    wheel_radius_m: PositiveFloat = Field(0.17775, description="wheel radius (m)")
    track_width_m: PositiveFloat = Field(0.5708, description="distance between the left and right wheel centres (m)")
    # A skid-steer robot turns slower than the two-wheel model says (its wheels scrub sideways): the kinematics
    # use track_width_m x this, ros2_controllers' diff_drive_controller wheel_separation_multiplier. Measured for
    # this Husky in aegis' PyBullet world (mean turn rate over 4 s, 13 twists from turning in place to gentle
    # arcs): 1.37-1.57, median 1.51 (tests/sim/test_husky.py). Clearpath calibrates the real Husky to 1.875.
    wheel_separation_multiplier: Annotated[float, Field(ge=1.0)] = Field(1.5, description="effective track / track_width_m")
    max_wheel_speed_radps: PositiveFloat = Field(5.63, description="wheel speed limit (rad/s)")
    # Assumed (Clearpath publishes no figure): 50 ms, shorter than the 20-50 Hz control periods that command it.
    motor_time_constant_s: PositiveFloat = Field(0.05, description="first-order wheel speed lag (s)")
    # Twice the traction limit mu m g r / 4 = 1.0 x 44 kg x 9.81 / 4 x 0.17775 m = 19 N m: on flat ground the
    # tyres slip before the motors stall, as on the real robot, but a blocked wheel is not pushed without bound.
    max_wheel_torque_nm: PositiveFloat = Field(40.0, description="torque limit of each wheel's speed controller (N m)")

    @model_validator(mode="after")
    def _sides_distinct(self) -> DiffDriveConfig:
        shared = sorted(set(self.left_wheel_joints) & set(self.right_wheel_joints))
        if shared:
            raise ValueError(f"wheel joints {shared} are on both sides (left_wheel_joints and right_wheel_joints)")
        return self

    @property
    def effective_track_m(self) -> float:
        """The track the kinematics use: track_width_m x wheel_separation_multiplier."""
        return self.track_width_m * self.wheel_separation_multiplier


class RobotConfig(_Strict):
    name: str = Field(description="robot name, used in topics' frame ids and reports")
    kind: Literal["point_mass", "quadrotor", "diff_drive"] = Field(description="what the robot is; picks its physical section")
    mass_kg: PositiveFloat = Field(description="total mass (kg)")
    urdf: Path | None = Field(None, description="URDF file, relative to the config file")
    quadrotor: QuadrotorConfig | None = Field(None, description="required when kind is quadrotor ({} for a Crazyflie 2.x)")
    diff_drive: DiffDriveConfig | None = Field(None, description="required when kind is diff_drive ({} for a Husky)")

    @model_validator(mode="after")
    def _kind_has_its_section(self) -> RobotConfig:
        if self.kind == "quadrotor" and self.quadrotor is None:
            raise ValueError("kind quadrotor needs a quadrotor: section (quadrotor: {} gives a Crazyflie 2.x)")
        if self.kind == "diff_drive" and self.diff_drive is None:
            raise ValueError("kind diff_drive needs a diff_drive: section (diff_drive: {} gives a Husky)")
        if self.diff_drive is not None and self.kind != "diff_drive":
            raise ValueError(f"a diff_drive: section is only for kind diff_drive, not {self.kind!r}")
        if self.quadrotor is not None:
            if self.kind != "quadrotor":
                raise ValueError(f"a quadrotor: section is only for kind quadrotor, not {self.kind!r}")
            q = self.quadrotor
            hover = (self.mass_kg * 9.81 / (4 * q.kf)) ** 0.5
            if hover >= q.max_motor_speed_radps:
                raise ValueError(
                    f"quadrotor cannot hover: mass_kg {self.mass_kg} needs {hover:.3g} rad/s per rotor with kf {q.kf:g}, "
                    f"above max_motor_speed_radps {q.max_motor_speed_radps:g} (is kf in N/(rad/s)^2?)"
                )
        return self


CRAZYFLIE_2X = RobotConfig(name="crazyflie", kind="quadrotor", mass_kg=0.027, quadrotor=QuadrotorConfig())
"""A Crazyflie 2.x: the default ``robot`` parameter of quadrotor nodes used outside a hw_config."""

HUSKY = RobotConfig(name="husky", kind="diff_drive", mass_kg=44.0, diff_drive=DiffDriveConfig())
"""A Clearpath Husky A200 (pybullet_data's URDF): the default ``robot`` parameter of diff-drive nodes used outside a hw_config."""


class NodeConfig(_Strict):
    type: str = Field(description="registered node type (aegis.registry.NODE_TYPES)")
    rate_hz: RateHz | None = Field(None, description="run rate (Hz, at most 10000); default: the node type's own")
    params: dict[str, Any] = Field(default_factory=dict, description="the node type's parameters")
    topics: dict[str, str | list[str]] = Field(
        default_factory=dict, description="port name -> topic remap (a list of topics for a many port)"
    )
    process: str | None = Field(None, description="process group; nodes sharing one are composed")
    enabled: bool = Field(True, description="false leaves the node out of the plan (see aegis.launch_plan.bypass_overrides)")


class InferenceConfig(_Strict):
    model: Path | None = Field(None, description="ONNX file, relative to the config file")
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        None, description="the model file's sha256 (hex): a different file is refused before anything starts"
    )
    providers: list[Literal["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]] = Field(
        ["CPUExecutionProvider"], description="onnxruntime execution providers in order of preference; CPU is the loud fallback"
    )
    threads: Annotated[int, Field(ge=1, le=64)] = Field(1, description="onnxruntime intra-op threads")
    precision: Literal["fp32", "fp16", "int8"] = Field(
        "fp32", description="fp16 and int8 become TensorRT options when TensorRT runs the model (aegis doctor says what runs where)"
    )


class GeofenceConfig(_Strict):
    """An axis-aligned box (world frame) the robot must stay in; the safety filter keeps its faces as walls."""

    min_m: Vector3 = Field(description="lowest corner [x, y, z] (m)")
    max_m: Vector3 = Field(description="highest corner [x, y, z] (m)")

    @model_validator(mode="after")
    def _ordered(self) -> GeofenceConfig:
        if any(lo >= hi for lo, hi in zip(self.min_m, self.max_m)):
            raise ValueError(f"min_m {self.min_m} must be below max_m {self.max_m} on every axis")
        return self


class SafetyConfig(_Strict):
    max_speed_mps: PositiveFloat = Field(2.0, description="speed limit the safety filter enforces (m/s)")
    max_accel_mps2: PositiveFloat = Field(10.0, description="the quadrotor filter's bound on each axis of its acceleration command (m/s^2)")
    geofence: GeofenceConfig | None = Field(None, description="the flying or driving area; none: no walls")
    # 0.25 s: obstacles come at 10 Hz (the simulator's, typical perception), so this survives one lost message and
    # jitter; the filters' odometry (0.05 / 0.1 s) and nominal (0.1 / 0.25 s) ports declare tighter bounds of their own.
    stale_input_timeout_s: PositiveFloat = Field(
        0.25,
        description="staleness bound (s) of every safety filter input (odometry, nominal, obstacles, neighbours, IMU), unless "
        "its port declares a tighter one; an older input is unusable: odometry -> no command (estop), nominal -> zero, "
        "obstacles -> the backup layer",
    )


class RealtimeConfig(_Strict):
    """How the plan runs. The other keys are the realtime executor's (aegis.executors.realtime), refused with another executor
    rather than accepted and ignored; the OS settings apply when permitted, and a refusal is a warning and a field of the stats."""

    executor: Literal["lockstep", "realtime", "ros2"] = Field("lockstep", description="lockstep: aegis sim, eval; ros2: ros2 launch; realtime: the wall clock")
    priority: Annotated[int, Field(ge=1, le=99, strict=True)] | None = Field(None, description="SCHED_FIFO priority of the loop thread; null: the default scheduler")
    cpu_affinity: Annotated[list[Annotated[int, Field(ge=0, strict=True)]], Field(min_length=1)] | None = Field(None, description="CPU ids the loop may use; null: any")
    lock_memory: bool = Field(False, description="mlockall(MCL_CURRENT | MCL_FUTURE) for the run: no page faults in the loop")
    deadline_miss_limit: Annotated[int, Field(ge=0, strict=True)] | None = Field(None, description="misses per node per ~1 s window above which its LoopDiagnostics is ERROR")

    @model_validator(mode="after")
    def _settings_need_the_realtime_executor(self) -> RealtimeConfig:
        given = [k for k in ("priority", "cpu_affinity", "deadline_miss_limit") if getattr(self, k) is not None] + ["lock_memory"] * self.lock_memory
        if given and self.executor != "realtime":
            raise ValueError(f"{', '.join(given)}: read by the realtime executor only, and executor is {self.executor!r}: set executor: realtime")
        return self


class RosConfig(_Strict):
    distro: Literal["humble", "jazzy"] = Field("jazzy", description="ROS 2 distribution; also picks the message definitions written to bags")
    namespace: Annotated[str, Field(pattern=r"^(/[A-Za-z][A-Za-z0-9_]*)*$")] = Field(
        "", description="ROS 2 namespace of every node (empty: none)"
    )
    use_sim_time: bool = Field(False, description="nodes follow /clock (the simulator publishes it)")
    external_topics: list[Annotated[str, Field(pattern=r"^(/[A-Za-z][A-Za-z0-9_]*)+$")]] = Field(
        default_factory=list,
        description="topics something outside the plan publishes (a robot's driver): the plan does not warn that no node "
        "publishes them, refuses a node that does, and refuses one that no node reads",
    )

    @field_validator("external_topics")
    @classmethod
    def _unique(cls, topics: list[str]) -> list[str]:
        repeated = sorted({t for t in topics if topics.count(t) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {', '.join(repeated)}")
        return topics


class HwConfig(_Strict):
    """One deployment. ``source`` is the file it came from (set by the loader, not by YAML)."""

    robot: RobotConfig = Field(description="the robot and its physical parameters, shared by the simulator and the controllers")
    target: Literal["sim", "cpu", "jetson", "mcu"] = Field(description="where the plan runs")
    nodes: dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")], NodeConfig] = Field(
        description="the nodes by name, in run order (at each instant of a lockstep run, earlier nodes publish first)"
    )
    inference: InferenceConfig = Field(InferenceConfig(), description="the ONNX policy and where it runs")
    safety: SafetyConfig = Field(SafetyConfig(), description="safety limits; every node with a safety parameter gets this section")
    realtime: RealtimeConfig = Field(RealtimeConfig(), description="how the plan runs")
    ros: RosConfig = Field(RosConfig(), description="ROS 2 settings")
    scenario: Path | None = Field(
        None, description="scenario for simulation: a file relative to this config, or a shipped scenario's name"
    )
    source: Path | None = Field(None, exclude=True)

    def resolve(self, path: Path) -> Path:
        """A path from the config, made absolute relative to the config file's folder."""
        if path.is_absolute() or self.source is None:
            return path
        return safe_resolve(self.source.parent / path)


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> HwConfig:
    """Load, override and validate a hw_config; raises ConfigError listing every problem found."""
    path = Path(path)
    raw = read_yaml_mapping(path)
    for override in overrides:
        apply_override(raw, override, path, named={"nodes": "node"})  # --set reaches into a node, never makes one up
    return validate_config(raw, path)


def validate_config(raw: dict[str, Any], path: Path) -> HwConfig:
    """Validate a raw mapping as a HwConfig, its node parameters and its referenced files; report all problems at once."""
    raw = _with_shared_params(raw, path)
    scenario = _scenario_errors(raw.get("scenario"))  # a bad scenario is reported here once, not by every node handed it
    errors = _node_errors(raw.get("nodes"), raw.get("scenario") if scenario else None)
    try:
        config = HwConfig.model_validate({**raw, "source": safe_resolve(path)})
    except ValidationError as exc:
        top = pydantic_errors(exc, HwConfig)  # a problem in a section handed to nodes is reported once, in the section
        errors = [(key, msg) for key, msg in errors if (key.split(".params.", 1)[-1], msg) not in top]
        raise ConfigError(format_errors(path, top + errors + scenario)) from None
    errors += _file_errors(config)
    if errors:
        raise ConfigError(format_errors(path, errors))
    return config


def validated_node_params(node: NodeConfig) -> NodeParams:
    """The node type's typed Params built from a node entry (assumes validate_config passed)."""
    return node_class(node.type).Params.model_validate(node.params)


def _with_shared_params(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """Fill the ``robot``, ``scenario``, ``safety`` and ``inference`` parameters of every node type that has them from the config's sections.

    This is how the simulator and the controllers share one set of physical parameters and one
    scenario. A node's own ``params.robot`` entries are laid over the section (for model-mismatch
    studies), and so are its own ``params.inference`` entries; a node's own ``params.scenario`` wins over the top-level one. File paths are made
    absolute here, relative to the config file, so nodes never depend on the working directory.
    """
    nodes = raw.get("nodes")
    if not isinstance(nodes, dict):
        return raw
    shared: dict[str, Any] = {}
    robot = raw.get("robot")
    if isinstance(robot, dict):
        robot = copy.deepcopy(robot)
        if isinstance(robot.get("urdf"), str) and not Path(robot["urdf"]).is_absolute():
            robot["urdf"] = str(safe_resolve(safe_resolve(path).parent / robot["urdf"]))
        shared["robot"] = robot
    if isinstance(raw.get("safety"), dict):
        shared["safety"] = copy.deepcopy(raw["safety"])
    if isinstance(raw.get("inference"), dict):
        inference = shared["inference"] = copy.deepcopy(raw["inference"])
        if isinstance(inference.get("model"), str) and not Path(inference["model"]).is_absolute():
            inference["model"] = str(safe_resolve(safe_resolve(path).parent / inference["model"]))
    raw = dict(raw)
    if isinstance(raw.get("scenario"), str):
        try:
            raw["scenario"] = shared["scenario"] = str(_scenario_path(raw["scenario"], path))
        except ConfigError as exc:
            raise ConfigError(f"{path}: scenario: {exc}") from None
    nodes = copy.deepcopy(nodes)
    for node in nodes.values():
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            continue
        try:
            fields = node_class(node["type"]).Params.model_fields
        except UnknownNodeType:
            continue
        params = node.get("params") or {}
        if not isinstance(params, dict):
            continue
        if "robot" in fields and "robot" in shared:
            params = {**params, "robot": _merged(shared["robot"], params.get("robot"))}
        if "scenario" in fields and "scenario" in shared and params.get("scenario") is None:
            params = {**params, "scenario": shared["scenario"]}
        if "safety" in fields and "safety" in shared and params.get("safety") is None:
            params = {**params, "safety": shared["safety"]}
        if "inference" in fields and "inference" in shared:
            params = {**params, "inference": _merged(shared["inference"], params.get("inference"))}
        node["params"] = params
    return {**raw, "nodes": nodes}


def _scenario_path(name: str, config_path: Path) -> Path:
    """A scenario given in a config: a file relative to the config, else a shipped scenario's name."""
    from aegis.scenario import resolve_scenario_path  # aegis.scenario imports this module

    beside = safe_resolve(config_path).parent / name
    return safe_resolve(beside) if beside.is_file() else safe_resolve(resolve_scenario_path(name))


def _scenario_errors(scenario: Any) -> list[tuple[str, str]]:
    """[("scenario", problem)] when the config's scenario file itself is invalid, else []."""
    from aegis.scenario import load_scenario  # aegis.scenario imports this module
    try:
        load_scenario(scenario) if isinstance(scenario, str) else None
    except ConfigError as exc:
        return [("scenario", str(exc))]
    return []


def _merged(base: dict[str, Any], over: Any) -> Any:
    if not isinstance(over, dict):
        return base if over is None else over
    return {**base, **{k: _merged(base[k], v) if isinstance(base.get(k), dict) else v for k, v in over.items()}}


def _node_errors(raw_nodes: Any, shared_scenario: Any = None) -> list[tuple[str, str]]:
    """Check each node entry against its type: parameters, topic remaps, rate; not a bad ``shared_scenario`` again."""
    if not isinstance(raw_nodes, dict):
        return []
    errors: list[tuple[str, str]] = []
    for name, node in raw_nodes.items():
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            continue
        where = f"nodes.{name}"
        try:
            cls = node_class(node["type"])
        except UnknownNodeType as exc:
            errors.append((f"{where}.type", str(exc)))
            continue
        params = None
        try:
            params = cls.Params.model_validate(node.get("params") or {})
        except ValidationError as exc:
            shared = shared_scenario is not None and isinstance(node.get("params"), dict) and node["params"].get("scenario") == shared_scenario
            errors += [(f"{where}.params.{loc}" if loc else f"{where}.params", msg) for loc, msg in pydantic_errors(exc, cls.Params)
                       if not (shared and loc.split(".")[0] == "scenario")]
        ports = {p.name: p for p in (*cls.inputs, *cls.outputs)}
        topics = node.get("topics") or {}
        topics = topics if isinstance(topics, dict) else {}
        for port, topic in topics.items():
            if port not in ports:
                errors.append((f"{where}.topics.{port}", f"{cls.type_name} has no port {port!r} (ports: {', '.join(sorted(ports))})"))
                continue
            problem = topic_problem(ports[port], topic)
            if problem:
                errors.append((f"{where}.topics.{port}", problem))
            elif params is not None:
                problem = topic_count_problem(ports[port], topic, params)
                if problem:
                    errors.append((f"{where}.topics.{port}", problem))
        for name, port in ports.items():
            if name not in topics and params is not None:
                problem = topic_count_problem(port, port.topic, params)
                if problem:
                    errors.append((f"{where}.topics.{name}", problem))
        if node.get("rate_hz") is None and cls.default_rate_hz is None and cls.trigger is None:
            errors.append((f"{where}.rate_hz", f"{cls.type_name} has no default rate: give rate_hz"))
    return errors


def _file_errors(config: HwConfig) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    if config.scenario is not None:
        from aegis.scenario import check_robot_kind, load_scenario  # aegis.scenario imports this module

        try:
            check_robot_kind(load_scenario(config.scenario), config.robot.kind)
        except ConfigError as exc:
            errors.append(("scenario", str(exc)))
    urdfs = [("robot.urdf", config.resolve(config.robot.urdf))] if config.robot.urdf is not None else []
    if not urdfs and config.robot.diff_drive is not None:  # a URDF in pybullet_data (a data package, no aegis layer)
        import pybullet_data

        urdfs = [("robot.diff_drive.urdf", Path(pybullet_data.getDataPath()) / config.robot.diff_drive.urdf)]
    errors += [(key, problem) for key, urdf in urdfs if (problem := urdf_problem(urdf))]  # before PyBullet sees it
    model = config.inference.model
    if model is not None:
        model_path = config.resolve(model)
        problem = file_problem(model_path)
        if problem:
            errors.append(("inference.model", problem))
        elif config.inference.sha256 is not None:
            actual = sha256_of(model_path)
            if actual != config.inference.sha256:
                errors.append(("inference.sha256", f"{model_path} has sha256 {actual}, config expects {config.inference.sha256}"))
    elif config.inference.sha256 is not None:
        errors.append(("inference.sha256", "given without inference.model"))
    return errors

