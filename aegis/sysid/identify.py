"""From a bag and a hw_config to an identification: pick the robot's model (quadrotor, diff drive), fit it, and say what goes into the overlay."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aegis.sysid.quadrotor import Estimate, identify_quadrotor
from aegis.sysid.series import SysidError, read_series

LIST_KEYS = {
    "robot.quadrotor.inertia_kg_m2": ("x", "y", "z"),
    "robot.quadrotor.rotor_drag_coeff": ("x", "y", "z"),
}
"""hw_config list values identified per axis: written whole, the axes the bag did not identify at the config's value."""


@dataclass
class Identification:
    """What a bag said about a robot: every estimate (identified or not), the fit's numbers, and the overlay fragment."""

    bag: str
    config: str
    kind: str
    estimates: dict[str, Estimate]
    details: dict[str, Any]
    overlay: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "bag": self.bag, "config": self.config, "kind": self.kind, "details": self.details, "overlay": self.overlay,
            "estimates": {name: {"value": e.value, "ci95": e.ci95, "unit": e.unit, "identified": e.identified, "note": e.note}
                          for name, e in self.estimates.items()},
        }


def identify(bag: str | Path, config: Any, rel_ci_limit: float = 0.05) -> Identification:
    """Identify ``config``'s robot from ``bag``; SysidError for a bag or robot kind it cannot work with."""
    kind = config.robot.kind
    plant = next(iter(config.nodes))
    if kind == "diff_drive":
        from aegis.sysid.diff_drive import identify_diff_drive

        series = read_series(bag, "/cmd_wheels", None, wheels_topic="/joint_states")
        estimates, details = identify_diff_drive(series, config.robot, rel_ci_limit)
        return Identification(str(bag), str(config.source), kind, estimates, details, overlay_fragment(estimates, config, plant))
    if kind != "quadrotor":
        raise SysidError(f"{config.source}: robot kind {kind}: aegis sysid identifies quadrotors and diff_drive robots")
    series = read_series(bag, "/cmd_motors", "/imu")
    fit = identify_quadrotor(series, config.robot, rel_ci_limit)
    estimates = dict(fit.values)
    details = {
        "scales": {name: {"value": e.value, "ci95": e.ci95} for name, e in fit.scales.items()},
        "samples": fit.samples, "dt_s": fit.dt_s, "delay_ticks": fit.delay_ticks, "condition_number": fit.condition_number,
        "residual_std": fit.residual_std, "kf_held": config.robot.quadrotor.kf,
        "jointly_identifiable": "kf/m, kf/I_xx, kf/I_yy, km/I_zz: kf is held at the config's value",
    }
    overlay = overlay_fragment(fit.values, config, plant)
    return Identification(str(bag), str(config.source), kind, estimates, details, overlay)


def overlay_fragment(values: dict[str, Estimate], config: Any, plant: str) -> dict[str, Any]:
    """The nested hw_config fragment of the identified values (rounded to 5 significant digits)."""
    flat: dict[str, Any] = {}
    for key, (axes) in LIST_KEYS.items():
        entries = [values.get(f"{key}.{axis}") for axis in axes]
        if any(e is not None and e.identified for e in entries):
            current = _current(config, key)
            flat[key] = [_round(e.value) if e is not None and e.identified else c for e, c in zip(entries, current)]
    for key, estimate in values.items():
        if not estimate.identified or key.rsplit(".", 1)[0] in LIST_KEYS or key.startswith("imu."):
            continue
        if key in ("sensing_latency_s", "actuation_latency_s"):
            flat[f"nodes.{plant}.params.{'latency_s' if key == 'sensing_latency_s' else key}"] = _round(estimate.value)
        else:
            flat[key] = _round(estimate.value)
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return nested


def write_overlay(identification: Identification, path: Path) -> None:
    header = (
        f"# Identified by `aegis sysid` from {identification.bag} against {identification.config}: a hw_config fragment\n"
        "# (`aegis sim|eval --overlay FILE`). Only what the bag identified is here"
        + ("; kf is held at the config's value.\n" if identification.kind == "quadrotor" else ".\n")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(identification.overlay, sort_keys=False))


def _current(config: Any, key: str) -> list[float]:
    node: Any = config
    for part in key.split("."):
        node = getattr(node, part)
    return [float(v) for v in node]


def _round(value: float) -> float:
    return float(f"{value:.5g}")
