"""The bad inputs a new user tries, one of each class (issue 11): each refused in one line naming the file or key.

Every row runs the real command line (``aegis.cli.main`` in-process; as a subprocess with a timeout
for the inputs that used to hang) and checks its exit code, that exactly one line of its stderr
says what is wrong (the ``aegis: error:`` line, or argparse's ``aegis CMD: error:``) with the words
it must name, and that no traceback escaped. Exit code 2 is a refusal; the rows with another code
are the commands whose verdict it is (a run that diverged, a model check that failed, a replay).
The fuzz tests (tests/test_fuzz_inputs.py) cover each class with many drawn inputs; this table is
the readable list, one concrete example each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from aegis.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the diverging run's, on purpose

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
BOMB = "\n".join(
    ["bomb0: &b0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"bomb{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 9) + "]" for i in range(1, 9)]
)


def shipped(name: str, *edits: tuple[str, str]) -> str:
    """A shipped config's or scenario's text with ``edits`` (old, new) applied and relative model paths made absolute."""
    folder = "hw_configs" if (REPO / "hw_configs" / f"{name}.yaml").is_file() else "scenarios"
    text = (REPO / folder / f"{name}.yaml").read_text().replace("../models/", f"{REPO}/models/")
    for old, new in edits:
        assert old in text, f"{old!r} not in {name}"
        text = text.replace(old, new)
    return text


def write(tmp: Path, name: str, content: str | bytes) -> str:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def recorded_bag(tmp: Path, damage: Callable[[Path], None] | None = None) -> str:
    """A bag of the point-mass loop (0.2 s, what `aegis sim point_mass_sim` records, without its plot), then damaged."""
    from aegis.config import load_config
    from aegis.executors.lockstep import LockstepExecutor
    from aegis.launch_plan import make_plan
    from aegis.runs.bag import BagRecorder

    bag = tmp / "run" / "bag"
    with BagRecorder(bag) as recorder:
        executor = LockstepExecutor(make_plan(load_config(REPO / "hw_configs" / "point_mass_sim.yaml")).instantiate(),
                                    listeners=[recorder.write])
        executor.reset(seed=0)
        executor.run(0.2)
    if damage is not None:
        damage(bag)
    return str(bag)


def truncate(bag: Path) -> None:
    mcap = next(bag.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[:3000])


def randomize(bag: Path) -> None:
    next(bag.glob("*.mcap")).write_bytes(os.urandom(5000))


def remove(bag: Path) -> None:
    next(bag.glob("*.mcap")).unlink()


def latin1_metadata(bag: Path) -> None:
    meta = bag / "metadata.yaml"
    meta.write_bytes(meta.read_bytes().replace(b"rosbags", b"rosb\xe4gs"))


def symlink_loop(tmp: Path) -> str:
    (tmp / "loop.urdf").symlink_to(tmp / "loop.urdf")
    return write(tmp, "robot.yaml", shipped("point_mass_sim", ("mass_kg: 1.0", "mass_kg: 1.0\n  urdf: loop.urdf")))


def not_urdf(tmp: Path, content: str) -> str:
    write(tmp, "robot.urdf", content)
    return write(tmp, "robot.yaml", shipped("point_mass_sim", ("mass_kg: 1.0", "mass_kg: 1.0\n  urdf: robot.urdf")))


def mismatched_mapping(tmp: Path) -> list[str]:
    """A 12-input MLP with the husky policy's contract (5 observations, 2 actions) as its mapping file."""
    from aegis.export.samples import mlp_gemm
    from aegis.inference.contract import read_contract, write_mapping

    model = mlp_gemm(tmp / "policy.onnx")
    write_mapping(read_contract(REPO / "models" / "husky_goal.onnx"), tmp / "policy.aegis.yaml")
    return ["model", "inspect", str(model), "--mapping", str(tmp / "policy.aegis.yaml")]


@dataclass(frozen=True)
class Case:
    """One bad input: the class it stands for, how to build the command line, the exit code and the words the one line names."""

    name: str
    argv: Callable[[Path], list[str]]
    expect: tuple[str, ...]
    code: int = 2
    subprocess: bool = False
    """Run as a subprocess with a timeout: the input once hung the command."""


CASES = [
    # -- inputs that hung ----------------------------------------------------------------------
    Case("alias bomb in a typed field", lambda t: ["check", write(t, "bomb.yaml", BOMB + "\n" + shipped(
        "point_mass_sim", ("mass_kg: 1.0", "mass_kg: *b8")))], ("bomb.yaml", "line 6", "alias bomb"), subprocess=True),
    Case("rate of .inf", lambda t: ["check", write(t, "inf_rate.yaml", shipped(
        "point_mass_sim", ("rate_hz: 200", "rate_hz: .inf")))], ("inf_rate.yaml", "nodes.plant.rate_hz", "finite"), subprocess=True),
    Case("rate of 1e9", lambda t: ["check", write(t, "fast.yaml", shipped(
        "point_mass_sim", ("rate_hz: 200", "rate_hz: 1.0e+9")))], ("nodes.plant.rate_hz", "less than or equal to 10000"),
        subprocess=True),
    Case("scenario lasting 1e12 s", lambda t: ["sim", "quadrotor_sim", "--scenario", write(t, "long.yaml", shipped(
        "quadrotor_hover", ("duration_s: 10.0", "duration_s: 1.0e+12")))], ("long.yaml", "duration_s", "3600"), subprocess=True),
    Case("--duration of 1e12 s", lambda t: ["sim", "point_mass_sim", "--duration", "1e12"], ("--duration", "at most 3600")),
    Case("latency of a million seconds", lambda t: ["sim", "quadrotor_sim", "--dynamics", write(
        t, "slow.yaml", "actuation_latency_s: 1.0e+6\n")], ("slow.yaml", "actuation_latency_s", "less than or equal to 1")),
    # -- values that were accepted ---------------------------------------------------------------
    Case("NaN mass", lambda t: ["check", write(t, "nan.yaml", shipped(
        "point_mass_sim", ("mass_kg: 1.0", "mass_kg: .nan")))], ("nan.yaml", "robot.mass_kg", "finite number")),
    Case("inf inertia", lambda t: ["check", write(t, "inertia.yaml", shipped(
        "quadrotor_sim", ("quadrotor: {}", "quadrotor: {inertia_kg_m2: [.inf, 1.4e-5, 2.17e-5]}")))],
        ("robot.quadrotor.inertia_kg_m2.0", "finite number")),
    Case("inf max speed", lambda t: ["check", write(t, "speed.yaml", shipped(
        "point_mass_sim", ("max_speed_mps: 2.0", "max_speed_mps: .inf")))], ("safety.max_speed_mps", "finite number")),
    Case("inf filter alpha (--set)", lambda t: ["check", "quadrotor_sim", "--set", "nodes.filter.params.alpha=.inf"],
         ("quadrotor_sim.yaml", "nodes.filter.params.alpha", "finite number")),
    Case("NaN geofence", lambda t: ["check", "quadrotor_sim", "--set", "safety.geofence.min_m=[.nan, -4, -0.1]"],
         ("safety.geofence.min_m.0", "finite number")),
    Case("NaN setpoint (a node parameter)", lambda t: ["check", "point_mass_sim", "--set", "nodes.controller.params.setpoint_m=[.nan, 0, 0]"],
         ("nodes.controller.params.setpoint_m.0", "finite number")),
    Case("run whose state goes non-finite", lambda t: ["sim", write(t, "diverge.yaml", shipped(
        "point_mass_sim", ("kp: 4.0", "kp: 1.0e+300"), ("max_accel_mps2: 20.0", "max_accel_mps2: 1.0e+300"),
        ("accel_limit_mps2: 5.0", "accel_limit_mps2: 1.0e+300"))), "--duration", "0.05", "--out", str(t / "diverged")],
        ("diverged", "non-finite", "summary.json"), code=1),
    # -- inputs that ended in a traceback --------------------------------------------------------
    Case("non-UTF-8 hw_config", lambda t: ["check", write(t, "latin1.yaml", shipped("point_mass_sim").encode().replace(
        b"name: point_mass", b"name: p\xe9"))], ("latin1.yaml", "line 4", "not UTF-8")),
    Case("non-UTF-8 scenario", lambda t: ["sim", "quadrotor_sim", "--scenario", write(t, "latin1_scenario.yaml", shipped(
        "quadrotor_hover").encode().replace(b"name: ", b"name: \xe9"))], ("latin1_scenario.yaml", "not UTF-8")),
    Case("non-UTF-8 bag metadata", lambda t: ["bag", "info", recorded_bag(t, latin1_metadata)], ("metadata.yaml", "not UTF-8")),
    Case("truncated .mcap", lambda t: ["bag", "info", recorded_bag(t, truncate)], ("bag", "not a readable rosbag2 bag")),
    Case("random .mcap", lambda t: ["replay", recorded_bag(t, randomize), "point_mass_sim", "--node", "controller"],
         ("bag", "not a readable rosbag2 bag")),
    Case("missing .mcap", lambda t: ["bag", "info", recorded_bag(t, remove)], ("bag", "missing")),
    Case("--seed -1", lambda t: ["sim", "point_mass_sim", "--seed", "-1"], ("--seed", "from 0 to 4294967295")),
    Case("--out under a file", lambda t: ["sim", "point_mass_sim", "--out", write(t, "a_file", "") + "/run"],
         ("--out", "a_file is a file")),
    Case("--out name over 255 bytes", lambda t: ["sim", "point_mass_sim", "--out", str(t / ("x" * 300))],
         ("--out", "300 bytes", "at most 255")),
    Case("--out where nothing can be written", lambda t: ["sim", "point_mass_sim", "--duration", "0.1", "--out", "/proc/aegis-run"],
         ("--out /proc/aegis-run", "cannot create the folder")),
    Case("export c -o onto a file", lambda t: ["export", "c", str(REPO / "models" / "husky_goal.onnx"), "-o", write(t, "out.c", "")],
         ("-o/--out", "is a file, not a folder")),
    Case("robot.urdf a symlink loop", lambda t: ["check", symlink_loop(t)], ("robot.urdf", "symlink that leads nowhere")),
    Case("robot.urdf not XML", lambda t: ["check", not_urdf(t, "solid cube\nendsolid\n")], ("robot.urdf", "not a URDF file")),
    Case("robot.urdf XML but not <robot>", lambda t: ["check", not_urdf(t, "<sdf version='1.6'/>")],
         ("robot.urdf", "root element is <sdf>")),
    # -- what was said untruly or unhelpfully ----------------------------------------------------
    Case("scenario error (once, not per node)", lambda t: ["sim", "quadrotor_sim", "--scenario", write(t, "typo.yaml", shipped(
        "quadrotor_hover", ("duration_s:", "obstacle: []\nduration_s:")))], ("typo.yaml", "obstacle: unknown key", "did you mean obstacles")),
    Case("model whose graph check fails", mismatched_mapping, ("policy.onnx", "graph check failed", "model input 'obs' has 12"), code=1),
    Case("model of the wrong robot kind (--config)", lambda t: ["model", "inspect", str(REPO / "models" / "husky_goal.onnx"),
         "--config", "quadrotor_sim"], ("husky_goal.onnx", "deployment check failed", "robot kind"), code=1),
    Case("misspelled node in --set", lambda t: ["check", "quadrotor_sim", "--set", "nodes.filtr.params.alpha=2"],
         ("nodes.filtr", "there is no node 'filtr' in the config", "did you mean filter")),
    Case("misspelled config name", lambda t: ["sim", "quadrotr_sim"], ("quadrotr_sim", "did you mean quadrotor_sim")),
    Case("misspelled scenario name", lambda t: ["sim", "quadrotor_sim", "--scenario", "quadrotor_figur8"],
         ("quadrotor_figur8", "did you mean quadrotor_figure8")),
    Case("misspelled node type", lambda t: ["check", "point_mass_sim", "--set", "nodes.controller.type=pdi"],
         ("nodes.controller.type", "did you mean pid")),
    Case("misspelled key", lambda t: ["check", "point_mass_sim", "--set", "nodes.controller.params.kpp=2"],
         ("nodes.controller.params.kpp", "unknown key", "did you mean kp")),
    Case("misspelled node in replay", lambda t: ["replay", recorded_bag(t), "point_mass_sim", "--node", "controler"],
         ("no node controler", "did you mean controller")),
    Case("eval of a swarm config", lambda t: ["eval", "quadrotor_swarm_sim", "--episodes", "1"],
         ("swarm", "eval does not run swarm configs yet")),
    # -- more of the YAML loader's classes -------------------------------------------------------
    Case("duplicate key", lambda t: ["check", write(t, "dup.yaml", shipped("point_mass_sim", ("target: sim", "target: sim\ntarget: cpu")))],
         ("dup.yaml", "duplicate key 'target'")),
    Case("a list as a key", lambda t: ["check", write(t, "key.yaml", "[1, 2]: 3\n" + shipped("point_mass_sim"))],
         ("key.yaml", "a key must be a name or a number")),
    Case("control character", lambda t: ["check", write(t, "ctrl.yaml", "\x1b[31m" + shipped("point_mass_sim"))],
         ("ctrl.yaml", "line 1", "not allowed in YAML")),
    Case("nesting 500 deep", lambda t: ["check", write(t, "deep.yaml", "a: " + "[" * 500 + "]" * 500 + "\n")],
         ("deep.yaml", "nested deeper than the 64 levels")),
    Case("a 2 MB config", lambda t: ["check", write(t, "big.yaml", shipped("point_mass_sim") + "#" * 2_000_000)],
         ("big.yaml", "more than the 1,048,576 a config file may have")),
    Case("a huge value echoed", lambda t: ["check", "point_mass_sim", "--set", "robot.mass_kg=" + "9" * 5000 + "x"],
         ("robot.mass_kg", "more characters")),
]


def error_lines(err: str) -> list[str]:
    """The lines saying what went wrong: aegis' own (``aegis: ...``, ``differs: ...``) and argparse's (``aegis CMD: error: ...``)."""
    return [line for line in err.splitlines() if line.startswith(("aegis: ", "differs: ")) or (line.startswith("aegis ") and ": error: " in line)]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_input_is_refused_in_one_line(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = case.argv(tmp_path)
    capsys.readouterr()
    if case.subprocess:
        result = subprocess.run([sys.executable, "-m", "aegis.cli", *argv], capture_output=True, text=True, cwd=tmp_path,
                                env=ENV, timeout=120)
        code, err = result.returncode, result.stderr
    else:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's refusal of an option
            code = exc.code
        err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1, f"expected one line saying what is wrong, got:\n{err}"
    for words in case.expect:
        assert words in lines[0], f"{words!r} not in {lines[0]!r}"
    assert len(lines[0]) < 1200, "a refusal never echoes a huge input"
    assert code == case.code


def test_a_diverged_run_is_a_crash_in_its_summary(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == "run whose state goes non-finite")
    assert main(case.argv(tmp_path)) == 1
    summary = json.loads((tmp_path / "diverged" / "summary.json").read_text())
    assert summary["outcome"] == "crash" and summary["crash_reason"] == "non-finite state" and summary["non_finite_state"]


def test_an_unchanged_run_replays_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What `make sim` then `aegis replay runs/sim/bag --node filter` does: the filter's solve times differ, nothing else;
    the whole chain (the policy's latencies, the supervisor's e-stop input that nothing published) replays identical too."""
    assert main(["sim", "quadrotor_sim", "--duration", "1", "--out", str(tmp_path / "sim")]) == 0
    capsys.readouterr()
    assert main(["replay", str(tmp_path / "sim" / "bag"), "--node", "filter"]) == 0
    assert "identical" in capsys.readouterr().out
    chain = [word for node in ("controller", "filter", "supervisor", "attitude") for word in ("--node", node)]
    assert main(["replay", str(tmp_path / "sim" / "bag"), *chain]) == 0
    assert "differs" not in capsys.readouterr().out
    assert main(["replay", str(tmp_path / "sim" / "bag"), "--node", "filter", "--set", "nodes.filter.params.alpha=2.5"]) == 1
    line = error_lines(capsys.readouterr().err)[0]
    assert line.startswith("differs: /cmd_accel") and " s: linear differs by " in line
