"""The `aegis` command line: check, sim and bag info; bad input is exit 2 with a one-line error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aegis.cli import main

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


@pytest.mark.parametrize("path", sorted((REPO / "hw_configs").glob("*.yaml")), ids=lambda p: p.name)
def test_check_passes_on_every_shipped_config(path: Path, capsys) -> None:
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "launch plan" in out and "ok" in out


def test_check_finds_a_shipped_config_by_name(capsys) -> None:
    assert main(["check", "point_mass_sim", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [n["name"] for n in plan["nodes"]] == ["plant", "controller"]


def test_misspelled_key_exits_2_with_one_line_naming_it(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "hw_configs" / "point_mass_sim.yaml").read_text())
    raw["nodes"]["controller"]["params"]["setpoint"] = [1, 2, 3]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    result = subprocess.run(
        [sys.executable, "-m", "aegis.cli", "check", str(bad)], capture_output=True, text=True, cwd=tmp_path, env=ENV
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"aegis: error: {bad}: nodes.controller.params.setpoint: unknown key; did you mean setpoint_m?"
    assert "Traceback" not in result.stderr


def test_missing_config_and_bad_values_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["check", str(tmp_path / "none.yaml")]) == 2
    assert "no such hw_config file" in capsys.readouterr().err
    assert main(["check", "point_mass_sim", "--set", "nodes.controller.rate_hz=0"]) == 2
    assert "nodes.controller.rate_hz" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["sim", "--duration", "-1"])
    assert exit_info.value.code == 2


def test_sim_writes_summary_and_bag_and_bag_info_reads_it(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["sim", "point_mass_sim", "--duration", "4", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sim_steps"] == 800  # 4 s at 200 Hz
    assert summary["loop_time_us"]["p50"] > 0
    final = summary["final_states"]["/odom"]["position_m"]
    assert final == pytest.approx([1.0, 0.5, 0.0], abs=0.05)
    capsys.readouterr()
    assert main(["bag", "info", str(out / "bag")]) == 0
    info = capsys.readouterr().out
    assert "nav_msgs/msg/Odometry" in info and "geometry_msgs/msg/AccelStamped" in info
    assert main(["bag", "info", str(tmp_path)]) == 2


def test_help_lists_the_subcommands() -> None:
    result = subprocess.run([sys.executable, "-m", "aegis.cli", "--help"], capture_output=True, text=True, env=ENV)
    assert result.returncode == 0
    for command in ("check", "sim", "bag"):
        assert command in result.stdout


def test_replay_reproduces_the_controller_and_catches_a_changed_gain(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["sim", "point_mass_sim", "--duration", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["replay", str(out / "bag"), "point_mass_sim", "--node", "controller"]) == 0
    assert "identical" in capsys.readouterr().out
    changed = ["--set", "nodes.controller.params.kp=5"]
    assert main(["replay", str(out / "bag"), "point_mass_sim", "--node", "controller", *changed]) == 1
    assert "differs" in capsys.readouterr().out
    assert main(["replay", str(out / "bag"), "point_mass_sim", "--node", "nope"]) == 2
    assert "no node nope in the plan" in capsys.readouterr().err


def test_default_sim_flies_the_quadrotor_scenario_and_reports_its_numbers(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["sim", "--duration", "6", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["robot"] == "crazyflie" and summary["scenario"] == "quadrotor_figure8"
    required = {"collisions", "min_clearance_m", "tracking_rmse_m", "duration_s", "sim_steps", "real_time_factor", "loop_time_us"}
    assert required | {"filter_interventions", "fallbacks", "min_barrier"} <= summary.keys()
    assert summary["sim_steps"] == 6 * 240 and summary["collisions"] == 0
    # per-node timing: step durations measured; no start jitter or deadline in simulated time
    timing = summary["timing"]
    assert list(timing) == ["sim", "estimator", "lidar", "controller", "filter", "supervisor", "attitude"]  # perceived, estimated
    assert timing["sim"]["steps"] == 6 * 240 and timing["filter"]["steps"] == 6 * 48 and timing["filter"]["process"] == "stack"
    assert all(row["step_p50_us"] > 0 and row["jitter_p99_us"] is None and row["deadline_misses"] is None for row in timing.values())
    printed = capsys.readouterr().out
    assert "per-node timing" in printed
    assert 0.0 < summary["min_clearance_m"] < 1.0
    assert 0.0 < summary["tracking_rmse_m"] < 0.15  # the first second starts at rest behind a moving reference
    # the first tick comes before the first motion-capture fix reaches the estimator (no /odom: the one fallback), the
    # first two before the lidar's first scan has a pose (the geofence alone, within the start-up grace); then all healthy
    assert summary["min_barrier"] >= -1e-3 and summary["fallbacks"] == 1
    inputs = ("unusable_odometry_ticks", "unusable_obstacles_ticks", "stale_nominal_ticks", "geofence_only_ticks")
    assert [summary[key] for key in inputs] == [1, 0, 0, 2]
    perception = summary["perception"]  # measured on the true obstacles, whatever the filter believed
    assert perception["true_min_h"] >= -1e-3 and perception["precision"] > 0.9 and perception["recall"] > 0.5
    assert "filter: unusable odometry" in printed  # rich may wrap the rest of the label
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "bag" / "metadata.yaml").is_file()


def test_sim_with_another_scenario_and_a_bad_one(tmp_path: Path, capsys) -> None:
    assert main(["sim", "--scenario", "quadrotor_hover", "--duration", "2", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["scenario"] == "quadrotor_hover"
    assert main(["sim", "--scenario", "husky_goal", "--duration", "1", "--out", str(tmp_path)]) == 2
    assert "is for a diff_drive robot, the hw_config's robot is a quadrotor" in capsys.readouterr().err
    assert main(["sim", "--scenario", "nowhere", "--out", str(tmp_path)]) == 2
    assert "no such scenario file" in capsys.readouterr().err


def test_no_filter_runs_the_same_graph_without_the_filter(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["sim", "--scenario", "quadrotor_adversarial", "--no-filter", "--duration", "4", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "filter_interventions" not in summary and summary["collisions"] > 0
    assert "safety filter" in capsys.readouterr().out
    assert main(["sim", "--scenario", "quadrotor_adversarial", "--duration", "4", "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["collisions"] == 0


def test_a_scenario_family_resolves_per_robot(tmp_path: Path) -> None:
    from aegis.scenario import resolve_scenario_for

    assert resolve_scenario_for("adversarial", "quadrotor").stem == "quadrotor_adversarial"
    assert resolve_scenario_for("adversarial", "diff_drive").stem == "husky_adversarial"
    assert main(["check", "husky_sim"]) == 0
    assert main(["sim", "husky_sim", "--scenario", "adversarial", "--duration", "1", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["scenario"] == "husky_adversarial"


def test_export_c_writes_the_sources_and_refuses_a_missing_model(tmp_path: Path, capsys) -> None:
    from aegis.export.samples import mlp_gemm

    model = mlp_gemm(tmp_path / "policy.onnx")
    assert main(["export", "c", str(model), "-o", str(tmp_path / "c")]) == 0
    assert {p.name for p in (tmp_path / "c").iterdir()} >= {"policy.h", "policy.c"}
    assert "void policy_infer(const float *input, float *output);" in (tmp_path / "c" / "policy.h").read_text()
    capsys.readouterr()
    assert main(["export", "c", str(tmp_path / "none.onnx"), "-o", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.startswith("aegis: error:")


def test_model_inspect_and_doctor_report_the_facts(tmp_path: Path, capsys) -> None:
    from aegis.export.samples import mlp_gemm

    model = mlp_gemm(tmp_path / "policy.onnx")
    assert main(["model", "inspect", str(model), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parameters"] == 12 * 64 + 64 + 64 * 64 + 64 + 64 * 4 + 4  # weights and biases of 12-64-64-4
    assert report["inputs"][0]["name"] == "obs" and report["contract"] is None
    assert main(["model", "inspect", str(tmp_path / "none.onnx")]) == 2
    capsys.readouterr()
    assert main(["doctor", "quadrotor_sim"]) == 0
    out = capsys.readouterr().out
    assert "CPUExecutionProvider" in out and "quadrotor_sim.yaml" in out


def test_every_benchmark_is_a_subcommand_that_runs_its_module() -> None:
    import importlib

    from aegis.bench.cli import BENCHMARKS
    from aegis.cli import build_parser

    parser = build_parser()
    for name, module, _, _ in BENCHMARKS:
        args = parser.parse_args(["bench", name])
        assert args.handler.args == (module,), name
        assert callable(importlib.import_module(module).run_from_args)
