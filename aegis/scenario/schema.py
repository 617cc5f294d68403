"""Scenario schema: the typed, frozen models a scenario YAML file is validated into.

SI units, ENU world frame (the ``odom`` frame of the simulator), yaw about +z. Every model
refuses unknown keys; vectors must have exactly three finite numbers. Cross-field checks that
need geometry (start inside an obstacle, goal outside the geofence) live in aegis.scenario.loader.
The file is long because it is the whole scenario format in one place (start to layouts, disturbances
and their adversarial bounds, randomisation), read top to bottom as the file's keys nest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from aegis.config_files import DurationS, Finite
from aegis.config_files import NonNegativeFinite as NonNegative
from aegis.config_files import PositiveFinite as Positive

MAX_OBSTACLES = 1000
"""The most obstacles (and waypoints) a scenario may list."""
MAX_ROBOTS = 64
"""The most robots one scenario may have."""


def _three_numbers(value: Any) -> Any:
    """Refuse a sequence that is not three long with one clear message (pydantic names index 2 otherwise)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and len(value) != 3:
        raise PydanticCustomError("vector3", "expected 3 numbers [x, y, z]")
    return value


Vec3 = Annotated[tuple[Finite, Finite, Finite], BeforeValidator(_three_numbers)]
PositiveVec3 = Annotated[tuple[Positive, Positive, Positive], BeforeValidator(_three_numbers)]
ZERO3: tuple[float, float, float] = (0.0, 0.0, 0.0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Start(_Strict):
    position: Vec3 = Field(description="initial position (m)")
    yaw_rad: Finite = Field(0.0, description="initial heading about +z (rad)")
    velocity: Vec3 = Field(ZERO3, description="initial velocity (m/s)")


class Goal(_Strict):
    position: Vec3 = Field(description="goal position (m)")
    tolerance_m: Positive = Field(0.1, description="reached when within this distance")


class Hover(_Strict):
    """Hold one position."""

    type: Literal["hover"]
    position: Vec3 = Field(description="the position to hold (m)")


class Waypoints(_Strict):
    """A tour through ``points`` at constant speed, straight between points; ``loop`` returns to the first and repeats."""

    type: Literal["waypoints"]
    points: tuple[Vec3, ...] = Field(min_length=2, max_length=MAX_OBSTACLES, description="the points to pass, in order (m)")
    speed_mps: Positive = Field(description="speed along the tour (m/s)")
    loop: bool = Field(False, description="return to the first point and repeat")

    @model_validator(mode="after")
    def _no_zero_length_leg(self) -> Waypoints:
        for i in range(1, len(self.points)):
            if self.points[i] == self.points[i - 1]:
                raise PydanticCustomError("waypoints", "points.{i} repeats points.{j}", {"i": i, "j": i - 1})
        if self.loop and self.points[-1] == self.points[0]:
            raise PydanticCustomError("waypoints", "loop: true returns to points.0 by itself; drop the last point")
        return self


class Figure8(_Strict):
    """A horizontal figure-8 (Lissajous 1:2) at the centre's height, ``w = 2 pi / period_s``:

    x = cx + x_amplitude_m sin(w t),  y = cy + y_amplitude_m sin(2 w t),  z = cz.
    It starts at the centre (t = 0) heading +x, +y, and crosses the centre again at t = period_s / 2.
    """

    type: Literal["figure8"]
    center: Vec3 = Field(description="the figure's centre, where it starts (m)")
    x_amplitude_m: Positive = Field(description="half the figure's length along x")
    y_amplitude_m: Positive = Field(description="half the figure's width along y")
    period_s: Positive = Field(description="time for one full figure-8")


class Line(_Strict):
    """From ``from`` to ``to`` at constant speed, then hold at ``to``."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["line"]
    from_: Vec3 = Field(alias="from", description="where the line starts (m)")
    to: Vec3 = Field(description="where it ends, and the reference holds (m)")
    speed_mps: Positive = Field(description="speed along the line (m/s)")

    @model_validator(mode="after")
    def _has_length(self) -> Line:
        if self.from_ == self.to:
            raise PydanticCustomError("line", "from and to are the same point")
        return self


Reference = Annotated[Hover | Waypoints | Figure8 | Line, Field(discriminator="type")]
REFERENCE_TYPES = ("hover", "waypoints", "figure8", "line")

ObstacleShape = Literal["sphere", "cylinder", "box"]


class ObstacleSpec(_Strict):
    """One obstacle. ``size`` as aegis.msgs.Obstacle (Marker.scale): sphere (d, d, d), cylinder (d, d, height), box extents.

    Cylinders stand upright (axis +z); ``yaw_rad`` turns a box about +z. ``id`` defaults to the
    obstacle's index in the list.
    """

    shape: ObstacleShape = Field(description="sphere, upright cylinder or box")
    position: Vec3 = Field(description="centre (m)")
    size: PositiveVec3 = Field(description="sphere [d, d, d], cylinder [d, d, height], box extents (m)")
    yaw_rad: Finite = Field(0.0, description="a box's turn about +z (rad)")
    id: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = Field(None, description="marker id; default: the index in the list")

    @model_validator(mode="after")
    def _size_fits_shape(self) -> ObstacleSpec:
        sx, sy, sz = self.size
        if self.shape == "sphere" and not sx == sy == sz:
            raise PydanticCustomError("obstacle", "a sphere's size is [diameter, diameter, diameter]")
        if self.shape == "cylinder" and sx != sy:
            raise PydanticCustomError("obstacle", "a cylinder's size is [diameter, diameter, height]")
        return self


class Geofence(_Strict):
    """An axis-aligned box the robot must stay in (its faces are the walls)."""

    min_m: Vec3 = Field(description="lowest corner (m)")
    max_m: Vec3 = Field(description="highest corner (m)")

    @model_validator(mode="after")
    def _ordered(self) -> Geofence:
        bad = [axis for axis, lo, hi in zip("xyz", self.min_m, self.max_m) if lo >= hi]
        if bad:
            raise PydanticCustomError(
                "geofence", "min_m must be below max_m on every axis, not on {axes}", {"axes": ", ".join(bad)}
            )
        return self


MAX_WIND_KNOTS = 64
"""The most knots a wind profile (and an adversarial search's wind) has."""


class Wind(_Strict):
    """Mean wind plus isotropic gusts, a seed-driven random field (aegis.scenario.disturbances.wind_at)."""

    velocity_mps: Vec3 = Field(ZERO3, description="mean wind velocity (m/s, ENU)")
    gust_std_mps: NonNegative = Field(0.0, description="gust standard deviation per axis (m/s)")
    gust_bandwidth_hz: Positive = Field(1.0, description="highest gust frequency (Hz)")
    profile_mps: tuple[Vec3, ...] = Field(
        (), max_length=MAX_WIND_KNOTS,
        description="wind added to the mean: velocity knots (m/s, ENU) every profile_period_s from t = 0, linear between, the last held "
        "(what aegis eval --disturbance adversarial writes)",
    )
    profile_period_s: Positive = Field(1.0, description="time between two knots of profile_mps (s)")


class Impulse(_Strict):
    """A constant world-frame force on the robot's base during [time_s, time_s + duration_s)."""

    time_s: NonNegative = Field(description="when the push starts (s)")
    force_n: Vec3 = Field(description="the force, world frame (N)")
    duration_s: Positive = Field(description="how long it lasts (s)")


class DisturbanceBounds(_Strict):
    """How hard `aegis eval --disturbance adversarial` may push: the box its wind knots and impulses are searched in.

    The search adds to the scenario's own disturbances a wind profile of ``wind_knots`` knots spread
    over the run (each axis within +-``wind_mps``) and ``impulses`` pushes of ``impulse_duration_s``
    (each axis within +-``impulse_force_n``, starting anywhere in the run). A ground robot's simulator
    ignores wind (aegis.sim.diff_drive_world): give it impulses.
    """

    wind_mps: NonNegative = Field(0.0, description="largest wind the adversary adds, per axis (m/s); 0: no wind searched")
    wind_knots: Annotated[int, Field(ge=1, le=MAX_WIND_KNOTS)] = Field(5, description="knots of the searched wind profile, over the run")
    impulse_force_n: NonNegative = Field(0.0, description="largest impulse force, per axis (N); 0: no impulses searched")
    impulses: Annotated[int, Field(ge=0, le=8)] = Field(2, description="how many impulses the adversary places")
    impulse_duration_s: Positive = Field(0.2, description="how long each searched impulse lasts (s)")


class Disturbances(_Strict):
    """What pushes the robot: wind and impulses, and the bounds an adversarial search stays in."""

    wind: Wind = Field(Wind(), description="mean wind and gusts")
    impulses: tuple[Impulse, ...] = Field((), description="timed pushes on the robot's base")
    bounds: DisturbanceBounds = Field(
        DisturbanceBounds(), description="the box aegis eval --disturbance adversarial searches (read by that search only)"
    )


class _Range(_Strict):
    low: Finite = Field(description="lowest value drawn")
    high: Finite = Field(description="highest value drawn (low = high: always that value)")

    @model_validator(mode="after")
    def _ordered(self) -> _Range:
        if self.low > self.high:
            raise PydanticCustomError("range", "low {low} is above high {high}", {"low": self.low, "high": self.high})
        return self


class ScaleRange(_Range):
    """A multiplier on a nominal value, drawn uniformly from [low, high]."""

    low: Positive = Field(description="lowest multiplier drawn")
    high: Positive = Field(description="highest multiplier drawn")


class NonNegativeRange(_Range):
    """A value drawn uniformly from [low, high], both >= 0."""

    low: NonNegative = Field(description="lowest value drawn")
    high: NonNegative = Field(description="highest value drawn")


MAX_LATENCY_S = 1.0
"""The longest latency (s) a scenario or dynamics set may add: longer is no longer a control loop."""


class LatencyRange(NonNegativeRange):
    """A latency drawn uniformly from [low, high] (s), both in [0, MAX_LATENCY_S]."""

    low: Annotated[float, Field(ge=0, le=MAX_LATENCY_S)] = Field(description="lowest latency drawn (s)")
    high: Annotated[float, Field(ge=0, le=MAX_LATENCY_S)] = Field(description="highest latency drawn (s)")


_ONE = ScaleRange(low=1.0, high=1.0)
_NONE = NonNegativeRange(low=0.0, high=0.0)
_NO_LATENCY = LatencyRange(low=0.0, high=0.0)
_UNIT = NonNegativeRange(low=1.0, high=1.0)


class Randomization(_Strict):
    """Domain-randomisation ranges; an omitted one keeps the nominal value (scale 1, no added latency)."""

    mass_scale: ScaleRange = Field(_ONE, description="multiplier on the robot's mass")
    inertia_scale: ScaleRange = Field(_ONE, description="multiplier on its inertia")
    motor_constant_scale: ScaleRange = Field(_ONE, description="multiplier on the motor constants (a quadrotor's kf and km)")
    friction_scale: ScaleRange = Field(_ONE, description="multiplier on ground friction (a ground robot's wheels)")
    latency_s: LatencyRange = Field(_NO_LATENCY, description="added sensing-to-actuation latency (s, at most 1)")
    sensor_noise_scale: NonNegativeRange = Field(_UNIT, description="multiplier on the hw_config's sensor noise")
    obstacle_jitter_m: NonNegativeRange = Field(
        _NONE, description="largest shift of each obstacle along x and y in an episode (m); the shifts are drawn per obstacle"
    )


class SizeRange(_Range):
    """A length drawn uniformly from [low, high] (m), both > 0."""

    low: Positive = Field(description="shortest length drawn (m)")
    high: Positive = Field(description="longest length drawn (m)")


Count = Annotated[int, Field(ge=1, le=40)]


class _Layout(_Strict):
    """What every procedural layout shares: the passage it guarantees.

    A layout is drawn around the straight segment from the start to the goal (the path), per
    episode seed, by aegis.scenario.layouts. ``passage_m`` is the narrowest opening the generator
    leaves: a corridor of that width (a tube of that diameter for a quadrotor) joins the start to
    the goal, checked on a grid (aegis.scenario.passage); set it to the robot's width plus a margin.
    """

    passage_m: Positive = Field(description="guaranteed free corridor width from start to goal (m): the robot's width plus a margin")


class ClutterLayout(_Layout):
    """``count`` obstacles in a band around the path, ``blocking`` of them across it (off its centre line).

    Quadrotor: spheres and floor-to-ceiling pillars; ground robot: cylinders and yawed boxes. Any two
    obstacles, and an obstacle and a geofence wall, are at least ``passage_m`` apart (no trap narrower
    than the robot), and none comes within ``passage_m`` of the start or the goal.
    """

    family: Literal["clutter"]
    count: Count = Field(description="how many obstacles")
    blocking: Annotated[int, Field(ge=0, le=40)] = Field(2, description="how many of them the straight path runs through")
    diameter_m: SizeRange = Field(description="obstacle diameter (a box's longer side) (m)")
    spread_m: Positive = Field(description="largest sideways distance of an obstacle's centre from the path (m)")


class GapsLayout(_Layout):
    """``count`` gates across the path, each with one opening of ``width_m`` that the path passes through near an edge.

    Ground robot: two posts (boxes) side by side with the gap between them. Quadrotor: a wall panel
    with a rectangular window (width and height drawn from ``width_m``), the path inside it at
    ``edge_m`` from a side edge and, in half the draws, from the sill or lintel too (a corner);
    otherwise the window sits off the path in z by up to a quarter of its height (3-D).
    """

    family: Literal["gaps"]
    count: Annotated[int, Field(ge=1, le=8)] = Field(description="how many gates along the path")
    width_m: SizeRange = Field(description="opening width (m), at least passage_m")
    edge_m: NonNegativeRange = Field(
        description="distance from the path to the opening's nearest edge (m): below the robot's radius, the nominal path hits it"
    )
    post_m: Positive = Field(description="how far each post (panel side) reaches sideways beyond the opening (m)")
    thickness_m: Positive = Field(0.2, description="gate thickness along the path (m)")


class WallLayout(_Layout):
    """One wall across the whole geofence (floor to ceiling for a quadrotor) with one opening the path passes near an edge of."""

    family: Literal["wall"]
    width_m: SizeRange = Field(
        description="opening width (and, for a quadrotor, height; width and height drawn apart) (m), at least passage_m"
    )
    edge_m: NonNegativeRange = Field(description="distance from the path to the opening's nearest edge (m)")
    thickness_m: Positive = Field(0.2, description="wall thickness along the path (m)")


class PocketLayout(_Layout):
    """Obstacles around the goal: a ring of ``count`` beside and behind it and one in the approach, the goal left free.

    The goal's clearance (distance to the nearest obstacle surface) is drawn from ``clearance_m``;
    the approach obstacle stands beside the path before the goal with its edge ``edge_m`` from the
    path, so the nominal path grazes it.
    """

    family: Literal["pocket"]
    count: Annotated[int, Field(ge=1, le=12)] = Field(description="obstacles in the ring around the goal")
    diameter_m: SizeRange = Field(description="obstacle diameter (m)")
    clearance_m: SizeRange = Field(description="distance from the goal to the nearest obstacle surface (m), at least passage_m / 2")
    edge_m: NonNegativeRange = Field(description="distance from the path to the approach obstacle's edge (m)")


Layout = Annotated[ClutterLayout | GapsLayout | WallLayout | PocketLayout, Field(discriminator="family")]
LAYOUT_FAMILIES = ("clutter", "gaps", "wall", "pocket")


class RobotTask(_Strict):
    """One robot of a multi-robot scenario: where it starts, the reference it follows, where it should end."""

    start: Start = Field(description="where this robot starts")
    goal: Goal | None = Field(None, description="where it should end (none: no goal to reach)")
    reference: Reference = Field(description="the reference it follows")


RobotName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]


class Scenario(_Strict):
    """One scenario. ``source`` is the file it came from (set by the loader, not by YAML).

    One robot: ``start``, ``reference`` and optionally ``goal`` at the top level. Several robots in
    one scene: ``robots`` maps each robot's name to its own start, reference and goal (a
    :class:`RobotTask`), and the top level has none of them; :meth:`task` gives either form.
    """

    name: Annotated[str, Field(min_length=1)] = Field(description="the scenario's name, in summaries and plots")
    description: str = Field("", description="what it is for, in words")
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = Field(
        0, description="seeds the wind's gusts, and the layout when a run gives no seed"
    )
    duration_s: DurationS = Field(description="how long a run lasts (s), at most an hour")
    robot_kind: Literal["quadrotor", "diff_drive", "any"] = Field("any", description="the robot kind it is written for")
    start: Start | None = Field(None, description="where the robot starts (one robot)")
    goal: Goal | None = Field(None, description="where it should end (one robot; none: no goal to reach)")
    reference: Reference | None = Field(None, description="the reference it follows (one robot)")
    robots: dict[RobotName, RobotTask] = Field(
        default_factory=dict, max_length=MAX_ROBOTS, description="a multi-robot scenario's robots, by name (at most 64)"
    )
    obstacles: tuple[ObstacleSpec, ...] = Field((), max_length=MAX_OBSTACLES, description="fixed obstacles (at most 1000)")
    layout: Layout | None = Field(None, description="obstacles drawn per episode seed around the start-goal path (instead of obstacles)")
    geofence: Geofence | None = Field(None, description="the box the robot must stay in")
    disturbances: Disturbances = Field(Disturbances(), description="wind and impulses")
    randomization: Randomization = Field(Randomization(), description="domain randomisation, drawn per episode seed by aegis eval")
    source: Path | None = Field(None, exclude=True)

    @field_validator("obstacles")
    @classmethod
    def _number_obstacles(cls, obstacles: tuple[ObstacleSpec, ...]) -> tuple[ObstacleSpec, ...]:
        return tuple(o if o.id is not None else o.model_copy(update={"id": i}) for i, o in enumerate(obstacles))

    @model_validator(mode="after")
    def _one_robot_or_robots(self) -> Scenario:
        """Either the top-level task (start and reference required) or ``robots``, never both (errors carry their key)."""
        if self.robots:
            for key in ("start", "goal", "reference"):
                if getattr(self, key) is not None:
                    raise PydanticCustomError(
                        "scenario_task", "a scenario with robots gives each robot its own {key} (robots.NAME.{key})", {"key": key}
                    )
            return self
        for key in ("start", "reference"):
            if getattr(self, key) is None:
                raise PydanticCustomError("scenario_task", "missing required key (or robots: for several robots)", {"key": key})
        return self

    @property
    def robot_names(self) -> tuple[str, ...]:
        """The robots of a multi-robot scenario, in file order (empty for a one-robot scenario)."""
        return tuple(self.robots)

    def task(self, robot: str | None = None) -> RobotTask:
        """The start, reference and goal of ``robot`` (None: the one robot of a one-robot scenario); ValueError naming the choices."""
        if robot is None:
            if self.robots:
                raise ValueError(f"scenario {self.name!r} has robots {', '.join(self.robots)}: name the one to follow")
            return RobotTask(start=self.start, goal=self.goal, reference=self.reference)
        if robot not in self.robots:
            have = f"robots {', '.join(self.robots)}" if self.robots else "one robot (no robots: section)"
            raise ValueError(f"scenario {self.name!r} has no robot {robot!r} (it has {have})")
        return self.robots[robot]
