"""`aegis sim|eval --overlay FILE`: a hw_config fragment laid over the config, validated like --set, errors naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from aegis.cli import main
from aegis.cli_options import flatten_mapping, overlay_overrides
from aegis.config import load_config
from aegis.paths import share_dir


def test_an_overlay_becomes_the_overrides_of_its_keys(tmp_path: Path) -> None:
    overlay = tmp_path / "o.yaml"
    overlay.write_text("robot:\n  mass_kg: 0.031\n  quadrotor:\n    inertia_kg_m2: [1.3e-5, 1.3e-5, 2.0e-5]\nnodes:\n  sim:\n    params: {latency_s: 0.0125}\n")
    keys = overlay_overrides(overlay)
    config = load_config(share_dir() / "hw_configs" / "quadrotor_classical_sim.yaml", keys)
    assert config.robot.mass_kg == 0.031
    assert config.robot.quadrotor.inertia_kg_m2 == (1.3e-5, 1.3e-5, 2.0e-5)
    assert config.robot.quadrotor.kf == load_config(share_dir() / "hw_configs" / "quadrotor_classical_sim.yaml").robot.quadrotor.kf
    assert config.nodes["sim"].params["latency_s"] == 0.0125
    # every node with a robot parameter gets the overlay's robot (one source of truth)
    assert config.nodes["attitude"].params["robot"]["mass_kg"] == 0.031


def test_flatten_keeps_lists_and_empty_mappings_as_values() -> None:
    assert flatten_mapping({"a": {"b": [1, 2], "c": {}}, "d": 1}) == [("a.b", [1, 2]), ("a.c", {}), ("d", 1)]


@pytest.mark.parametrize(
    "text, words",
    [
        ("robot:\n  mass_kg: -1\n", ["robot.mass_kg", "greater than 0"]),
        ("robot:\n  quadrotor:\n    motor_time_constnt_s: 0.03\n", ["motor_time_constnt_s", "unknown key"]),
        ("nodes:\n  simm:\n    params: {latency_s: 0.01}\n", ["simm", "no node"]),
        ("- just a list\n", ["mapping"]),
    ],
)
@pytest.mark.parametrize("command", ["sim", "eval"])
def test_a_bad_overlay_is_refused_naming_the_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, words: list[str], command: str
) -> None:
    overlay = tmp_path / "bad_overlay.yaml"
    overlay.write_text(text)
    assert main([command, "quadrotor_classical_sim", "--overlay", str(overlay), "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "bad_overlay.yaml" in err and all(w in err for w in words), err
    assert "Traceback" not in err


def test_a_missing_overlay_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "quadrotor_classical_sim", "--overlay", str(tmp_path / "nope.yaml")]) == 2
    assert "--overlay" in capsys.readouterr().err
