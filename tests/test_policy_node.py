"""The policy nodes alone: the model comes from the hw_config, a contract that does not fit is refused naming both sides,
frames are stacked oldest first, and nothing is published (counted) when odometry or the action is unusable."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from aegis.config import load_config

from aegis.config_files import ConfigError, sha256_of
from aegis.inference.contract import ActionField, ObservationField, PolicyContract  # noqa: E402
from aegis.inference.stamping import write_contract
from aegis.inference.handset import pd_tracking_policy, unicycle_tracking_policy  # noqa: E402
from aegis.launch_plan import make_plan  # noqa: E402
from aegis.msgs import RobotState  # noqa: E402
from aegis.node import Received  # noqa: E402
from aegis.ros_shell import parameter_descriptors  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QUADROTOR = REPO / "hw_configs" / "quadrotor_oracle_sim.yaml"
HUSKY = REPO / "hw_configs" / "husky_oracle_sim.yaml"


def _policy_config(tmp_path: Path, base: Path, node_type: str, model_name: str, extra: dict | None = None) -> Path:
    """A copy of a shipped config whose controller is a policy node running ``model_name`` from the inference section."""
    raw = yaml.safe_load(base.read_text())
    raw["nodes"]["controller"] = {"type": node_type, "rate_hz": raw["nodes"]["controller"]["rate_hz"], "params": {"reference": "scenario"}}
    raw["inference"] = {"model": model_name, **(extra or {})}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _quadrotor_node(tmp_path: Path, model, overrides=(), extra: dict | None = None):
    onnx.save(model, tmp_path / "policy.onnx")
    config = load_config(_policy_config(tmp_path, QUADROTOR, "quadrotor_policy", "policy.onnx", extra), list(overrides))
    node = make_plan(config).instantiate()[1]
    node.reset(0)
    return node


def _state(position=(0.0, 0.0, 1.0), velocity=(0.0, 0.0, 0.0)) -> Received:
    return Received(RobotState(position=np.array(position, float), linear_velocity=np.array(velocity, float)), 0.0, False)


def test_model_comes_from_the_inference_section_relative_to_the_config(tmp_path):
    node = _quadrotor_node(tmp_path, pd_tracking_policy())
    assert node.runtime.model_path == (tmp_path / "policy.onnx").resolve()
    out = node.step(0.0, {"state": _state(position=(0.0, 0.0, 0.9))})
    position, velocity, acceleration = node.reference(0.0)  # the figure-8 starts moving at t = 0
    # the law the network computes exactly: a = kp e + kd (v_ref - v) + a_ref, kp 8, kd 4, the robot at rest 0.1 m low
    expected = 8.0 * (position - [0.0, 0.0, 0.9]) + 4.0 * velocity + acceleration
    assert expected[2] == pytest.approx(0.8)
    np.testing.assert_allclose(out["nominal"].linear, expected, atol=1e-5)
    report = out["report"]
    assert report.proposed and report.level == 0 and report.latency_s > 0 and report.providers == "CPUExecutionProvider"
    np.testing.assert_allclose(out["reference"].position, position)


def test_the_plan_declares_the_policy_parameters_for_ros(tmp_path):
    onnx.save(pd_tracking_policy(), tmp_path / "policy.onnx")
    plan = make_plan(load_config(_policy_config(tmp_path, QUADROTOR, "quadrotor_policy", "policy.onnx")))
    launch = plan.nodes[1]
    names = {d.name: d.value for d in parameter_descriptors(type(launch.instantiate()).Params, launch.params)}
    assert names["inference.model"] == str((tmp_path / "policy.onnx").resolve())
    assert names["inference.providers"] == ("CPUExecutionProvider",)


def test_wrong_sha256_in_the_inference_section_is_a_config_error(tmp_path):
    onnx.save(pd_tracking_policy(), tmp_path / "policy.onnx")
    path = _policy_config(tmp_path, QUADROTOR, "quadrotor_policy", "policy.onnx", {"sha256": "0" * 64})
    with pytest.raises(ConfigError, match=r"inference\.sha256"):
        load_config(path)
    good = _policy_config(tmp_path, QUADROTOR, "quadrotor_policy", "policy.onnx", {"sha256": sha256_of(tmp_path / "policy.onnx")})
    assert make_plan(load_config(good)).instantiate()[1].runtime is not None


def test_a_policy_node_without_a_model_is_refused_naming_the_key(tmp_path):
    raw = yaml.safe_load(QUADROTOR.read_text())
    raw.pop("inference", None)
    raw["nodes"]["controller"] = {"type": "quadrotor_policy", "params": {"reference": "scenario"}}
    (tmp_path / "no_model.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"nodes\.controller\.params.*no policy model: set the hw_config's inference\.model"):
        load_config(tmp_path / "no_model.yaml")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"robot_kind": "diff_drive"}, r"robot kind: the deployment \(robot 'crazyflie' of kind 'quadrotor'.*has robot_kind 'diff_drive'"),
        ({"control_rate_hz": 100.0}, r"control rate: the deployment .* at 48 Hz, the contract \(policy\.onnx metadata\) has control_rate_hz 100 Hz"),
    ],
)
def test_contract_that_does_not_fit_the_deployment_is_refused_naming_both_sides(tmp_path, change, expected):
    model = pd_tracking_policy()
    contract = read_contract_of(model).model_copy(update=change)
    write_contract(model, contract)
    with pytest.raises(ConfigError, match=expected) as info:
        _quadrotor_node(tmp_path, model)
    assert "node 'controller' (quadrotor_policy)" in str(info.value)


def test_unknown_observation_field_and_wrong_unit_are_refused(tmp_path):
    model = pd_tracking_policy()
    contract = read_contract_of(model)
    fields = list(contract.observation)
    fields[0] = ObservationField(name="joint_angles", size=3, unit="rad")
    fields[1] = ObservationField(name="velocity", size=3, unit="km/h")
    write_contract(model, contract.model_copy(update={"observation": tuple(fields)}))
    with pytest.raises(ConfigError) as info:
        _quadrotor_node(tmp_path, model)
    message = str(info.value)
    assert "2 mismatches" in message
    assert "observation field 'joint_angles' is not one aegis can fill" in message
    assert "observation field 'velocity': the contract says size 3 in 'km/h', aegis fills size 3 in 'm/s'" in message


def test_action_layout_of_another_kind_is_refused(tmp_path):
    model = pd_tracking_policy()
    contract = read_contract_of(model)
    action = (ActionField(name="acceleration", size=3, unit="N", low=-1.0, high=1.0),)
    write_contract(model, contract.model_copy(update={"action": action}))
    with pytest.raises(ConfigError, match=r"action layout is acceleration\[3\] N; a quadrotor policy node reads acceleration\[3\] m/s\^2"):
        _quadrotor_node(tmp_path, model)


def test_a_diff_drive_policy_on_a_quadrotor_is_refused_before_loading(tmp_path):
    onnx.save(unicycle_tracking_policy(), tmp_path / "policy.onnx")
    path = _policy_config(tmp_path, QUADROTOR, "diff_drive_policy", "policy.onnx")
    with pytest.raises(ConfigError, match="diff_drive_policy needs robot kind diff_drive, not 'quadrotor'"):
        load_config(path)


def test_history_is_stacked_oldest_first_and_filled_with_the_first_frame(tmp_path):
    node = _quadrotor_node(tmp_path, pd_tracking_policy(history_length=3))
    node.input_log = []
    heights = [0.9, 0.8, 0.7, 0.6]
    for i, z in enumerate(heights):
        out = node.step(i / 48, {"state": _state(position=(0.0, 0.0, z))})
        # the law reads the newest frame: the figure-8 stays at 1 m, so a_z = kp (1 - z)
        assert out["nominal"].linear[2] == pytest.approx(8.0 * (1.0 - z), abs=1e-5)
    errors_z = [entry.reshape(3, 12)[:, 2] for entry in node.input_log]
    np.testing.assert_allclose(errors_z[0], [0.1, 0.1, 0.1], atol=1e-12)  # the first frame, three times
    np.testing.assert_allclose(errors_z[2], [0.1, 0.2, 0.3], atol=1e-12)
    np.testing.assert_allclose(errors_z[3], [0.2, 0.3, 0.4], atol=1e-12)
    # a gap in odometry restarts the history from the next frame
    assert "nominal" not in node.step(0.1, {"state": None})
    node.step(0.2, {"state": _state(position=(0.0, 0.0, 0.5))})
    np.testing.assert_allclose(node.input_log[-1].reshape(3, 12)[:, 2], [0.5, 0.5, 0.5], atol=1e-12)


def test_unusable_odometry_publishes_no_nominal_and_is_counted(tmp_path):
    node = _quadrotor_node(tmp_path, pd_tracking_policy())
    broken = Received(RobotState(position=np.array([math.nan, 0.0, 1.0])), 0.0, False)
    stale = Received(RobotState(position=np.zeros(3)), 0.2, True)
    for received in (None, broken, stale):
        out = node.step(0.0, {"state": received})
        assert "nominal" not in out and "reference" in out
        assert out["report"].reason == "lost_state" and out["report"].level == 1  # WARN: never silent
    metrics = node.metrics()
    assert metrics["policy_lost_state_ticks"] == 3 and metrics["policy_no_nominal_ticks"] == 3


def test_non_finite_action_publishes_no_nominal_and_is_counted(tmp_path):
    model = pd_tracking_policy()
    # Weights of 1e30 in both layers on the z axis: finite at the neutral observation (the runtime's warm-up checks
    # it), an overflow to inf in float32 for any height error.
    for name, index in (("W0", (2, 2)), ("W1", (2, 2))):
        tensor = next(t for t in model.graph.initializer if t.name == name)
        weights = onnx.numpy_helper.to_array(tensor).copy()
        weights[index] = 1e30
        tensor.CopyFrom(onnx.numpy_helper.from_array(weights, name))
    node = _quadrotor_node(tmp_path, model)
    for i in range(5):
        out = node.step(i / 48, {"state": _state(position=(0.0, 0.0, 0.5))})
        assert "nominal" not in out and out["report"].reason == "nonfinite" and out["report"].no_nominal_ticks == i + 1
    metrics = node.metrics()
    assert metrics["policy_nonfinite_ticks"] == 5 and metrics["policy_ticks"] == 5
    assert node.runtime.nonfinite_actions == 5


def test_a_runtime_with_no_action_yet_publishes_no_nominal_counted_and_warned_without_a_traceback(tmp_path, caplog):
    """The pipelined MCU tick's runtime (aegis hil --mcu) has no action while its answer is on its way: an error tick, by design."""
    from aegis.inference.no_action import NoActionYet

    node = _quadrotor_node(tmp_path, pd_tracking_policy())
    real_act, calls = node.runtime.act, []

    def act(x, out=None):
        calls.append(len(calls))
        if len(calls) <= 2:
            raise NoActionYet("no answer from the MCU to take at this tick")
        return real_act(x, out=out)

    node.runtime.act = act
    with caplog.at_level("WARNING"):
        outs = [node.step(i / 48, {"state": _state(position=(0.0, 0.0, 0.5))}) for i in range(3)]
    assert ["nominal" in out for out in outs] == [False, False, True]
    assert [out["report"].reason for out in outs] == ["error", "error", "ok"]
    assert node.metrics()["policy_error_ticks"] == 2
    warned = [r for r in caplog.records if "no answer from the MCU" in r.getMessage()]
    assert len(warned) == 1 and warned[0].exc_info is None  # once, one line


def test_diff_drive_policy_publishes_a_twist_and_the_heading_of_travel(tmp_path):
    onnx.save(unicycle_tracking_policy(), tmp_path / "policy.onnx")
    node = make_plan(load_config(_policy_config(tmp_path, HUSKY, "diff_drive_policy", "policy.onnx"))).instantiate()[1]
    node.reset(0)
    out = node.step(1.0, {"state": _state(position=(0.0, 0.0, 0.0))})
    reference = out["reference"]
    heading = 2 * math.atan2(reference.orientation[2], reference.orientation[3])
    assert heading == pytest.approx(math.atan2(1.6, 2.0), abs=1e-6)  # husky_goal's first leg
    assert reference.linear_velocity[0] == pytest.approx(0.5)
    twist = out["nominal"]
    assert twist.linear[0] > 0 and twist.angular[2] > 0  # the reference is ahead and to the left


def read_contract_of(model) -> PolicyContract:
    from aegis.inference.contract import contract_from_metadata

    contract = contract_from_metadata({p.key: p.value for p in model.metadata_props}, "model")
    assert contract is not None
    return contract

