"""The proof on simulated ground truth: fly robots with hidden parameters, identify them from the bags, measure the errors.

Per seed, :data:`HIDDEN` draws a perturbation (aegis.sim.dynamics), written as a dynamics file
with every value pinned; the config's robot flies the excitation scenario with it and records a
bag; `aegis sysid`'s fit identifies it; each identified value is compared with the hidden one
(relative error; latencies in seconds, to be within one tick). kf is not perturbed: thrust data
determine only kf/m, and the overlay holds kf (see aegis.sysid.quadrotor).

The sim-to-sim gap: the same hidden plant flies a tracking scenario three times: the nominal
robot (nominal RMSE), the hidden plant under controllers built on the nominal values (perturbed),
and the hidden plant under controllers built on the identified values (identified; the plant
keeps its own, aegis.sysid.overlay.controllers_only_overrides).

For the ground robot (``--robot diff_drive``: a Husky on scenarios/husky_sysid.yaml) the checked
parameters are the wheel lag and the latencies; its mass, inertia and torque limit, hidden too,
must come out *not* identified (the wheel speed controllers hide them), never a wrong value.

``python -m aegis.sysid.recovery --seeds 20 --gap 3`` (and ``--robot diff_drive``) prints the
tables docs/sim-to-real.md quotes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from aegis.config import HwConfig, load_config
from aegis.launch_plan import make_plan
from aegis.paths import share_dir
from aegis.runs.sim_run import run_sim
from aegis.sim.dynamics import Dynamics, DynamicsDraw, plant_overrides
from aegis.sysid.identify import identify
from aegis.sysid.overlay import controllers_only_overrides


HIDDEN = Dynamics(
    description="hidden quadrotor parameters for the identification proof",
    mass_scale={"low": 0.8, "high": 1.25},
    inertia_scale={"low": 0.85, "high": 1.15},
    motor_time_constant_scale={"low": 0.8, "high": 1.6},
    torque_coeff_scale={"low": 0.85, "high": 1.2},
    drag_scale={"low": 0.7, "high": 1.5},
    sensing_latency_s={"low": 0.0, "high": 0.0125},
    actuation_latency_s={"low": 0.0, "high": 0.0125},
)
"""What the proof hides, per seed (kf, the noise and the scenario's randomisation stay nominal)."""

RELATIVE_KEYS = (
    "robot.mass_kg", "robot.quadrotor.motor_time_constant_s", "robot.quadrotor.km",
    "robot.quadrotor.inertia_kg_m2.x", "robot.quadrotor.inertia_kg_m2.y", "robot.quadrotor.inertia_kg_m2.z",
    "robot.quadrotor.rotor_drag_coeff.x", "robot.quadrotor.rotor_drag_coeff.y", "robot.quadrotor.rotor_drag_coeff.z",
)
LATENCY_KEYS = ("sensing_latency_s", "actuation_latency_s")

HIDDEN_DIFF_DRIVE = Dynamics(
    description="hidden ground robot parameters for the identification proof",
    mass_scale={"low": 0.8, "high": 1.25},
    inertia_scale={"low": 0.85, "high": 1.15},
    motor_time_constant_scale={"low": 0.8, "high": 1.6},
    torque_coeff_scale={"low": 0.85, "high": 1.2},
    sensing_latency_s={"low": 0.0, "high": 0.0125},
    actuation_latency_s={"low": 0.0, "high": 0.0125},
)
"""What the ground robot proof hides, per seed."""


@dataclass(frozen=True)
class Robot:
    """One robot's proof: its config, excitation and tracking scenarios, what is hidden, what must be recovered."""

    config: str
    excitation: str
    tracking: str
    hidden: Dynamics
    relative_keys: tuple[str, ...]
    unidentifiable_keys: tuple[str, ...] = ()


ROBOTS = {
    "quadrotor": Robot("quadrotor_classical_sim", "quadrotor_sysid", "quadrotor_figure8", HIDDEN, RELATIVE_KEYS),
    "diff_drive": Robot(
        "husky_oracle_sim", "husky_sysid", "husky_goal", HIDDEN_DIFF_DRIVE, ("robot.diff_drive.motor_time_constant_s",),
        ("robot.mass_kg", "robot.diff_drive.max_wheel_torque_nm"),
    ),
}


def config_path(name: str) -> Path:
    return share_dir() / "hw_configs" / f"{name}.yaml"


def scenario_path(name: str) -> Path:
    return share_dir() / "scenarios" / f"{name}.yaml"


def write_hidden(seed: int, folder: Path, hidden: Dynamics = HIDDEN) -> tuple[Path, DynamicsDraw]:
    """The seed's hidden perturbation as a dynamics file with every value pinned."""
    draw = hidden.draw(seed)
    path = folder / f"hidden_{seed}.yaml"
    path.write_text(yaml.safe_dump({"description": f"hidden parameters of seed {seed}", **draw.as_dict()}, sort_keys=False))
    return path, draw


def truth(config: HwConfig, draw: DynamicsDraw) -> dict[str, float]:
    """The hidden plant's values under the overlay's keys."""
    robot = config.robot
    values = {
        "robot.mass_kg": robot.mass_kg * draw.mass_scale,
        "sensing_latency_s": draw.sensing_latency_s,
        "actuation_latency_s": draw.actuation_latency_s,
    }
    if robot.diff_drive is not None:
        dd = robot.diff_drive
        values["robot.diff_drive.motor_time_constant_s"] = dd.motor_time_constant_s * draw.motor_time_constant_scale
        values["robot.diff_drive.max_wheel_torque_nm"] = dd.max_wheel_torque_nm * draw.torque_coeff_scale
        return values
    q = robot.quadrotor
    values["robot.quadrotor.motor_time_constant_s"] = q.motor_time_constant_s * draw.motor_time_constant_scale
    values["robot.quadrotor.km"] = q.km * draw.torque_coeff_scale
    for axis, inertia, drag in zip("xyz", q.inertia_kg_m2, q.rotor_drag_coeff):
        values[f"robot.quadrotor.inertia_kg_m2.{axis}"] = inertia * draw.inertia_scale
        values[f"robot.quadrotor.rotor_drag_coeff.{axis}"] = drag * draw.drag_scale
    return values


def fly(config_file: Path, scenario: str | Path, out: Path, overrides: list[str] = (), dynamics: Path | None = None, seed: int = 0) -> dict[str, Any]:
    """One recorded `aegis sim` run of ``scenario`` (a shipped scenario's name, or a scenario file); its summary."""
    base = [f"scenario={scenario if isinstance(scenario, Path) else scenario_path(scenario)}", *overrides]
    config = load_config(config_file, base)
    plan = make_plan(load_config(config_file, base + plant_overrides(config, dynamics)))
    return run_sim(plan, duration_s=None, seed=seed, out_dir=out, show_progress=False)


def recover(seed: int, folder: Path, gap: bool = False, robot: str = "quadrotor", excitation: Path | None = None) -> dict[str, Any]:
    """Fly seed's hidden robot on the excitation (the robot's shipped one, or ``excitation``), identify it; the errors
    (and with ``gap``, the three tracking RMSEs)."""
    spec = ROBOTS[robot]
    folder.mkdir(parents=True, exist_ok=True)
    config_file = config_path(spec.config)
    config = load_config(config_file)
    hidden, draw = write_hidden(seed, folder, spec.hidden)
    fly(config_file, excitation or spec.excitation, folder / "excitation", dynamics=hidden)
    result = identify(folder / "excitation" / "bag", config)
    true = truth(config, draw)
    dt = result.details["dt_s"]
    row: dict[str, Any] = {"seed": seed, "robot": robot, "dt_s": dt, "errors": {}, "identified": {}}
    for key in spec.relative_keys + LATENCY_KEYS + spec.unidentifiable_keys:
        estimate = result.estimates[key]
        error = estimate.value - true[key]
        row["errors"][key] = error if key in LATENCY_KEYS else error / true[key]
        row["identified"][key] = estimate.identified
    if gap:
        from aegis.sysid.identify import write_overlay

        overlay = folder / "overlay.yaml"
        write_overlay(result, overlay)
        rmse = {}
        for label, overrides, dynamics in (
            ("nominal", [], None),
            ("perturbed", [], hidden),
            ("identified", controllers_only_overrides(config, overlay), hidden),
        ):
            summary = fly(config_file, spec.tracking, folder / label, overrides, dynamics)
            rmse[label] = summary["tracking_rmse_m"]
        row["rmse_m"] = rmse
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aegis.sysid.recovery", description=__doc__.splitlines()[0])
    parser.add_argument("--robot", choices=sorted(ROBOTS), default="quadrotor", help="which robot (default: quadrotor)")
    parser.add_argument("--seeds", type=int, default=3, help="hidden robots to identify, seeds 0..N-1 (default: 3)")
    parser.add_argument("--gap", type=int, default=0, help="of these, how many also measure the sim-to-sim gap (default: 0)")
    parser.add_argument("--excitation", default=None,
                        help="a scenario (file or shipped name) to fly instead of the robot's own excitation; "
                        "python -m aegis.sysid.excitation designs one")
    parser.add_argument("--json", type=Path, default=None, help="write every row")
    args = parser.parse_args(argv)
    if args.excitation is not None:
        named = scenario_path(args.excitation)
        if not Path(args.excitation).is_file() and not named.is_file():
            parser.error(f"--excitation {args.excitation}: no such file and no shipped scenario of that name")
        args.excitation = Path(args.excitation) if Path(args.excitation).is_file() else named
    rows = []
    with tempfile.TemporaryDirectory(prefix="aegis-sysid-") as tmp:
        for seed in range(args.seeds):
            rows.append(recover(seed, Path(tmp) / str(seed), gap=seed < args.gap, robot=args.robot, excitation=args.excitation))
    dt = rows[0]["dt_s"]
    spec = ROBOTS[args.robot]
    print(f"{len(rows)} hidden {args.robot} robots ({spec.config}, {args.excitation or spec.excitation}); error = identified - hidden")
    print(f"{'parameter':40s} {'identified':>10s} {'max |error|':>12s} {'mean |error|':>12s}")
    for key in spec.relative_keys + LATENCY_KEYS + spec.unidentifiable_keys:
        errors = np.abs([r["errors"][key] for r in rows])
        found = sum(r["identified"][key] for r in rows)
        if key in spec.unidentifiable_keys:
            print(f"{key:40s} {found:>7d}/{len(rows):<2d}   (hidden by the wheel speed controllers: must not be identified)")
        elif key in LATENCY_KEYS:
            print(f"{key:40s} {found:>7d}/{len(rows):<2d} {errors.max() / dt:>8.2f} tick {errors.mean() / dt:>8.2f} tick")
        else:
            print(f"{key:40s} {found:>7d}/{len(rows):<2d} {100 * errors.max():>10.2f} % {100 * errors.mean():>10.2f} %")
    for row in rows:
        if "rmse_m" in row:
            r = row["rmse_m"]
            print(f"seed {row['seed']}: tracking RMSE ({spec.tracking}) nominal {100 * r['nominal']:.2f} cm, hidden plant "
                  f"{100 * r['perturbed']:.2f} cm, with the identified overlay {100 * r['identified']:.2f} cm "
                  f"({100 * (r['identified'] / r['nominal'] - 1):+.1f} % of nominal)")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
