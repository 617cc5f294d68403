"""Designing the excitation flight for `aegis sysid`: the candidate tour whose flight tells the most about the robot's parameters.

Active system identification (ASID) chooses the inputs that make the parameters most identifiable
instead of hand-writing them. Here the input is the scenario the robot flies: a looped 3-D waypoint
tour (where it turns, climbs and sinks, how fast, how far off its held heading it starts). Each
candidate is flown once in simulation on the current model (the config's nominal robot: what is known
before the real flight), identified from its own bag exactly as `aegis sysid` would identify a robot's,
and scored by the information its fit carries about the parameter it knows least: the largest of the
parameters' relative 95 % confidence half-widths (a minimax, E-optimal-like criterion: the proof's
target is every parameter within 5 %), ties broken by their geometric mean (the confidence
ellipsoid's size, D-optimal-like). A candidate that crashes, leaves the geofence or leaves a
parameter unidentified is out. The search is a seeded random search over the tours, not an optimiser:
each candidate costs one flight and one fit. Candidate 0 is the shipped hand-written excitation
(``scenarios/quadrotor_sysid.yaml``) cut to the same duration, so the table says what the design buys
over it at equal flight time. The best candidate is written as a scenario file that `aegis sim
--scenario FILE` flies and ``python -m aegis.sysid.recovery --excitation FILE`` proves on hidden robots.

    python -m aegis.sysid.excitation --candidates 12 --duration 10 --seed 0 -o runs/excitation.yaml

The quadrotor only: the Husky's identifiable parameters (wheel lag, latencies) are determined by any
drive, and its mass and torque limit stay hidden by its wheel speed controllers whatever it drives.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from aegis.config import load_config
from aegis.sysid.identify import identify
from aegis.sysid.recovery import RELATIVE_KEYS, config_path, fly, scenario_path

CONFIG = "quadrotor_classical_sim"
TEMPLATE = "quadrotor_sysid"
TOUR_BOX_M = ((-1.5, 1.5), (-1.5, 1.5), (0.7, 1.6))
"""Where a candidate's waypoints are drawn (x, y, z): inside the template's geofence with a margin for overshoot."""
SPEED_MPS = (0.8, 2.0)
YAW_OFFSET_RAD = (0.3, 1.4)
WAYPOINTS = (5, 8)


@dataclass(frozen=True)
class Candidate:
    """One excitation tour: its looped waypoints, speed along them and initial heading (the tour starts at the first point)."""

    index: int
    points: tuple[tuple[float, float, float], ...]
    speed_mps: float
    yaw_rad: float


@dataclass(frozen=True)
class Score:
    """What a candidate's flight told: the geometric-mean relative CI (the criterion), the worst one, what was identified."""

    candidate: Candidate
    worst_relative_ci: float  # the criterion: the largest relative 95 % CI over RELATIVE_KEYS (smaller: more information)
    worst_key: str
    information: float  # the tie-break: the geometric mean of those relative CIs
    identified: int
    outcome: str

    @property
    def usable(self) -> bool:
        return self.outcome in ("success", "completed") and self.identified == len(RELATIVE_KEYS) and math.isfinite(self.worst_relative_ci)

    @property
    def rank(self) -> tuple[float, float]:
        return (self.worst_relative_ci, self.information)


def template() -> dict:
    return yaml.safe_load(scenario_path(TEMPLATE).read_text())


def shipped_candidate() -> Candidate:
    """Candidate 0: the hand-written excitation's own tour."""
    scenario = template()
    points = tuple(tuple(float(v) for v in p) for p in scenario["reference"]["points"])
    return Candidate(0, points, float(scenario["reference"]["speed_mps"]), float(scenario["start"]["yaw_rad"]))


def draw_candidates(count: int, seed: int) -> list[Candidate]:
    """The shipped tour, then ``count - 1`` random ones from ``seed`` (one stream: the same seed, the same candidates)."""
    rng = np.random.default_rng(seed)
    candidates = [shipped_candidate()]
    low, high = np.array([b[0] for b in TOUR_BOX_M]), np.array([b[1] for b in TOUR_BOX_M])
    for index in range(1, count):
        n = int(rng.integers(WAYPOINTS[0], WAYPOINTS[1] + 1))
        points = rng.uniform(low, high, size=(n, 3))
        points[0] = [0.0, 0.0, 1.0]  # from the template's start
        candidates.append(Candidate(
            index, tuple(tuple(round(float(v), 3) for v in p) for p in points),
            round(float(rng.uniform(*SPEED_MPS)), 3), round(float(rng.uniform(*YAW_OFFSET_RAD)), 3),
        ))
    return candidates


def scenario_of(candidate: Candidate, duration_s: float, header: str = "") -> str:
    """The candidate as a scenario file's text: the template with its tour, speed, heading and duration."""
    scenario = template()
    scenario["name"] = f"{TEMPLATE}_designed"
    scenario["description"] = f"Excitation for aegis sysid designed by python -m aegis.sysid.excitation (candidate {candidate.index})"
    scenario["duration_s"] = float(duration_s)
    scenario["start"] = {"position": list(candidate.points[0]), "yaw_rad": candidate.yaw_rad}
    scenario["reference"] = {"type": "waypoints", "points": [list(p) for p in candidate.points], "speed_mps": candidate.speed_mps, "loop": True}
    return header + yaml.safe_dump(scenario, sort_keys=False, default_flow_style=None, width=200)


def score(candidate: Candidate, duration_s: float, folder: Path) -> Score:
    """Fly ``candidate`` for ``duration_s`` on the nominal robot, identify it from its bag, score the fit."""
    folder.mkdir(parents=True, exist_ok=True)
    scenario = folder / "scenario.yaml"
    scenario.write_text(scenario_of(candidate, duration_s))
    config_file = config_path(CONFIG)
    summary = fly(config_file, scenario, folder / "flight")
    outcome = str(summary.get("outcome", "completed"))
    if outcome not in ("success", "completed"):
        return Score(candidate, math.inf, "-", math.inf, 0, outcome)
    result = identify(folder / "flight" / "bag", load_config(config_file))
    relative = {key: result.estimates[key].relative_ci for key in RELATIVE_KEYS}
    worst = max(relative, key=relative.get)
    identified = sum(result.estimates[key].identified for key in RELATIVE_KEYS)
    information = float(np.exp(np.mean(np.log(list(relative.values())))))
    return Score(candidate, relative[worst], worst, information, identified, outcome)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aegis.sysid.excitation", description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=12, help="tours to try, the shipped one first (default: 12)")
    parser.add_argument("--duration", type=float, default=10.0, help="each flight's length in seconds (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random tours (default: 0)")
    parser.add_argument("-o", "--out", type=Path, default=None, help="write the best tour as a scenario file")
    args = parser.parse_args(argv)
    if args.candidates < 1 or not 1.0 <= args.duration <= 120.0:
        parser.error("--candidates must be >= 1 and --duration within 1..120 s")
    scores = []
    with tempfile.TemporaryDirectory(prefix="aegis-excitation-") as tmp:
        for candidate in draw_candidates(args.candidates, args.seed):
            scores.append(score(candidate, args.duration, Path(tmp) / str(candidate.index)))
            s = scores[-1]
            print(f"candidate {candidate.index:2d}: {len(candidate.points)} points at {candidate.speed_mps:.2f} m/s, yaw {candidate.yaw_rad:.2f} rad: "
                  + (f"worst relative CI {100 * s.worst_relative_ci:.2f} % ({s.worst_key}), geometric mean {100 * s.information:.3f} %, "
                     f"identified {s.identified}/{len(RELATIVE_KEYS)}" if s.outcome in ("success", "completed") else f"out: {s.outcome}"),
                  flush=True)
    usable = [s for s in scores if s.usable]
    if not usable:
        print("no candidate identified every parameter: fly longer (--duration) or try more (--candidates)")
        return 1
    best = min(usable, key=lambda s: s.rank)
    shipped = scores[0]
    versus = (f"the shipped tour's {100 * shipped.worst_relative_ci:.2f} % in the same time"
              if shipped.usable else "the shipped tour did not identify every parameter in that time")
    print(f"best: candidate {best.candidate.index}, worst relative CI {100 * best.worst_relative_ci:.2f} % ({best.worst_key}) against {versus}")
    if args.out is not None:
        header = (
            f"# Excitation for aegis sysid, designed (ASID): `python -m aegis.sysid.excitation --candidates {args.candidates} "
            f"--duration {args.duration:g} --seed {args.seed}`\n# picked candidate {best.candidate.index} of {args.candidates} "
            f"(0: the shipped quadrotor_sysid tour) for the smallest largest relative 95 % CI of its parameters\n"
            f"# ({100 * best.worst_relative_ci:.2f} %, {best.worst_key}) flown on {CONFIG}'s nominal robot. Units SI, ENU world frame (odom).\n"
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(scenario_of(best.candidate, args.duration, header))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
