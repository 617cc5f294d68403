"""hw_config loading: shipped configs pass; bad keys, types, ranges, files and wiring are refused by name."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from aegis.config import load_config

from aegis.config_files import ConfigError, apply_override
from aegis.launch_plan import make_plan

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted((REPO / "hw_configs").glob("*.yaml"))
BASE = REPO / "hw_configs" / "point_mass_sim.yaml"


def write_config(tmp_path: Path, mutate=None, name: str = "robot.yaml") -> Path:
    """A copy of the point-mass config, changed by ``mutate(raw_dict)``."""
    raw = yaml.safe_load(BASE.read_text())
    if mutate is not None:
        mutate(raw)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_plans(path: Path) -> None:
    plan = make_plan(load_config(path))
    assert plan.nodes, f"{path.name} plans no node"
    assert plan.warnings == (), f"{path.name}: {plan.warnings}"


def test_misspelled_top_level_key_is_named(tmp_path: Path) -> None:
    path = write_config(tmp_path, lambda raw: raw.update(safty={"max_speed_mps": 1.0}))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "safty: unknown key" in str(err.value)


def test_misspelled_nested_key_is_named_with_its_path(tmp_path: Path) -> None:
    path = write_config(tmp_path, lambda raw: raw["robot"].update(mass_kgs=1.0))
    with pytest.raises(ConfigError, match=r"robot\.mass_kgs: unknown key"):
        load_config(path)


def test_misspelled_node_parameter_is_named_with_its_node(tmp_path: Path) -> None:
    path = write_config(tmp_path, lambda raw: raw["nodes"]["controller"]["params"].update(kpp=1.0))
    with pytest.raises(ConfigError, match=r"nodes\.controller\.params\.kpp: unknown key"):
        load_config(path)


def test_wrong_type_and_out_of_range_values_are_refused(tmp_path: Path) -> None:
    def mutate(raw):
        raw["nodes"]["plant"]["rate_hz"] = -5
        raw["nodes"]["controller"]["params"]["kp"] = "fast"

    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, mutate))
    message = str(err.value)
    assert "nodes.plant.rate_hz" in message and "greater than 0" in message
    assert "nodes.controller.params.kp" in message and "'fast'" in message


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    path = write_config(tmp_path, lambda raw: raw["robot"].pop("mass_kg"))
    with pytest.raises(ConfigError, match=r"robot\.mass_kg: missing required key"):
        load_config(path)


def test_unknown_node_type_lists_known_ones(tmp_path: Path) -> None:
    path = write_config(tmp_path, lambda raw: raw["nodes"]["controller"].update(type="pdi"))
    with pytest.raises(ConfigError, match=r"nodes\.controller\.type: unknown node type 'pdi'; did you mean pid\? \(known: .*pid"):
        load_config(path)


def test_remap_of_a_port_the_node_lacks_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, lambda raw: raw["nodes"]["controller"].update(topics={"cmd": "/cmd"}))
    with pytest.raises(ConfigError, match=r"nodes\.controller\.topics\.cmd: pid has no port 'cmd'"):
        load_config(path)


def test_missing_urdf_and_model_files_are_named(tmp_path: Path) -> None:
    def mutate(raw):
        raw["robot"]["urdf"] = "robots/missing.urdf"
        raw["inference"] = {"model": "../models/missing.onnx"}

    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, mutate))
    message = str(err.value)
    assert "robot.urdf: file not found" in message and "missing.urdf" in message
    assert "inference.model: file not found" in message and "missing.onnx" in message


def test_model_sha256_is_checked(tmp_path: Path) -> None:
    model = tmp_path / "policy.onnx"
    model.write_bytes(b"not really a model, but bytes to hash")
    good = hashlib.sha256(model.read_bytes()).hexdigest()
    ok = write_config(tmp_path, lambda raw: raw.update(inference={"model": "policy.onnx", "sha256": good}), "ok.yaml")
    assert load_config(ok).resolve(Path("policy.onnx")) == model.resolve()
    bad = write_config(tmp_path, lambda raw: raw.update(inference={"model": "policy.onnx", "sha256": "0" * 64}), "bad.yaml")
    with pytest.raises(ConfigError, match=rf"inference\.sha256: .*policy\.onnx has sha256 {good}"):
        load_config(bad)


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(BASE.read_text() + "\ntarget: cpu\n")
    with pytest.raises(ConfigError, match="duplicate key 'target'"):
        load_config(path)


def test_missing_file_and_non_mapping_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(tmp_path / "list.yaml")


def test_overrides_are_layered_and_validated_like_the_file() -> None:
    config = load_config(BASE, ["nodes.controller.params.kp=2.5", "nodes.controller.params.setpoint_m=[0, 1, 2]"])
    params = config.nodes["controller"].params
    assert params["kp"] == 2.5 and params["setpoint_m"] == [0, 1, 2]
    with pytest.raises(ConfigError, match=r"nodes\.controller\.params\.kq: unknown key"):
        load_config(BASE, ["nodes.controller.params.kq=1"])
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        load_config(BASE, ["nodes.controller.params.kp"])


def test_override_through_a_scalar_is_refused() -> None:
    raw = {"target": "sim"}
    with pytest.raises(ConfigError, match="target is a str, not a mapping"):
        apply_override(raw, "target.x=1")


def test_two_publishers_on_one_topic_are_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, lambda raw: raw["nodes"]["controller"].update(topics={"command": "/odom"}))
    with pytest.raises(ConfigError, match=r"topic /odom: published by both plant\.state and controller"):
        make_plan(load_config(path))


def test_an_input_nobody_publishes_is_a_warning(tmp_path: Path) -> None:
    path = write_config(tmp_path, lambda raw: raw["nodes"]["controller"].update(topics={"state": "/other_odom"}))
    plan = make_plan(load_config(path))
    assert any("controller.state subscribes to /other_odom" in w for w in plan.warnings)


def test_plan_resolves_rates_topics_processes_and_parameters() -> None:
    plan = make_plan(load_config(REPO / "hw_configs" / "point_mass_ros.yaml"))
    by_name = {n.name: n for n in plan.nodes}
    assert by_name["plant"].rate_hz == 200 and by_name["controller"].rate_hz == 50
    assert by_name["controller"].inputs == {"state": "/odom"}
    assert by_name["controller"].outputs == {"command": "/cmd_accel"}
    assert by_name["controller"].params["setpoint_m"] == [1.0, 0.5, 0.0]
    assert by_name["controller"].params["kd"] == 4.0  # a default the file leaves out
    assert set(plan.processes) == {"plant", "control"}
    assert plan.namespace == "/point_mass"
