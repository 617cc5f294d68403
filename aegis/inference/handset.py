"""Hand-set policies as real ONNX models: known control laws written as ReLU MLPs with their contract, for tests and demos.

:func:`pd_tracking_policy` is the quadrotor tracking law ``a = kp e + kd (v_ref - v) + a_ref`` on the
default quadrotor observation (aegis.inference.observations.DEFAULT_OBSERVATIONS): a 12 -> 6 -> 3
ReLU network whose hidden layer holds ``[W x, -W x]`` and whose output layer computes
``relu(W x) - relu(-W x) = W x`` exactly, so its closed loop is that of the law. The contract is the
one a trained policy carries (write_contract), so the policy node cannot tell it from one.

:func:`unicycle_tracking_policy` is a linear tracking law for the ground robot on its default
observation (heading frame): ``v = v_ref,x + k_x e_x`` and ``omega = k_y e_y + k_theta v_ref,y``
(the reference's sideways velocity in the robot's frame is its speed times the sine of the heading
error), built the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from aegis.inference.contract import ActionField, ObservationField, PolicyContract, Producer
from aegis.inference.stamping import write_contract
from aegis.inference.observations import ACTION_LAYOUTS, DEFAULT_OBSERVATIONS, OBSERVATION_SOURCES

if TYPE_CHECKING:
    import onnx


def default_observation_fields(robot_kind: str) -> tuple[ObservationField, ...]:
    """The contract fields of a robot kind's default observation layout (no normalisation)."""
    return tuple(
        ObservationField(name=name, size=OBSERVATION_SOURCES[name].size, unit=OBSERVATION_SOURCES[name].unit)
        for name in DEFAULT_OBSERVATIONS[robot_kind]
    )


def pd_tracking_weights(kp: float, kd: float) -> np.ndarray:
    """The 3 x 12 matrix W of the law on [position_error, velocity, reference_velocity, reference_acceleration]."""
    eye = np.eye(3)
    return np.hstack([kp * eye, -kd * eye, kd * eye, eye])


def _identity_relu_mlp(w: np.ndarray) -> onnx.ModelProto:
    """``relu(W x) - relu(-W x) = W x``: a linear map as a one-hidden-layer ReLU MLP."""
    from aegis.inference.mlp import mlp_model

    n = w.shape[0]
    hidden = np.vstack([w, -w]).astype(np.float32)
    output = np.hstack([np.eye(n), -np.eye(n)]).astype(np.float32)
    return mlp_model(
        [(hidden, np.zeros(2 * n, np.float32)), (output, np.zeros(n, np.float32))], hidden_activation="Relu", output_activation="Identity"
    )


def pd_tracking_policy(
    kp: float = 8.0,
    kd: float = 4.0,
    control_rate_hz: float = 48.0,
    max_accel_mps2: float = 8.0,
    history_length: int = 1,
    expert: str = "quadrotor_position_controller",
) -> onnx.ModelProto:
    """A quadrotor policy computing ``clip(kp e + kd (v_ref - v) + a_ref, +-max_accel)`` per axis, contract stamped.

    With ``history_length`` > 1 the input stacks that many frames and the law reads the newest
    (the older frames get zero weights), to exercise the node's history ring.
    """
    w = pd_tracking_weights(kp, kd)
    frame = w.shape[1]
    w_input = np.zeros((3, frame * history_length))
    w_input[:, frame * (history_length - 1) :] = w  # the newest frame is last
    model = _identity_relu_mlp(w_input)
    (action,) = ACTION_LAYOUTS["quadrotor"]
    contract = PolicyContract(
        robot_kind="quadrotor",
        control_rate_hz=control_rate_hz,
        history_length=history_length,
        observation=default_observation_fields("quadrotor"),
        action=(ActionField(name=action.name, size=action.size, unit=action.unit, low=-max_accel_mps2, high=max_accel_mps2),),
        lipschitz_bound=float(np.linalg.norm(w, 2)),
        producer=Producer(
            name="aegis.inference.handset", notes=f"PD tracking law, kp {kp:g} 1/s^2, kd {kd:g} 1/s", expert=expert
        ),
        description="hand-set PD tracking law as a ReLU MLP (identity through ReLU via [x, -x])",
    )
    return write_contract(model, contract)


def unicycle_tracking_policy(
    k_x: float = 1.0,
    k_y: float = 2.0,
    k_theta: float = 4.0,
    control_rate_hz: float = 50.0,
    max_speed_mps: float = 1.0,
    max_turn_rate_radps: float = 2.0,
    expert: str = "diff_drive_twist_controller",
) -> onnx.ModelProto:
    """A diff-drive policy: ``v = v_ref,x + k_x e_x``, ``omega = k_y e_y + k_theta v_ref,y`` (heading frame), clipped; contract stamped."""
    names = DEFAULT_OBSERVATIONS["diff_drive"]
    assert names[:2] == ("position_error_body", "reference_velocity_body")  # the columns below
    w = np.zeros((2, sum(OBSERVATION_SOURCES[n].size for n in names)))
    w[0, 0], w[0, 2] = k_x, 1.0  # forward: along-track error and the reference's forward speed
    w[1, 1], w[1, 3] = k_y, k_theta  # turn: cross-track error and the reference's sideways speed
    speed, turn = ACTION_LAYOUTS["diff_drive"]
    contract = PolicyContract(
        robot_kind="diff_drive",
        control_rate_hz=control_rate_hz,
        observation=default_observation_fields("diff_drive"),
        action=(
            ActionField(name=speed.name, size=1, unit=speed.unit, low=-max_speed_mps, high=max_speed_mps),
            ActionField(name=turn.name, size=1, unit=turn.unit, low=-max_turn_rate_radps, high=max_turn_rate_radps),
        ),
        lipschitz_bound=float(np.linalg.norm(w, 2)),
        producer=Producer(
            name="aegis.inference.handset", notes=f"linear unicycle tracking, k_x {k_x:g}, k_y {k_y:g}, k_theta {k_theta:g}", expert=expert
        ),
        description="hand-set linear unicycle tracking law as a ReLU MLP (identity through ReLU via [x, -x])",
    )
    return write_contract(_identity_relu_mlp(w), contract)
