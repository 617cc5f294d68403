"""`aegis sim --policy` and `aegis eval --policy`: the policy takes the nominal source's place under the filter, the expert runs
the same scenario and seed, and a model that does not fit is refused in one line per problem with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("pybullet")

from aegis.cli import main  # noqa: E402
from aegis.config import load_config
from aegis.config_files import ConfigError
from aegis.inference.handset import pd_tracking_policy, unicycle_tracking_policy  # noqa: E402
from aegis.launch_plan import make_plan  # noqa: E402
from aegis.runs.policy_swap import expert_overrides, nominal_source, policy_overrides  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
QUADROTOR = REPO / "hw_configs" / "quadrotor_oracle_sim.yaml"


@pytest.fixture()
def pd_model(tmp_path: Path) -> Path:
    path = tmp_path / "pd.onnx"
    onnx.save(pd_tracking_policy(expert="quadrotor_mpc"), path)
    return path


def test_sim_policy_runs_policy_and_expert_and_writes_both(tmp_path, pd_model, capsys):
    out = tmp_path / "run"
    assert main(["sim", "quadrotor_oracle_sim", "--policy", str(pd_model), "--duration", "4", "--out", str(out)]) == 0
    result = json.loads((out / "summary.json").read_text())
    assert result["expert_type"] == "quadrotor_mpc"  # the model's producer.expert
    policy, expert = result["policy"], result["expert"]
    assert policy["policy_ticks"] == 192 and policy["policy_no_nominal_ticks"] == 0
    assert "policy_ticks" not in expert and expert["mpc_failures"] == 0
    assert policy["collisions"] == expert["collisions"] == 0
    assert policy["scenario"] == expert["scenario"] == "quadrotor_figure8" and policy["seed"] == expert["seed"] == 0
    assert (out / "policy" / "bag" / "metadata.yaml").is_file() and (out / "expert" / "bag" / "metadata.yaml").is_file()
    printed = capsys.readouterr().out
    assert "policy (pd.onnx)" in printed and "expert (quadrotor_mpc)" in printed


def test_expert_option_overrides_the_contract(tmp_path, pd_model):
    out = tmp_path / "run"
    assert main(["sim", "quadrotor_oracle_sim", "--policy", str(pd_model), "--expert", "quadrotor_position_controller", "--duration", "1", "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["expert_type"] == "quadrotor_position_controller"


def test_a_model_of_another_robot_kind_is_refused_naming_both_sides(tmp_path, capsys):
    onnx.save(unicycle_tracking_policy(), tmp_path / "dd.onnx")
    assert main(["sim", "--policy", str(tmp_path / "dd.onnx"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "robot kind 'quadrotor', the contract (dd.onnx metadata) has robot_kind 'diff_drive'" in err
    assert "a quadrotor policy node reads acceleration[3] m/s^2" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--policy", "missing.onnx"], "--policy missing.onnx: no such file"),
        (["--policy", "garbage.onnx"], "onnxruntime cannot load it"),
        (["--mapping", "pd.onnx"], "--mapping is the contract of a --policy model"),
        (["--policy", "pd.onnx", "--expert", "nope"], "--expert: unknown node type 'nope'"),
    ],
)
def test_bad_policy_options_exit_2_in_one_line(tmp_path, pd_model, capsys, monkeypatch, args, expected):
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    monkeypatch.chdir(tmp_path)
    assert main(["sim", *args, "--duration", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


def test_eval_policy_runs_the_campaign_with_the_policy(tmp_path, pd_model):
    out = tmp_path / "eval.json"
    args = ["eval", "--policy", str(pd_model), "--episodes", "2", "--workers", "1", "--duration", "3", "--json", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["aggregate"]["collisions"] == 0
    for row in result["episodes"]:
        assert row["policy_ticks"] == 144 and row["policy_nonfinite_ticks"] == 0
        # the randomized sensor latency delays the first odometry past the first tick: that tick proposes nothing
        assert row["policy_lost_state_ticks"] == 1
    assert result["aggregate"]["policy_no_nominal_ticks"] == 2


def test_the_nominal_source_is_found_by_wiring_not_by_name(tmp_path, pd_model):
    raw = yaml.safe_load(QUADROTOR.read_text())
    raw.pop("inference", None)
    controller = {"type": "quadrotor_position_controller", "rate_hz": 48, "params": {"reference": "scenario"}}
    raw["nodes"] = {("planner" if name == "controller" else name): (controller if name == "controller" else node) for name, node in raw["nodes"].items()}
    path = tmp_path / "renamed.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    config = load_config(path)
    assert nominal_source(config) == "planner"
    plan = make_plan(load_config(path, policy_overrides(config, pd_model)))
    planner = next(n for n in plan.nodes if n.name == "planner")
    assert planner.type_name == "quadrotor_policy" and planner.params["reference"] == "scenario"
    assert planner.rate_hz == 48
    expert = make_plan(load_config(path, expert_overrides(config, "quadrotor_mpc")))
    assert next(n for n in expert.nodes if n.name == "planner").type_name == "quadrotor_mpc"


def test_a_config_without_a_filter_has_no_place_for_a_policy(pd_model):
    config = load_config(QUADROTOR, ["nodes.filter.enabled=false", "nodes.attitude.topics.acceleration=/cmd_accel_nominal"])
    with pytest.raises(ConfigError, match="no safety filter"):
        policy_overrides(config, pd_model)


def test_check_refuses_a_policy_that_does_not_fit_the_config(tmp_path, pd_model, capsys):
    onnx.save(unicycle_tracking_policy(), tmp_path / "dd.onnx")
    policy = ["--set", "nodes.controller.type=quadrotor_policy"]
    assert main(["check", "quadrotor_oracle_sim", *policy, "--set", f"nodes.controller.params.model={tmp_path / 'dd.onnx'}"]) == 2
    assert "has robot_kind 'diff_drive'" in capsys.readouterr().err
    assert main(["check", "quadrotor_oracle_sim", *policy, "--set", f"nodes.controller.params.model={pd_model}"]) == 0


def test_inspect_names_the_expert(pd_model, capsys):
    assert main(["model", "inspect", str(pd_model)]) == 0
    assert "expert quadrotor_mpc" in capsys.readouterr().out


def test_plain_sim_of_a_policy_config_reports_the_policy(tmp_path, pd_model, capsys):
    policy = ["--set", "nodes.controller.type=quadrotor_policy", "--set", f"nodes.controller.params.model={pd_model}"]
    assert main(["sim", "quadrotor_oracle_sim", *policy, "--duration", "1", "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    assert "policy: ticks without a nominal" in printed and "0 of 48" in printed
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["policy_ticks"] == 48 and summary["policy_latency_us"]["p50_us"] > 0
