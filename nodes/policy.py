"""The policy nodes: an ONNX policy proposing the nominal command from odometry and the reference, upstream of the safety filter.

``quadrotor_policy`` publishes the action ``acceleration`` as the nominal world-frame acceleration
(/cmd_accel_nominal) and ``diff_drive_policy`` the actions ``forward_speed`` and ``turn_rate`` as
the nominal body twist (/cmd_vel_nominal); both publish the reference they track (/reference).
They have the ports of the controllers they replace (quadrotor_position_controller /
quadrotor_mpc, diff_drive_twist_controller / diff_drive_mpc), so a policy sits in the filtered
chain exactly where those sit: the safety filter always corrects what it proposes.

The model: ``model`` (default: the hw_config's ``inference.model``, with its sha256), run with the
``inference`` section's providers, threads and precision (injected from the hw_config as ``robot``,
``scenario`` and ``safety`` are). At construction the runtime loads it and its contract (ONNX
metadata, or ``mapping``) is checked against this deployment: the robot kind, the control rate (the
node's rate), observation fields aegis can fill (aegis.inference.observations, sizes and units) and
the robot kind's action layout. A mismatch is a ConfigError naming both sides, before anything runs.

Each tick: the reference at ``now``, one observation frame from odometry and the reference
(ObservationBuilder), the last ``history_length`` frames oldest first (a preallocated ring, filled
with the first frame after a reset or a gap in odometry), then the runtime. No nominal is published
(the filter then filters a stop / hover, as for a stale nominal) when odometry is missing, stale or
not finite (``lost_state_ticks``), when the observation or the action is not finite
(``nonfinite_ticks``), or when the runtime fails or has no action yet (``error_ticks``; aegis.inference.no_action).
The node never raises in step.
Every tick it publishes a PolicyReport (/policy/report, diagnostic_msgs/DiagnosticArray: WARN or
ERROR on a tick without a nominal, with the inference latency and the counts); the latency
statistics and the counts are also in ``metrics()``, which `aegis sim` and `aegis eval` report.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from aegis.config import CRAZYFLIE_2X, HUSKY, InferenceConfig, RobotConfig

from aegis.config_files import ConfigError
from aegis.inference.no_action import NoActionYet
from aegis.inference.observations import ObservationBuilder, PolicyInput, layout_problems
from aegis.msgs import AccelCommand, PolicyReport, RobotState, TwistCommand
from aegis.node import Node, NodeParams, Port, Received

logger = logging.getLogger(__name__)

POLICY_NODE_TYPES: dict[str, str] = {"quadrotor": "quadrotor_policy", "diff_drive": "diff_drive_policy"}
"""Robot kind -> the policy node type that drives it (what `aegis sim --policy` puts in the nominal's place)."""


class PolicyParams(NodeParams):
    """What every policy node takes: the model, its contract, the inference target, the robot and the reference."""

    model: Path | None = Field(None, description="ONNX policy file; default: the hw_config's inference.model")
    mapping: Path | None = Field(
        None, description="contract mapping YAML for a model without aegis metadata (default: <model>.aegis.yaml beside it)"
    )
    inference: InferenceConfig = Field(
        InferenceConfig(), description="providers, threads, precision, model and sha256 (filled from the hw_config's inference section)"
    )
    robot: RobotConfig = Field(CRAZYFLIE_2X, description="the controlled robot (filled from the hw_config's robot section)")
    scenario: Path | None = Field(None, description="scenario whose reference is tracked (filled from the hw_config)")
    reference: Literal["scenario", "goal"] = Field(
        "scenario", description="track the scenario's reference trajectory, or its goal (at rest)"
    )

    @model_validator(mode="after")
    def _has_a_model_and_a_scenario(self) -> PolicyParams:
        if self.model is None and self.inference.model is None:
            raise ValueError("no policy model: set the hw_config's inference.model or this node's params.model")
        if self.model is not None and not self.model.is_file():
            raise ValueError(f"model {self.model}: no such file")
        if self.mapping is not None and not self.mapping.is_file():
            raise ValueError(f"mapping {self.mapping}: no such file")
        if self.scenario is None:
            raise ValueError("a policy node needs a scenario for its reference (the hw_config's scenario key)")
        if self.reference == "goal":
            from aegis.scenario import load_scenario

            if load_scenario(self.scenario).goal is None:
                raise ValueError(f"reference 'goal' needs a scenario with a goal: {self.scenario} has none")
        return self

    @property
    def model_path(self) -> Path:
        """The model file this node runs: ``model``, else ``inference.model``."""
        path = self.model if self.model is not None else self.inference.model
        assert path is not None  # the validator refuses neither
        return path


class QuadrotorPolicyParams(PolicyParams):
    @model_validator(mode="after")
    def _quadrotor_only(self) -> QuadrotorPolicyParams:
        if self.robot.kind != "quadrotor":
            raise ValueError(f"quadrotor_policy needs robot kind quadrotor, not {self.robot.kind!r}")
        return self


class DiffDrivePolicyParams(PolicyParams):
    robot: RobotConfig = Field(HUSKY, description="the controlled robot (filled from the hw_config's robot section)")

    @model_validator(mode="after")
    def _diff_drive_only(self) -> DiffDrivePolicyParams:
        if self.robot.kind != "diff_drive":
            raise ValueError(f"diff_drive_policy needs robot kind diff_drive, not {self.robot.kind!r}")
        return self


class _PolicyNode(Node):
    """Shared: load and check the model, build frames into a history ring, act, count what was not published."""

    robot_kind: ClassVar[str]
    Params: ClassVar[type[PolicyParams]] = PolicyParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from aegis.nodes.diff_drive_controller import scenario_reference
        from aegis.scenario import load_scenario

        p = self.params
        self.runtime = self._load_runtime()
        contract = self.runtime.contract
        self.contract = contract
        self.builder = ObservationBuilder([(f.name, f.size) for f in contract.observation])
        frame, history = contract.frame_size, contract.history_length
        # Each frame is written twice, at k and k + H: the H slots after the newest are the history, oldest first.
        self._ring = np.zeros((2 * history, frame))
        self._flat_ring = self._ring.reshape(-1)
        self._history = history
        self._frame_size = frame
        self._slot = 0
        self._fresh = True
        self._action = np.zeros(contract.action_size)
        scenario = load_scenario(p.scenario)
        self.reference = scenario_reference(scenario, p.reference)
        self._start_heading = scenario.start.yaw_rad
        self._providers = ",".join(self.runtime.providers)
        self.input_log: list[np.ndarray] | None = None
        """Set to a list to keep a copy of every model input fed (physical units, history stacked): calibration, DAgger."""
        self.ticks = self.lost_state_ticks = self.nonfinite_ticks = self.error_ticks = 0

    def _load_runtime(self) -> Any:
        """The PolicyRuntime, its contract checked against this node; ConfigError naming both sides otherwise."""
        from aegis.inference.checks import ContractMismatch, DeploymentExpectation, check_deployment
        from aegis.inference.contract import ContractError
        from aegis.inference.runtime import PolicyRuntime

        p = self.params
        path = p.model_path
        inference = p.inference
        where = f"node {self.name!r} ({self.type_name}): policy {path}"
        try:
            runtime = PolicyRuntime(
                path,
                providers=list(inference.providers),
                threads=inference.threads,
                contract=p.mapping,
                precision=inference.precision,
                sha256=inference.sha256 if p.model is None else None,
            )
        except (ContractError, OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
        except Exception as exc:  # onnxruntime's own load errors (InvalidProtobuf, Fail, ...) derive from Exception only
            if not type(exc).__module__.startswith("onnxruntime"):
                raise
            raise ConfigError(f"{where}: onnxruntime cannot load it: {exc}") from None
        contract = runtime.contract
        deployment = DeploymentExpectation(
            source=f"the deployment (robot {p.robot.name!r} of kind {p.robot.kind!r}, node {self.name!r} at {self.rate_hz:g} Hz)",
            robot_kind=p.robot.kind,
            control_rate_hz=self.rate_hz,
        )
        source = f"the contract ({runtime.loaded.source})"
        problems = check_deployment(contract, deployment, source)
        problems += layout_problems(
            self.robot_kind,
            [(f.name, f.size, f.unit) for f in contract.observation],
            [(f.name, f.size, f.unit) for f in contract.action],
        )
        if problems:
            raise ConfigError(str(ContractMismatch(where, problems)))
        return runtime

    def reset(self, seed: int | None = None) -> None:
        self.runtime.reset_stats()
        self._fresh = True
        self._slot = 0
        self.ticks = self.lost_state_ticks = self.nonfinite_ticks = self.error_ticks = 0

    def metrics(self) -> dict[str, Any]:
        """Inference latency and the ticks without a nominal, for run summaries (keys prefixed ``policy_``)."""
        stats = self.runtime.latency.summary()
        return {
            "policy_model": str(self.runtime.model_path),
            "policy_providers": list(self.runtime.providers),
            "policy_ticks": self.ticks,
            "policy_no_nominal_ticks": self.lost_state_ticks + self.nonfinite_ticks + self.error_ticks,
            "policy_lost_state_ticks": self.lost_state_ticks,
            "policy_nonfinite_ticks": self.nonfinite_ticks,
            "policy_error_ticks": self.error_ticks,
            "policy_latency_us": {k: stats[k] for k in ("p50_us", "p99_us", "max_us", "mean_us")},
        }

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        self.ticks += 1
        position, velocity, acceleration = self.reference(now)
        outputs: dict[str, Any] = {"reference": self._reference_message(now, position, velocity, acceleration)}
        received = inputs.get("state")
        state = received.msg if received is not None and not received.stale else None
        if state is None or not state.is_usable():
            self.lost_state_ticks += 1
            self._fresh = True  # after a gap, the history restarts from the next frame
            reason = "lost_state"
        else:
            action, reason = self._act(PolicyInput(state, position, velocity, acceleration))
            if action is not None:
                outputs["nominal"] = self._command(now, action)
        outputs["report"] = PolicyReport.of_typed(  # every field typed here: the unchecked constructor, every tick
            now, self.name, reason, self.runtime.latency.last_ns * 1e-9 if reason == "ok" else 0.0, self.ticks,
            self.lost_state_ticks + self.nonfinite_ticks + self.error_ticks, self._providers,
        )  # fmt: skip
        return outputs

    def _act(self, policy_input: PolicyInput) -> tuple[np.ndarray | None, str]:
        """The action for this frame and the history before it, and the report's reason (None and why, counted, when none)."""
        history, size = self._history, self._frame_size
        slot = self._slot
        frame = self.builder.build(policy_input, out=self._ring[slot])
        if self._fresh:
            self._ring[:] = frame
            self._fresh = False
        else:
            self._ring[slot + history] = frame
        model_input = self._flat_ring[(slot + 1) * size : (slot + 1 + history) * size]
        self._slot = (slot + 1) % history
        if self.input_log is not None:
            self.input_log.append(model_input.copy())
        try:
            action = self.runtime.act(model_input, out=self._action)
        except NoActionYet as exc:  # by design (an answer still on its way): no nominal, counted, logged once
            if self.error_ticks == 0:
                logger.warning("node %s: %s; publishing no nominal (counted as error ticks)", self.name, exc)
            self.error_ticks += 1
            return None, "error"
        except Exception:  # noqa: BLE001 - an inference failure must not stop the loop: no nominal, counted, logged once
            if self.error_ticks == 0:
                logger.exception("node %s: policy inference failed; publishing no nominal", self.name)
            self.error_ticks += 1
            return None, "error"
        if action is None:
            if self.nonfinite_ticks == 0:
                logger.warning("node %s: the policy's observation or action is not finite; publishing no nominal (counted)", self.name)
            self.nonfinite_ticks += 1
            return None, "nonfinite"
        return action, "ok"

    def _reference_message(self, now: float, position: np.ndarray, velocity: np.ndarray, acceleration: np.ndarray) -> RobotState:
        raise NotImplementedError

    def _command(self, now: float, action: np.ndarray) -> Any:
        raise NotImplementedError


class QuadrotorPolicy(_PolicyNode):
    """An ONNX policy proposing the nominal world-frame acceleration (action ``acceleration``, m/s^2)."""

    type_name = "quadrotor_policy"
    robot_kind = "quadrotor"
    inputs = (Port("state", RobotState, "/odom", max_age_s=0.05, description="odometry (twist in the body frame)"),)
    outputs = (
        Port("nominal", AccelCommand, "/cmd_accel_nominal", description="proposed world-frame acceleration (m/s^2)"),
        Port("reference", RobotState, "/reference", description="the reference being tracked"),
        Port("report", PolicyReport, "/policy/report", description="what the policy did, every tick (diagnostics)"),
    )
    Params = QuadrotorPolicyParams
    default_rate_hz = 48.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from aegis.controllers.quadrotor_model import quaternion_to_matrix, yaw_quaternion
        from aegis.nodes.quadrotor_controller import reference_message

        self._heading = yaw_quaternion(self._start_heading)
        self._heading_matrix = quaternion_to_matrix(self._heading)
        self._reference_message_of = reference_message  # bound once: an import statement in step costs ~1 us a tick

    def _reference_message(self, now: float, position: np.ndarray, velocity: np.ndarray, acceleration: np.ndarray) -> RobotState:
        return self._reference_message_of(now, position, velocity, self._heading, self._heading_matrix)

    def _command(self, now: float, action: np.ndarray) -> AccelCommand:
        return AccelCommand.of_typed(now, "odom", action[:3].copy())  # the runtime's float64 action


class DiffDrivePolicy(_PolicyNode):
    """An ONNX policy proposing the nominal body twist (actions ``forward_speed`` m/s and ``turn_rate`` rad/s)."""

    type_name = "diff_drive_policy"
    robot_kind = "diff_drive"
    inputs = (Port("state", RobotState, "/odom", max_age_s=0.1, description="odometry (twist in the body frame)"),)
    outputs = (
        Port("nominal", TwistCommand, "/cmd_vel_nominal", description="proposed body twist (linear.x m/s, angular.z rad/s)"),
        Port("reference", RobotState, "/reference", description="the reference being tracked"),
        Port("report", PolicyReport, "/policy/report", description="what the policy did, every tick (diagnostics)"),
    )
    Params = DiffDrivePolicyParams
    default_rate_hz = 50.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heading = self._start_heading

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._heading = self._start_heading

    def _reference_message(self, now: float, position: np.ndarray, velocity: np.ndarray, acceleration: np.ndarray) -> RobotState:
        """Position, heading of travel (held while at rest), forward speed and turn rate of the reference."""
        speed2 = float(velocity[0] ** 2 + velocity[1] ** 2)
        turn = 0.0
        if speed2 > 1e-8:
            self._heading = math.atan2(velocity[1], velocity[0])
            turn = float(velocity[0] * acceleration[1] - velocity[1] * acceleration[0]) / speed2
        half = 0.5 * self._heading
        return RobotState(
            stamp=now, frame_id="odom", child_frame_id="reference", position=position,
            orientation=np.array([0.0, 0.0, math.sin(half), math.cos(half)]),
            linear_velocity=np.array([math.sqrt(speed2), 0.0, 0.0]), angular_velocity=np.array([0.0, 0.0, turn]),
        )

    def _command(self, now: float, action: np.ndarray) -> TwistCommand:
        return TwistCommand(
            stamp=now, frame_id="base_link", linear=np.array([action[0], 0.0, 0.0]), angular=np.array([0.0, 0.0, action[1]])
        )

