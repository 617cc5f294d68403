"""Training scenarios: the shipped ones and randomized references and start states, so demonstrations cover the state space.

An expert flying only the figure-8 from its first point never shows a policy what to do 0.8 m off
the path, at another speed, or on a straight line. Each episode here is a scenario file drawn from
a seeded generator: every ``ANCHOR_EVERY``-th one is a shipped scenario of the config (its own and
the kind's adversarial one, obstacles and all), the others a random reference (figure-8, line,
waypoints, hover; drive tours for the ground robot) with the robot started off it. Physical
randomisation (mass, inertia, motors, friction, latency, noise) is on in every episode.

Same seed and index, same scenario: the draws use ``numpy.random.default_rng((seed, stream, index))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from aegis.scenario import Scenario, load_scenario, reference_at, resolve_scenario_for

ANCHOR_EVERY = 3
"""Every third episode flies a shipped scenario (the config's own, then the adversarial one, in turn)."""

QUADROTOR_RANDOMIZATION = {
    "mass_scale": {"low": 0.9, "high": 1.1},
    "inertia_scale": {"low": 0.9, "high": 1.1},
    "motor_constant_scale": {"low": 0.95, "high": 1.05},
    "latency_s": {"low": 0.0, "high": 0.01},
    "sensor_noise_scale": {"low": 0.5, "high": 1.5},
}
DIFF_DRIVE_RANDOMIZATION = {
    "mass_scale": {"low": 0.9, "high": 1.1},
    "friction_scale": {"low": 0.7, "high": 1.2},
    "latency_s": {"low": 0.0, "high": 0.02},
}


@dataclass(frozen=True)
class Episode:
    """One training episode: its scenario file, the seed of its run and how long it lasts (s)."""

    scenario: Path
    seed: int
    duration_s: float
    name: str


def training_episodes(
    kind: str, base_scenario: Path | None, count: int, seed: int, stream: int, folder: Path, max_duration_s: float = 20.0
) -> list[Episode]:
    """``count`` episodes for a robot ``kind`` (files written to ``folder``); ``stream`` keeps iterations' draws apart."""
    folder.mkdir(parents=True, exist_ok=True)
    anchors = [p for p in (base_scenario, resolve_scenario_for("adversarial", kind)) if p is not None]
    episodes = []
    for index in range(count):
        rng = np.random.default_rng((seed, stream, index))
        run_seed = int(rng.integers(2**31 - 1))
        if index % ANCHOR_EVERY == 0 and anchors:
            path = Path(anchors[(index // ANCHOR_EVERY) % len(anchors)])
            scenario = load_scenario(path)
            episodes.append(Episode(path, run_seed, min(scenario.duration_s, max_duration_s), scenario.name))
            continue
        raw = _random_quadrotor(rng) if kind == "quadrotor" else _random_diff_drive(rng)
        raw["name"] = f"train_{kind}_{stream}_{index}"
        raw["duration_s"] = float(min(raw["duration_s"], max_duration_s))
        path = folder / f"{raw['name']}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        scenario = load_scenario(path)  # validated: reference inside the geofence, start placed
        episodes.append(Episode(path, run_seed, scenario.duration_s, scenario.name))
    return episodes


def _u(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _point(rng: np.random.Generator, low: tuple[float, ...], high: tuple[float, ...]) -> list[float]:
    return [round(_u(rng, lo, hi), 3) for lo, hi in zip(low, high)]


QUADROTOR_AREA = ((-2.5, -2.0, 0.6), (2.5, 2.0, 2.0))
QUADROTOR_GEOFENCE = {"min_m": [-3.5, -3.0, 0.0], "max_m": [3.5, 3.0, 2.8]}
QUADROTOR_TOP_SPEED_MPS = 1.6
"""Fastest random reference: below the 2 m/s limit, so the expert can catch up with it."""


def _random_quadrotor(rng: np.random.Generator) -> dict[str, Any]:
    low, high = QUADROTOR_AREA
    kind = rng.choice(["figure8", "line", "waypoints", "hover"], p=[0.35, 0.25, 0.25, 0.15])
    if kind == "figure8":
        xa, ya = _u(rng, 0.5, 1.5), _u(rng, 0.3, 0.9)
        slowest = 2.0 * math.pi * math.hypot(xa, 2.0 * ya) / QUADROTOR_TOP_SPEED_MPS  # peak speed <= w sqrt(xa^2 + 4 ya^2)
        reference = {
            "type": "figure8",
            "center": _point(rng, (-0.8, -0.8, 0.9), (0.8, 0.8, 1.6)),
            "x_amplitude_m": round(xa, 3),
            "y_amplitude_m": round(ya, 3),
            "period_s": round(max(_u(rng, 6.0, 14.0), slowest), 3),
        }
        duration = _u(rng, 8.0, 14.0)
    elif kind == "line":
        start, end = _two_points(rng, low, high, 1.5)
        speed = _u(rng, 0.3, 1.5)
        reference = {"type": "line", "from": start, "to": end, "speed_mps": round(speed, 3)}
        duration = float(np.linalg.norm(np.subtract(end, start))) / speed + 3.0
    elif kind == "waypoints":
        points = _chain(rng, low, high, int(rng.integers(3, 6)), 0.8)
        speed = _u(rng, 0.3, 1.2)
        reference = {"type": "waypoints", "points": points, "speed_mps": round(speed, 3)}
        duration = _length(points) / speed + 3.0
    else:
        reference = {"type": "hover", "position": _point(rng, low, high)}
        duration = 6.0
    first = _reference_start(reference)
    direction = rng.standard_normal(3)
    offset = direction / np.linalg.norm(direction) * _u(rng, 0.0, 1.0)
    start = np.clip(first + offset, (-3.0, -2.5, 0.3), (3.0, 2.5, 2.4))
    return {
        "description": f"randomized training {kind}",
        "duration_s": round(duration, 3),
        "robot_kind": "quadrotor",
        "start": {"position": [round(float(v), 3) for v in start]},
        "reference": reference,
        "geofence": QUADROTOR_GEOFENCE,
        "randomization": QUADROTOR_RANDOMIZATION,
    }


DIFF_DRIVE_AREA = ((-1.0, -3.0), (8.0, 3.0))
DIFF_DRIVE_GEOFENCE = {"min_m": [-3.0, -5.0, 0.0], "max_m": [10.0, 5.0, 2.0]}


def _random_diff_drive(rng: np.random.Generator) -> dict[str, Any]:
    (x0, y0), (x1, y1) = DIFF_DRIVE_AREA
    tour = rng.random() < 0.7
    heading = _u(rng, -math.pi, math.pi)
    for _ in range(100):  # a tour that stays in the area
        points = [np.array([_u(rng, x0 + 1.0, x1 - 1.0), _u(rng, y0 + 1.0, y1 - 1.0)])]
        turn = heading
        for _ in range(int(rng.integers(2, 5)) if tour else 1):
            turn += _u(rng, -1.8, 1.8) if tour and len(points) > 1 else 0.0
            points.append(points[-1] + _u(rng, 1.2, 3.0 if tour else 6.0) * np.array([math.cos(turn), math.sin(turn)]))
        if all(x0 <= p[0] <= x1 and y0 <= p[1] <= y1 for p in points):
            break
        heading = _u(rng, -math.pi, math.pi)
    else:  # pragma: no cover - 100 misses in a row do not happen with these ranges
        raise RuntimeError("no random tour fitted the area")
    points3 = [[round(float(p[0]), 3), round(float(p[1]), 3), 0.0] for p in points]
    # Slow references too: the expert is not asked at rest (aegis.training.expert), so what a policy does
    # there is what it learned from references barely moving, not an extrapolation from 0.3 m/s.
    speed = _u(rng, 0.3, 0.8) if rng.random() < 0.6 else _u(rng, 0.03, 0.3)
    reference: dict[str, Any] = (
        {"type": "waypoints", "points": points3, "speed_mps": round(speed, 3)}
        if tour
        else {"type": "line", "from": points3[0], "to": points3[1], "speed_mps": round(speed, 3)}
    )
    start = points[0] + rng.uniform(-0.4, 0.4, size=2)
    first_heading = math.atan2(points[1][1] - points[0][1], points[1][0] - points[0][0])
    return {
        "description": f"randomized training {'tour' if tour else 'line'}",
        "duration_s": round(_length(points3) / speed + 4.0, 3),
        "robot_kind": "diff_drive",
        "start": {"position": [round(float(start[0]), 3), round(float(start[1]), 3), 0.0],
                  "yaw_rad": round(first_heading + _u(rng, -0.7, 0.7), 3)},
        "reference": reference,
        "geofence": DIFF_DRIVE_GEOFENCE,
        "randomization": DIFF_DRIVE_RANDOMIZATION,
    }


def _two_points(rng: np.random.Generator, low: tuple, high: tuple, min_distance: float) -> tuple[list[float], list[float]]:
    while True:
        a, b = _point(rng, low, high), _point(rng, low, high)
        if np.linalg.norm(np.subtract(a, b)) >= min_distance:
            return a, b


def _chain(rng: np.random.Generator, low: tuple, high: tuple, count: int, min_step: float) -> list[list[float]]:
    points = [_point(rng, low, high)]
    while len(points) < count:
        candidate = _point(rng, low, high)
        if np.linalg.norm(np.subtract(candidate, points[-1])) >= min_step:
            points.append(candidate)
    return points


def _length(points: list) -> float:
    return float(sum(np.linalg.norm(np.subtract(b, a)) for a, b in zip(points, points[1:])))


def _reference_start(reference: dict[str, Any]) -> np.ndarray:
    """The reference's position at t = 0."""
    parsed = Scenario.model_validate(
        {"name": "probe", "duration_s": 1.0, "start": {"position": [0.0, 0.0, 1.0]}, "reference": reference}
    ).reference
    return np.asarray(reference_at(parsed, 0.0)[0], dtype=float)
