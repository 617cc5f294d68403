"""Procedural layouts: a scenario's obstacles drawn per episode seed around its start-goal path, with a guaranteed passage.

A scenario with a ``layout`` section (aegis.scenario.schema: ``clutter``, ``gaps``, ``wall``,
``goal``) has no fixed obstacles: the sim bridge calls :func:`draw_layout` at every
``reset(seed)``, so every evaluation episode (seed + i) runs among its own obstacles, and
``aegis sim --seed 7`` shows one layout. The same seed gives the same layout.

Every layout is drawn around the PATH, the straight segment from the start to the goal (the
shipped layout scenarios' reference is that line, so the nominal controller runs into the layout
and ``--no-filter`` collides). Obstacles are placed in a frame along the path: ``s`` from the
start along it, ``lat`` sideways (left positive), ``z`` absolute. A quadrotor's layout is 3-D
(spheres, floor-to-ceiling pillars, walls with windows); a ground robot's stands on the ground
(cylinders and boxes 1 m tall) and is checked in the plane.

The guarantee: a corridor ``passage_m`` wide joins the start to the goal inside the geofence,
checked by aegis.scenario.passage on a grid for every drawn layout; a draw that fails the check is
drawn again (a fresh draw from the same seed's stream), and a scenario that cannot be satisfied
in :data:`MAX_DRAWS` draws raises LayoutError naming the file and ``layout``. Beyond the check,
each family is built so that a robot that only slides along obstacles (a CBF filter, not a
planner) can get through: the path never meets an obstacle dead centre nor a box face square on,
clutter obstacles are at least ``passage_m`` apart from each other and from the geofence, and the
openings of gaps and walls lie across the path, the path inside them near one edge.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from aegis.config_files import ConfigError
from aegis.scenario.geometry import clearance, geofence_margin
from aegis.scenario.passage import corridor_exists
from aegis.scenario.schema import (
    ClutterLayout,
    GapsLayout,
    NonNegativeRange,
    ObstacleSpec,
    PocketLayout,
    Scenario,
    SizeRange,
    WallLayout,
)

MAX_DRAWS = 50
"""Whole layouts drawn before giving up on a scenario (each fails only when the passage check does)."""
PLACEMENT_TRIES = 200
"""Positions tried for one clutter obstacle before the whole layout is drawn again."""
GROUND_HEIGHT_M = 1.0
"""Height of a ground robot's obstacles (they stand on z = 0)."""
LAYOUT_STREAM = 2
"""The layout's random stream: ``default_rng([seed, LAYOUT_STREAM])`` (randomisation uses ``seed``, sensors ``[seed, 1]``)."""


class LayoutError(ConfigError):
    """A layout that cannot be drawn with its guaranteed passage (the message names the file and ``layout``); the CLI
    reports it as it reports a bad config."""


class _Frame:
    """The path's frame: ``point(s, lat, z)`` in the world, box yaw along the path, and the scenario's bounds."""

    def __init__(self, scenario: Scenario) -> None:
        task = scenario.task()
        self.start = np.array(task.start.position, dtype=float)
        self.goal = np.array(task.goal.position, dtype=float)
        delta = self.goal[:2] - self.start[:2]
        self.length = float(np.linalg.norm(delta))
        self.u = delta / self.length
        self.v = np.array([-self.u[1], self.u[0]])
        self.yaw = math.atan2(self.u[1], self.u[0])
        self.geofence = scenario.geofence
        self.z_min, self.z_max = scenario.geofence.min_m[2], scenario.geofence.max_m[2]
        self.ground = scenario.robot_kind == "diff_drive"

    def path_z(self, s: float) -> float:
        return float(self.start[2] + (self.goal[2] - self.start[2]) * s / self.length)

    def xy(self, s: float, lat: float) -> tuple[float, float]:
        p = self.start[:2] + s * self.u + lat * self.v
        return float(p[0]), float(p[1])

    def lateral_span(self, s: float) -> tuple[float, float]:
        """The sideways extent (lat_min, lat_max) of the geofence across the path at ``s`` (along its centre line)."""
        base = self.start[:2] + s * self.u
        low, high = -math.inf, math.inf
        for axis in range(2):
            if abs(self.v[axis]) < 1e-12:
                continue
            a = (self.geofence.min_m[axis] - base[axis]) / self.v[axis]
            b = (self.geofence.max_m[axis] - base[axis]) / self.v[axis]
            low, high = max(low, min(a, b)), min(high, max(a, b))
        return low, high

    def box(self, s: float, lat_lo: float, lat_hi: float, z_lo: float, z_hi: float, thickness: float) -> ObstacleSpec:
        """A box across the path at ``s``: ``thickness`` along it, [lat_lo, lat_hi] sideways, [z_lo, z_hi] up."""
        x, y = self.xy(s, (lat_lo + lat_hi) / 2.0)
        return ObstacleSpec(
            shape="box", position=(x, y, (z_lo + z_hi) / 2.0), size=(thickness, lat_hi - lat_lo, z_hi - z_lo), yaw_rad=self.yaw
        )

    def pillar(self, s: float, lat: float, diameter: float) -> ObstacleSpec:
        """A cylinder standing at (s, lat): floor to ceiling for a quadrotor, GROUND_HEIGHT_M tall for a ground robot."""
        x, y = self.xy(s, lat)
        z_lo, z_hi = (0.0, GROUND_HEIGHT_M) if self.ground else (self.z_min, self.z_max)
        return ObstacleSpec(shape="cylinder", position=(x, y, (z_lo + z_hi) / 2.0), size=(diameter, diameter, z_hi - z_lo))


def draw_layout(scenario: Scenario, seed: int) -> tuple[ObstacleSpec, ...]:
    """The obstacles of ``scenario``'s layout for ``seed``, numbered 0..n-1; LayoutError if none keeps the passage."""
    layout = scenario.layout
    if layout is None:
        raise LayoutError(f"{scenario.source}: layout: the scenario has none")
    frame = _Frame(scenario)
    build: Callable[[np.random.Generator], list[ObstacleSpec] | None] = {
        "clutter": lambda rng: _clutter(layout, frame, rng),
        "gaps": lambda rng: _gaps(layout, frame, rng),
        "wall": lambda rng: _wall(layout, frame, rng),
        "pocket": lambda rng: _pocket(layout, frame, rng),
    }[layout.family]
    rng = np.random.default_rng([seed, LAYOUT_STREAM])
    for _ in range(MAX_DRAWS):
        obstacles = build(rng)
        if obstacles is not None and _inside(obstacles, frame) and corridor_exists(
            obstacles, frame.start, frame.goal, frame.geofence, layout.passage_m / 2.0, planar=frame.ground
        ):
            return tuple(o.model_copy(update={"id": i}) for i, o in enumerate(obstacles))
    raise LayoutError(
        f"{scenario.source}: layout: no {layout.family} layout with a {layout.passage_m:g} m passage in {MAX_DRAWS} draws "
        f"(layout seed {seed}): give fewer or smaller obstacles, wider openings or a larger geofence"
    )


def _inside(obstacles: list[ObstacleSpec], frame: _Frame) -> bool:
    """Every obstacle's centre inside the geofence (a wall's pieces reach its faces; nothing is drawn outside it)."""
    centres = np.array([o.position for o in obstacles], dtype=float)
    return bool(np.all(geofence_margin(frame.geofence, centres) >= 0.0))


# -- clutter ----------------------------------------------------------------------------------


def _clutter(layout: ClutterLayout, frame: _Frame, rng: np.random.Generator) -> list[ObstacleSpec] | None:
    """``count`` obstacles, ``blocking`` across the path off its centre, pairwise and to the walls >= passage_m apart."""
    placed: list[ObstacleSpec] = []
    for index in range(layout.count):
        for _ in range(PLACEMENT_TRIES):
            slot = (index, layout.blocking) if index < layout.blocking else None
            candidate = _clutter_candidate(layout, frame, rng, slot)
            if candidate is not None and _clutter_fits(candidate, placed, layout.passage_m, frame):
                placed.append(candidate)
                break
        else:
            return None
    return placed


def _clutter_candidate(
    layout: ClutterLayout, frame: _Frame, rng: np.random.Generator, slot: tuple[int, int] | None
) -> ObstacleSpec | None:
    """One obstacle: across the path in its ``slot`` (k of n equal stretches of the path, so the blocking ones spread
    along it) or, without a slot, anywhere in the band."""
    diameter = float(rng.uniform(layout.diameter_m.low, layout.diameter_m.high))
    margin = layout.passage_m + diameter / 2.0
    if frame.length <= 2.0 * margin:
        return None
    first, stretch = margin, frame.length - 2.0 * margin
    if slot is not None:
        first, stretch = first + stretch * slot[0] / slot[1], stretch / slot[1]
    s = float(first + rng.uniform(0.0, stretch))
    blocking = slot is not None
    radius = diameter / 2.0
    # Across the path: the path meets the obstacle between 20 % and 70 % of its radius off centre. Elsewhere in the
    # band, at least 20 % of its radius off the path too: never head on, where a CBF can only brake.
    if blocking:
        offset = float(rng.uniform(0.2, 0.7) * radius)
    else:
        offset = float(rng.uniform(0.2 * radius, max(layout.spread_m, 0.2 * radius)))
    angle = float(rng.uniform(0.0, 2.0 * math.pi))
    if frame.ground:
        lat = offset * (1.0 if rng.uniform() < 0.5 else -1.0)
        if rng.uniform() < 0.5:
            return frame.pillar(s, lat, diameter)
        x, y = frame.xy(s, lat)
        width = float(rng.uniform(0.5, 1.0) * diameter)
        # Turned 15 to 75 degrees (plus a quarter turn or not) from the path: no face square across it, head on.
        yaw = frame.yaw + math.radians(float(rng.uniform(15.0, 75.0))) + (math.pi / 2.0 if rng.uniform() < 0.5 else 0.0)
        return ObstacleSpec(shape="box", position=(x, y, GROUND_HEIGHT_M / 2.0), size=(diameter, width, GROUND_HEIGHT_M), yaw_rad=yaw)
    if rng.uniform() < 0.5:  # a floor-to-ceiling pillar: sideways offset only
        return frame.pillar(s, offset * (1.0 if rng.uniform() < 0.5 else -1.0), diameter)
    # A sphere, off the path in a random direction across it (sideways and up or down): 3-D.
    lat, dz = offset * math.cos(angle), offset * math.sin(angle)
    x, y = frame.xy(s, lat)
    return ObstacleSpec(shape="sphere", position=(x, y, frame.path_z(s) + dz), size=(diameter, diameter, diameter))


def _bounding(o: ObstacleSpec) -> tuple[np.ndarray, float, bool]:
    """(centre, radius, vertical): a sphere's ball, or the horizontal disc around a pillar or box (half its diagonal)."""
    c = np.array(o.position, dtype=float)
    if o.shape == "sphere":
        return c, o.size[0] / 2.0, False
    if o.shape == "cylinder":
        return c, o.size[0] / 2.0, True
    return c, math.hypot(o.size[0], o.size[1]) / 2.0, True


def _clutter_fits(candidate: ObstacleSpec, placed: list[ObstacleSpec], passage: float, frame: _Frame) -> bool:
    """At least ``passage`` (bounding shapes, so conservatively) from every placed obstacle, the start, the goal and the walls."""
    c, r, vertical = _bounding(candidate)
    for other in placed:
        oc, orad, other_vertical = _bounding(other)
        delta = c - oc
        if vertical or other_vertical:  # a pillar or a ground obstacle spans every height the other has: horizontal gap
            delta = delta[:2]
        if float(np.linalg.norm(delta)) - r - orad < passage:
            return False
    if min(clearance([candidate], frame.start), clearance([candidate], frame.goal)) < passage:
        return False
    fence = frame.geofence
    for axis in range(2 if vertical else 3):
        if c[axis] - r - fence.min_m[axis] < passage or fence.max_m[axis] - c[axis] - r < passage:
            return False
    return True


# -- gaps and walls ---------------------------------------------------------------------------


def _opening(width_range: SizeRange, edge_range: NonNegativeRange, rng: np.random.Generator) -> tuple[float, float]:
    """One opening's width and its centre's sideways offset from the path (the path ``edge`` from one edge)."""
    width = float(rng.uniform(width_range.low, width_range.high))
    edge = float(rng.uniform(edge_range.low, edge_range.high))
    side = 1.0 if rng.uniform() < 0.5 else -1.0
    return width, side * (width / 2.0 - edge)


def _gate(
    frame: _Frame, s: float, lat_lo: float, lat_hi: float, z_lo: float, z_hi: float, opening: tuple[float, ...], thickness: float
) -> list[ObstacleSpec]:
    """Boxes filling [lat_lo, lat_hi] x [z_lo, z_hi] across the path at ``s`` except the opening: (lat centre, width) on
    the ground (full height there), (lat centre, width, z centre, height) in 3-D. A piece the opening leaves no room
    for (the opening reaching the geofence) is left out."""
    if frame.ground:
        centre, width = opening
        z_lo, z_hi = 0.0, GROUND_HEIGHT_M
        bottom, top = z_lo, z_hi
    else:
        centre, width, z_centre, height = opening
        bottom, top = z_centre - height / 2.0, z_centre + height / 2.0
    left, right = centre - width / 2.0, centre + width / 2.0
    pieces = [(lat_lo, left, z_lo, z_hi), (right, lat_hi, z_lo, z_hi), (left, right, z_lo, bottom), (left, right, top, z_hi)]
    return [
        frame.box(s, a, b, c, d, thickness) for a, b, c, d in pieces if b - a > 1e-9 and d - c > 1e-9
    ]


def _window(layout: GapsLayout | WallLayout, frame: _Frame, s: float, rng: np.random.Generator) -> tuple:
    """An opening across the path at ``s``: (lat centre, width) on the ground; in 3-D a window, its side edge ``edge_m``
    from the path, and, in half the draws, its sill or lintel too (a corner), else the path within its inner half in z.

    A side edge always: a quadrotor is flat (its collision box is 2 cm tall and about 10 cm wide), so a path that
    passes a sill or lintel a few centimetres away would not make the nominal flight collide.
    """
    if frame.ground:
        width, centre = _opening(layout.width_m, layout.edge_m, rng)
        return centre, width
    width, lat_centre = _opening(layout.width_m, layout.edge_m, rng)
    height, z_offset = _opening(layout.width_m, layout.edge_m, rng)
    if rng.uniform() < 0.5:
        z_offset = float(rng.uniform(-0.25, 0.25) * height)
    return lat_centre, width, frame.path_z(s) + z_offset, height


def _gaps(layout: GapsLayout, frame: _Frame, rng: np.random.Generator) -> list[ObstacleSpec] | None:
    """``count`` gates evenly along the path (shifted by up to a sixth of their spacing), each with one opening."""
    spacing = frame.length / (layout.count + 1)
    obstacles: list[ObstacleSpec] = []
    for k in range(layout.count):
        s = spacing * (k + 1) + float(rng.uniform(-1.0, 1.0)) * spacing / 6.0
        opening = _window(layout, frame, s, rng)
        lat_centre, width = opening[0], opening[1]
        lat_lo, lat_hi = lat_centre - width / 2.0 - layout.post_m, lat_centre + width / 2.0 + layout.post_m
        if frame.ground:
            obstacles += _gate(frame, s, lat_lo, lat_hi, 0.0, GROUND_HEIGHT_M, opening, layout.thickness_m)
        else:
            z_top = min(frame.z_max, opening[2] + opening[3] / 2.0 + layout.post_m)
            obstacles += _gate(frame, s, lat_lo, lat_hi, frame.z_min, z_top, opening, layout.thickness_m)
    return obstacles


def _wall(layout: WallLayout, frame: _Frame, rng: np.random.Generator) -> list[ObstacleSpec] | None:
    """One wall across the geofence (floor to ceiling for a quadrotor) between 40 % and 60 % of the way, one opening."""
    s = frame.length * float(rng.uniform(0.4, 0.6))
    opening = _window(layout, frame, s, rng)
    lat_lo, lat_hi = frame.lateral_span(s)
    return _gate(frame, s, lat_lo, lat_hi, frame.z_min, frame.z_max, opening, layout.thickness_m)


# -- around the goal --------------------------------------------------------------------------


def _pocket(layout: PocketLayout, frame: _Frame, rng: np.random.Generator) -> list[ObstacleSpec] | None:
    """A ring of pillars beside and behind the goal (the side facing the start open) and one obstacle beside the approach."""
    clear = float(rng.uniform(layout.clearance_m.low, layout.clearance_m.high))
    obstacles = []
    count = layout.count
    for k in range(count):
        # Angles from the direction of travel: -120 deg .. +120 deg (0 is straight behind the goal), jittered.
        base = 0.0 if count == 1 else -120.0 + 240.0 * k / (count - 1)
        angle = math.radians(base + float(rng.uniform(-10.0, 10.0)))
        diameter = float(rng.uniform(layout.diameter_m.low, layout.diameter_m.high))
        # The first one sits at exactly the drawn clearance; the others up to half a passage further out.
        distance = clear + diameter / 2.0 + (0.0 if k == 0 else float(rng.uniform(0.0, 0.5 * layout.passage_m)))
        obstacles.append(frame.pillar(frame.length + distance * math.cos(angle), distance * math.sin(angle), diameter))
    diameter = float(rng.uniform(layout.diameter_m.low, layout.diameter_m.high))
    edge = float(rng.uniform(layout.edge_m.low, layout.edge_m.high))
    side = 1.0 if rng.uniform() < 0.5 else -1.0
    ring = max(math.dist(o.position[:2], frame.goal[:2]) + o.size[0] / 2.0 for o in obstacles)
    s = frame.length - ring - layout.passage_m - diameter / 2.0 - float(rng.uniform(0.0, layout.passage_m))
    if s < layout.passage_m + diameter / 2.0:
        return None
    lat = side * (edge + diameter / 2.0)
    if frame.ground:
        obstacles.append(frame.pillar(s, lat, diameter))
    else:
        x, y = frame.xy(s, lat)
        obstacles.append(ObstacleSpec(shape="sphere", position=(x, y, frame.path_z(s)), size=(diameter, diameter, diameter)))
    return obstacles
