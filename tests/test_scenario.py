"""Scenarios: shipped files load, bad ones are refused by file and key, and the scenario math is exact and deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from aegis.config_files import ConfigError, apply_override
from aegis.scenario import (
    Figure8,
    Geofence,
    Hover,
    Impulse,
    Line,
    ObstacleSpec,
    Randomization,
    Waypoints,
    Wind,
    check_robot_kind,
    clearance,
    clearances,
    geofence_margin,
    geofence_walls,
    impulse_force_at,
    load_scenario,
    obstacles_msg,
    reference_at,
    reference_table,
    resolve_scenario_path,
    sample_randomization,
    shipped_scenario,
    shipped_scenario_names,
    signed_distance,
    wind_at,
)

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted((REPO / "scenarios").glob("*.yaml"))
FIGURE8 = REPO / "scenarios" / "quadrotor_figure8.yaml"
REQUIRED_CLEARANCE_M = 0.3


def write_scenario(tmp_path: Path, mutate=None, base: Path = FIGURE8) -> Path:
    """A copy of a shipped scenario, changed by ``mutate(raw_dict)``."""
    raw = yaml.safe_load(base.read_text())
    if mutate is not None:
        mutate(raw)
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def refusal(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as err:
        load_scenario(path, overrides)
    return str(err.value)


# --- shipped files -------------------------------------------------------------------------------


def test_the_three_scenarios_are_shipped() -> None:
    assert {"quadrotor_figure8", "quadrotor_hover", "husky_goal"} <= set(shipped_scenario_names())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_scenario_loads_and_resolves_by_name(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.source == path.resolve()
    assert shipped_scenario(path.stem).read_text() == path.read_text()
    assert resolve_scenario_path(path.stem).read_text() == path.read_text()
    assert resolve_scenario_path(path) == path
    ids = [o.id for o in scenario.obstacles]
    assert len(set(ids)) == len(ids)


def test_a_shipped_reference_that_finishes_ends_at_the_goal() -> None:
    checked = 0
    for path in SHIPPED:
        scenario = load_scenario(path)
        for task in scenario.robots.values() or [scenario.task()]:  # every robot of a multi-robot scenario
            if task.goal is None or isinstance(task.reference, Figure8) or getattr(task.reference, "loop", False):
                continue  # no goal, or a reference that never finishes
            end, velocity, _ = reference_at(task.reference, scenario.duration_s)
            assert np.linalg.norm(end - task.goal.position) <= task.goal.tolerance_m, path.name
            assert np.allclose(velocity, 0.0), f"{path.name}: the reference should finish within duration_s"
            checked += 1
    assert checked >= 6


def test_shipped_figure8_keeps_its_clearance_over_a_period() -> None:
    scenario = load_scenario(FIGURE8)
    reference = scenario.reference
    assert isinstance(reference, Figure8)
    times = np.linspace(0.0, reference.period_s, 5_001)
    states = [reference_at(reference, t) for t in times]
    positions = np.array([p for p, _, _ in states])
    top_speed = max(np.linalg.norm(v) for _, v, _ in states)
    # Clearance is 1-Lipschitz in position: between samples it can dip at most half a sample's travel.
    worst_dip = top_speed * (times[1] - times[0]) / 2.0
    assert clearances(scenario.obstacles, positions).min() - worst_dip >= REQUIRED_CLEARANCE_M
    assert scenario.obstacles, "the figure-8 scene should have obstacles around its path"


def test_unknown_scenario_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="no such scenario file.*quadrotor_hover"):
        resolve_scenario_path("quadrotor_hoverr")


# --- refusals ------------------------------------------------------------------------------------


def test_misspelled_key_is_named_with_its_file(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, lambda raw: raw["start"].update(positon=[0, 0, 1]))
    message = refusal(path)
    assert str(path) in message
    assert "start.positon: unknown key" in message


def test_misspelled_key_in_the_reference_is_named_without_its_type_tag(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, lambda raw: raw["reference"].update(periode_s=3.0))
    assert f"{path}: reference.periode_s: unknown key" in refusal(path)


@pytest.mark.parametrize("key", ["start.position", "obstacles.1.position", "geofence.max_m"])
def test_a_two_vector_is_named(tmp_path: Path, key: str) -> None:
    message = refusal(write_scenario(tmp_path), (f"{key}=[1.0, 2.0]",))
    assert f"{key}: expected 3 numbers [x, y, z] (got [1.0, 2.0])" in message


def test_a_range_with_low_above_high_is_named(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, lambda raw: raw["randomization"].update(mass_scale={"low": 1.2, "high": 0.8}))
    assert f"{path}: randomization.mass_scale: low 1.2 is above high 0.8" in refusal(path)


def test_a_start_inside_an_obstacle_is_refused_naming_it(tmp_path: Path) -> None:
    scenario = load_scenario(FIGURE8)
    index, obstacle = next((i, o) for i, o in enumerate(scenario.obstacles) if o.shape == "sphere")
    message = refusal(FIGURE8, (f"start.position={list(obstacle.position)}",))
    assert f"start.position: inside obstacles.{index} (sphere)" in message


def test_a_goal_inside_an_obstacle_or_outside_the_geofence_is_refused(tmp_path: Path) -> None:
    scenario = load_scenario(FIGURE8)
    box = next(i for i, o in enumerate(scenario.obstacles) if o.shape == "box")
    inside = list(scenario.obstacles[box].position)
    assert f"goal.position: inside obstacles.{box} (box)" in refusal(FIGURE8, (f"goal={{position: {inside}}}",))
    above = [0.0, 0.0, scenario.geofence.max_m[2] + 1.0]
    assert "start.position: outside the geofence: z" in refusal(FIGURE8, (f"start.position={above}",))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    def mutate(raw):
        raw["duration_s"] = -1
        raw["obstacles"][0]["shape"] = "cone"
    message = refusal(write_scenario(tmp_path, mutate))
    assert "2 problems" in message
    assert "duration_s: Input should be greater than 0" in message
    assert "obstacles.0.shape:" in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("reference.type=circle", "reference: Input tag 'circle'"),
        ("reference={center: [0, 0, 1]}", "reference.type: missing: one of hover, waypoints, figure8, line"),
        ("geofence.min_m=[0, 0, 3]", "geofence: min_m must be below max_m on every axis, not on z"),
        ("obstacles.0.size=[0.3, 0.4, 2.0]", "obstacles.0: a cylinder's size is [diameter, diameter, height]"),
        ("obstacles.1.id=0", "obstacles.1.id: duplicate id 0 (also obstacles.0)"),
        ("start.yaw_rad=.nan", "start.yaw_rad: Input should be a finite number"),
        ("reference.x_amplitude_m=9.0", "reference: the reference passes"),
        ("disturbances={impulses: [{time_s: 99, force_n: [1, 0, 0], duration_s: 0.1}]}",
         "disturbances.impulses.0.time_s: 99 s is not before duration_s"),
        ("reference={type: line, from: [0, 0, 1], to: [0, 0, 1], speed_mps: 1}", "reference: from and to are the same point"),
        ("reference={type: waypoints, points: [[0, 0, 1], [0, 0, 1]], speed_mps: 1}", "reference: points.1 repeats points.0"),
    ],
)
def test_bad_values_are_refused_by_key(override: str, expected: str) -> None:
    message = refusal(FIGURE8, (override,))
    assert f"{FIGURE8}: {expected}" in message


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(FIGURE8.read_text() + "\nseed: 3\n")
    assert "duplicate key 'seed'" in refusal(path)


def test_a_scenario_for_another_robot_is_refused_naming_both() -> None:
    scenario = load_scenario(FIGURE8)
    check_robot_kind(scenario, scenario.robot_kind)
    other = "diff_drive" if scenario.robot_kind == "quadrotor" else "quadrotor"
    with pytest.raises(ConfigError, match=rf"robot_kind: .* is for a {scenario.robot_kind} robot, .* is a {other}"):
        check_robot_kind(scenario, other)


# --- several robots in one scene ------------------------------------------------------------------

SWARM = REPO / "scenarios" / "quadrotor_swarm_cross.yaml"


def test_a_multi_robot_scenario_gives_each_robot_its_task() -> None:
    scenario = load_scenario(SWARM)
    assert scenario.robot_names == ("cf1", "cf2", "cf3", "cf4") and scenario.start is None and scenario.reference is None
    cf2 = scenario.task("cf2")
    assert cf2.start.position == cf2.reference.from_ and cf2.goal.position == cf2.reference.to
    with pytest.raises(ValueError, match="has robots cf1, cf2, cf3, cf4: name the one to follow"):
        scenario.task()
    with pytest.raises(ValueError, match=r"has no robot 'cf5' \(it has robots cf1, cf2, cf3, cf4\)"):
        scenario.task("cf5")
    with pytest.raises(ValueError, match=r"has no robot 'cf1' \(it has one robot"):
        load_scenario(FIGURE8).task("cf1")
    assert load_scenario(FIGURE8).task().start == load_scenario(FIGURE8).start


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("start={position: [0, 0, 1]}", "start: a scenario with robots gives each robot its own start (robots.NAME.start)"),
        ("robots={}", "start: missing required key (or robots: for several robots)"),
        ("robots.cf2.start.position=[-1.5, -1.45, 1.0]", "robots.cf2.start.position: within 0.2 m of robots.cf1's start"),
        ("robots.cf3.goal.position=[9, 0, 1]", "robots.cf3.goal.position: outside the geofence: x 9 > geofence.max_m 2.5"),
        ("robots.cf4.reference.to=[1.47, -3.0, 1.0]", "robots.cf4.reference.to: the reference passes [1.47, -3.0, 1.0], outside"),
        ("robots.cf1.reference.speed=1", "robots.cf1.reference.speed: unknown key"),
        ("robots.cf1.start.positon=[0, 0, 1]", "robots.cf1.start.positon: unknown key"),
    ],
)
def test_bad_robots_are_refused_by_key(override: str, expected: str) -> None:
    assert f"{SWARM}: {expected}" in refusal(SWARM, (override,))


def test_a_robot_name_must_be_an_identifier(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, lambda raw: raw["robots"].update({"cf 5": raw["robots"].pop("cf4")}), base=SWARM)
    assert "robots.cf 5.[key]: String should match pattern" in refusal(path)


# --- overrides -----------------------------------------------------------------------------------


def test_override_indexes_a_list_entry() -> None:
    moved = [2.5, -2.0, 0.5]
    scenario = load_scenario(FIGURE8, (f"obstacles.0.position={moved}",))
    assert scenario.obstacles[0].position == tuple(moved)
    assert scenario.obstacles[1:] == load_scenario(FIGURE8).obstacles[1:]


def test_an_override_that_moves_an_obstacle_onto_the_start_is_refused() -> None:
    start = list(load_scenario(FIGURE8).start.position)
    assert "start.position: inside obstacles.3" in refusal(FIGURE8, (f"obstacles.3.position={start}",))


def test_override_list_index_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"obstacles\.9: no such entry \(the list has 2, from 0\)"):
        apply_override({"obstacles": [{}, {}]}, "obstacles.9.size=[1, 1, 1]", "f.yaml")
    with pytest.raises(ConfigError, match=r"obstacles\.first: no such entry"):
        apply_override({"obstacles": [{}]}, "obstacles.first=1", "f.yaml")
    with pytest.raises(ConfigError, match="seed is a int, not a mapping or a list"):
        apply_override({"seed": 1}, "seed.x=1", "f.yaml")
    raw = {"a": [[0, 1], {"b": 2}]}
    apply_override(raw, "a.0.1=5", "f.yaml")
    apply_override(raw, "a.1.c=[1, 2]", "f.yaml")
    assert raw == {"a": [[0, 5], {"b": 2, "c": [1, 2]}]}


# --- references ----------------------------------------------------------------------------------

REFERENCES = {
    "hover": Hover(type="hover", position=(0.3, -0.2, 1.1)),
    "figure8": Figure8(type="figure8", center=(0.5, -1.0, 1.5), x_amplitude_m=1.3, y_amplitude_m=0.4, period_s=7.0),
    "waypoints": Waypoints(type="waypoints", points=((0, 0, 1), (2, 0, 1), (2, 1, 1.5)), speed_mps=0.8, loop=True),
    "open_tour": Waypoints(type="waypoints", points=((0, 0, 0), (1, 1, 0), (3, 1, 0)), speed_mps=1.5),
    "line": Line.model_validate({"type": "line", "from": (0, 0, 1), "to": (3, 4, 1), "speed_mps": 2.0}),
}


def _corner_times(reference) -> np.ndarray:
    """Times the reference passes a vertex (where its velocity jumps), over two laps."""
    if isinstance(reference, (Hover, Figure8)):
        return np.zeros(0)
    points = np.array([reference.from_, reference.to] if isinstance(reference, Line) else reference.points, dtype=float)
    if getattr(reference, "loop", False):
        points = np.vstack([points, points[:1]])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    return np.concatenate([arc, arc[-1] + arc]) / reference.speed_mps


@pytest.mark.parametrize("name", REFERENCES)
def test_reference_table_is_reference_at_stacked_bit_for_bit(name: str) -> None:
    """An MPC samples its horizon with reference_table: the very numbers reference_at gives, at any times."""
    reference = REFERENCES[name]
    times = (0.37 + np.arange(21) / 48.0).tolist() + np.random.default_rng(3).uniform(-1.0, 40.0, 30).tolist()
    table = reference_table(reference, times)
    for column, stacked in enumerate(table):
        expected = np.array([reference_at(reference, t)[column] for t in times])
        assert stacked.shape == (len(times), 3) and stacked.dtype == np.float64
        assert np.array_equal(stacked, expected), f"{name}: column {column}"


@pytest.mark.parametrize("name", REFERENCES)
def test_reference_velocity_and_acceleration_match_finite_differences(name: str) -> None:
    reference = REFERENCES[name]
    h = 1e-5
    corners = _corner_times(reference)
    times = np.random.default_rng(7).uniform(0.0, 20.0, 200)
    times = times[[np.all(np.abs(corners - t) > 10 * h) for t in times]]
    assert len(times) > 100
    for t in times:
        (p0, v0, a0), (pm, vm, _), (pp, vp, _) = (reference_at(reference, t + d) for d in (0.0, -h, h))
        assert np.allclose((pp - pm) / (2 * h), v0, atol=1e-6), f"{name}: velocity at t={t}"
        assert np.allclose((vp - vm) / (2 * h), a0, atol=1e-4), f"{name}: acceleration at t={t}"


@pytest.mark.parametrize("name", REFERENCES)
def test_reference_position_is_continuous_through_corners(name: str) -> None:
    reference = REFERENCES[name]
    eps = 1e-7
    for t in [*_corner_times(reference), 0.0, 3.3]:
        before, after = reference_at(reference, t - eps)[0], reference_at(reference, t + eps)[0]
        speed = max(np.linalg.norm(reference_at(reference, t + d)[1]) for d in (-eps, eps))
        assert np.linalg.norm(after - before) <= speed * 2 * eps + 1e-12, f"{name}: jump at t={t}"


def test_tours_and_lines_move_at_constant_speed_then_hold() -> None:
    line = REFERENCES["line"]
    length = np.linalg.norm(np.subtract(line.to, line.from_))
    for t in np.linspace(0.0, 0.99 * length / line.speed_mps, 50):
        assert np.linalg.norm(reference_at(line, t)[1]) == pytest.approx(line.speed_mps)
    end, velocity, _ = reference_at(line, 2 * length / line.speed_mps)
    assert np.allclose(end, line.to) and np.allclose(velocity, 0.0)
    assert np.allclose(reference_at(line, -1.0)[0], line.from_)
    tour = REFERENCES["waypoints"]
    lap = _corner_times(tour)[len(tour.points)]
    for t in (0.1, 1.7, 3.0):
        assert np.allclose(reference_at(tour, t)[0], reference_at(tour, t + lap)[0])


def test_figure8_shape_matches_its_parameters() -> None:
    ref = REFERENCES["figure8"]
    times = np.linspace(0.0, ref.period_s, 4001)
    positions = np.array([reference_at(ref, t)[0] for t in times])
    centre = np.array(ref.center)
    assert np.allclose(positions[0], centre) and np.allclose(reference_at(ref, ref.period_s / 2)[0], centre)
    assert np.allclose(positions[-1], positions[0])
    span = (positions.max(axis=0) - positions.min(axis=0)) / 2
    assert span == pytest.approx([ref.x_amplitude_m, ref.y_amplitude_m, 0.0], abs=1e-5)


# --- geometry ------------------------------------------------------------------------------------


def _rotz(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_sphere_clearance_is_exact() -> None:
    centre, radius = np.array([1.0, -2.0, 0.5]), 0.4
    sphere = ObstacleSpec(shape="sphere", position=tuple(centre), size=(2 * radius,) * 3)
    direction = np.array([2.0, -1.0, 2.0]) / 3.0
    for distance in (-radius, -0.1, 0.0, 0.25, 3.0):
        assert clearance([sphere], centre + (radius + distance) * direction) == pytest.approx(distance)


def test_cylinder_clearance_is_exact() -> None:
    centre, radius, half_height = np.array([0.5, 0.5, 1.0]), 0.3, 0.8
    cylinder = ObstacleSpec(shape="cylinder", position=tuple(centre), size=(2 * radius, 2 * radius, 2 * half_height))
    radial = np.array([np.cos(0.7), np.sin(0.7), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    cases = [
        (centre + (radius + 0.2) * radial, 0.2),  # beside the wall
        (centre + 0.1 * radial + (half_height + 0.5) * up, 0.5),  # above the cap
        (centre + (radius + 0.3) * radial - (half_height + 0.4) * up, 0.5),  # beyond the rim: hypot(0.3, 0.4)
        (centre + (radius - 0.05) * radial, -0.05),  # inside, nearest the wall
        (centre + (half_height - 0.02) * up, -0.02),  # inside, nearest the cap
        (centre + radius * radial + 0.3 * up, 0.0),  # on the wall
    ]
    for point, expected in cases:
        assert clearance([cylinder], point) == pytest.approx(expected, abs=1e-12)


def test_yawed_box_clearance_is_exact() -> None:
    centre, half, yaw = np.array([-1.0, 2.0, 0.5]), np.array([0.6, 0.2, 0.5]), 0.9
    box = ObstacleSpec(shape="box", position=tuple(centre), size=tuple(2 * half), yaw_rad=yaw)
    to_world = _rotz(yaw)
    cases = [
        ([half[0] + 0.3, 0.1, 0.0], 0.3),  # off the +x face
        ([0.2, -(half[1] + 0.7), 0.1], 0.7),  # off the -y face
        ([half[0] + 0.3, half[1] + 0.4, 0.0], 0.5),  # beyond an edge: hypot(0.3, 0.4)
        ([half[0] + 0.2, half[1] + 0.3, half[2] + 0.6], np.sqrt(0.2**2 + 0.3**2 + 0.6**2)),  # beyond a corner
        ([0.0, half[1] - 0.05, 0.0], -0.05),  # inside, nearest the +y face
        ([0.0, 0.0, 0.0], -half.min()),  # the centre
    ]
    for local, expected in cases:
        assert clearance([box], centre + to_world @ np.array(local)) == pytest.approx(expected, abs=1e-12)


def test_signed_distance_is_one_lipschitz_and_clearance_is_the_nearest() -> None:
    obstacles = load_scenario(FIGURE8).obstacles
    rng = np.random.default_rng(1)
    a = rng.uniform(-3.0, 3.0, (2000, 3))
    b = a + rng.normal(0.0, 0.3, a.shape)
    for obstacle in obstacles:
        gap = np.abs(signed_distance(obstacle, a) - signed_distance(obstacle, b))
        assert np.all(gap <= np.linalg.norm(a - b, axis=1) + 1e-12)
    nearest = np.min([signed_distance(o, a) for o in obstacles], axis=0)
    assert np.array_equal(clearances(obstacles, a), nearest)
    assert clearance(obstacles, a[0]) == nearest[0]
    assert clearance([], a[0]) == np.inf


def test_obstacles_become_the_obstacles_message() -> None:
    specs = [
        ObstacleSpec(shape="box", position=(1.0, 2.0, 0.5), size=(1.0, 0.5, 1.0), yaw_rad=0.4),
        ObstacleSpec(shape="sphere", position=(0.0, 0.0, 1.0), size=(0.2, 0.2, 0.2), id=17),
    ]
    msg = obstacles_msg(specs, stamp=2.5, frame_id="odom")
    assert msg.stamp == 2.5 and msg.frame_id == "odom"
    assert [o.id for o in msg.obstacles] == [0, 17]
    for spec, obstacle in zip(specs, msg.obstacles):
        assert obstacle.shape == spec.shape
        assert np.array_equal(obstacle.position, spec.position) and np.array_equal(obstacle.size, spec.size)
        x, y, z, w = obstacle.orientation
        assert (x, y) == (0.0, 0.0)
        assert np.arctan2(2 * w * z, w * w - z * z) == pytest.approx(spec.yaw_rad)


def test_geofence_walls_are_inward_half_spaces() -> None:
    fence = Geofence(min_m=(-1.0, -2.0, 0.0), max_m=(3.0, 2.0, 2.5))
    walls = geofence_walls(fence)
    assert sorted(w.name for w in walls) == sorted(f"{a}_{e}" for a in "xyz" for e in ("min", "max"))
    inside = np.array([0.0, 0.5, 1.0])
    for wall in walls:
        assert np.linalg.norm(wall.normal) == pytest.approx(1.0)
        assert wall.distance(inside) > 0
    expected = min(*(inside - fence.min_m), *(np.array(fence.max_m) - inside))
    assert geofence_margin(fence, inside) == pytest.approx(expected)
    assert geofence_margin(fence, [4.0, 0.0, 1.0]) == pytest.approx(-1.0)
    assert geofence_margin(fence, fence.min_m) == 0.0


# --- disturbances and randomisation --------------------------------------------------------------


def test_wind_is_deterministic_per_seed_with_the_stated_spread() -> None:
    wind = Wind(velocity_mps=(1.0, 0.0, 0.0), gust_std_mps=0.5, gust_bandwidth_hz=2.0)
    times = np.arange(0.0, 2000.0, 0.1)
    samples = np.array([wind_at(wind, t, seed=3) for t in times])
    assert np.array_equal(samples[123], wind_at(wind, times[123], seed=3))
    assert not np.allclose(samples[:50], [wind_at(wind, t, seed=4) for t in times[:50]])
    assert samples.mean(axis=0) == pytest.approx(wind.velocity_mps, abs=0.05)
    assert samples.std(axis=0) == pytest.approx([wind.gust_std_mps] * 3, rel=0.1)
    calm = Wind(velocity_mps=(0.0, 2.0, 0.0))
    assert np.array_equal(wind_at(calm, 12.3, seed=0), calm.velocity_mps)


def test_impulses_act_during_their_window_and_add_up() -> None:
    kick = Impulse(time_s=1.0, force_n=(2.0, 0.0, 0.0), duration_s=0.5)
    push = Impulse(time_s=1.2, force_n=(0.0, -1.0, 0.0), duration_s=1.0)
    assert np.array_equal(impulse_force_at([kick, push], 0.99), np.zeros(3))
    assert np.array_equal(impulse_force_at([kick, push], 1.0), kick.force_n)
    assert np.array_equal(impulse_force_at([kick, push], 1.3), np.add(kick.force_n, push.force_n))
    assert np.array_equal(impulse_force_at([kick, push], 1.5), push.force_n)
    assert np.array_equal(impulse_force_at([kick, push], 2.2), np.zeros(3))


def test_randomization_is_deterministic_per_seed_and_inside_its_ranges() -> None:
    randomization = load_scenario(FIGURE8).randomization
    first = sample_randomization(randomization, np.random.default_rng(42))
    assert first == sample_randomization(randomization, np.random.default_rng(42))
    assert first != sample_randomization(randomization, np.random.default_rng(43))
    assert set(first) == set(Randomization.model_fields)
    rng = np.random.default_rng(0)
    for _ in range(500):
        for name, value in sample_randomization(randomization, rng).items():
            bounds = getattr(randomization, name)
            assert bounds.low <= value <= bounds.high, name


def test_nominal_randomization_and_stable_streams() -> None:
    nominal = sample_randomization(Randomization(), np.random.default_rng(5))
    assert nominal == {name: getattr(Randomization(), name).low for name in Randomization.model_fields}
    wide = Randomization.model_validate({"mass_scale": {"low": 0.5, "high": 1.5}, "latency_s": {"low": 0.0, "high": 0.1}})
    narrow = wide.model_copy(update={"mass_scale": Randomization().mass_scale})
    a = sample_randomization(wide, np.random.default_rng(9))
    b = sample_randomization(narrow, np.random.default_rng(9))
    assert a["latency_s"] == b["latency_s"] and a["mass_scale"] != b["mass_scale"]
