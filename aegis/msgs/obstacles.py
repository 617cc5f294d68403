"""Obstacle lists as visualization_msgs/MarkerArray: Obstacle (one shape) and Obstacles (the message)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from aegis.msgs.fields import as_array
from aegis.msgs.geometry import pose_to_ros, quaternion_norm_problem, vector3_to_ros, xyz_from_ros, xyzw_from_ros
from aegis.msgs.ros_types import TypeLookup, build_message, number_sequence
from aegis.msgs.stamp import header_from_ros, header_to_ros

MARKER_NAMESPACE = "obstacles"
MARKER_TYPES: dict[str, int] = {"box": 1, "sphere": 2, "cylinder": 3}
"""Obstacle shape -> visualization_msgs/Marker type (CUBE=1, SPHERE=2, CYLINDER=3)."""
_SHAPES_BY_TYPE = {marker_type: shape for shape, marker_type in MARKER_TYPES.items()}
_ADD, _DELETE, _DELETEALL = 0, 2, 3
OBSTACLE_RGBA = (1.0, 0.35, 0.0, 0.6)
"""Colour the markers are drawn in (not carried back by from_ros)."""
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
UNCERTAINTY_KEY = "uncertainty_m="
"""Prefix of a Marker's ``text`` that carries an obstacle's uncertainty (Obstacle.uncertainty_m)."""


def _uncertainty_text(uncertainty_m: float) -> str:
    return "" if uncertainty_m == 0.0 else f"{UNCERTAINTY_KEY}{uncertainty_m!r}"


def _uncertainty_of(marker_id: int, text: str) -> float:
    """The uncertainty a Marker's text carries: 0 for an empty or unrelated text; ValueError naming the marker for a bad number."""
    if not text.startswith(UNCERTAINTY_KEY):
        return 0.0
    try:
        return float(text[len(UNCERTAINTY_KEY):])
    except ValueError:
        raise ValueError(f"Obstacles: marker id {marker_id} text {text!r}: uncertainty is not a float") from None


@dataclass(slots=True, kw_only=True)
class Obstacle:
    """One obstacle: a sphere, an upright cylinder or a box, posed in the Obstacles' frame.

    ``size`` has visualization_msgs/Marker.scale semantics (m): a sphere is (diameter,
    diameter, diameter), a cylinder (diameter, diameter, height) along its local z, a box its
    (x, y, z) extents. ``orientation`` is a quaternion (x, y, z, w), ROS order. ``id`` is the
    Marker id, unique within one Obstacles message. ``uncertainty_m`` is how far (1 sigma, m) the
    obstacle may be from where it is said to be, in any direction (perception's estimate: fit
    residual, range noise, the robot's pose uncertainty at the measurement); 0 for a known obstacle
    (the simulator's ground truth). A safety filter inflates the obstacle by a multiple of it.
    On the wire it rides in the Marker's ``text`` (ignored by RViz for these marker types) as
    ``uncertainty_m=<float>``; an empty text reads as 0.
    """

    id: int
    shape: str
    position: np.ndarray
    size: np.ndarray
    orientation: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.0, 1.0]))
    uncertainty_m: float = 0.0

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.uncertainty_m = float(self.uncertainty_m)
        if self.shape not in MARKER_TYPES:
            raise ValueError(f"{owner}.shape: unknown shape {self.shape!r} (known: {', '.join(MARKER_TYPES)})")
        if not isinstance(self.id, (int, np.integer)) or not _INT32_MIN <= int(self.id) <= _INT32_MAX:
            raise ValueError(f"{owner}.id: expected an int32, got {self.id!r}")
        self.id = int(self.id)
        self.position = as_array(owner, "position", self.position, (3,))
        self.size = as_array(owner, "size", self.size, (3,))
        self.orientation = as_array(owner, "orientation", self.orientation, (4,))
        if not np.all(np.isfinite(self.size)):
            return  # not a shape at all: received, and named by problem(), rather than dropped as a mismatched one
        if self.shape == "sphere" and not (self.size[0] == self.size[1] == self.size[2]):
            raise ValueError(f"{owner}.size: a sphere is (diameter, diameter, diameter), got {self.size.tolist()}")
        if self.shape == "cylinder" and self.size[0] != self.size[1]:
            raise ValueError(f"{owner}.size: a cylinder is (diameter, diameter, height), got {self.size.tolist()}")

    def grown(self, margin_m: float) -> Obstacle:
        """This obstacle grown by ``margin_m`` on every side (a cylinder keeps its height); itself for 0."""
        if margin_m == 0.0:
            return self
        size = self.size + 2.0 * margin_m
        if self.shape == "cylinder":
            size[2] = self.size[2]
        return Obstacle(id=self.id, shape=self.shape, position=self.position, size=size,
                        orientation=self.orientation, uncertainty_m=self.uncertainty_m)

    def problem(self) -> str | None:
        """Why this obstacle cannot be used (None: it can): a size not finite and > 0, a position not finite, a non-unit quaternion.

        Such an obstacle is not a shape a safety filter may clip or shrink into something it can use
        (a negative diameter would make a sphere smaller, or turn it inside out): the message is
        unusable. Construction does not refuse it, so that it can be received, logged and reported.
        """
        where = f"obstacle {self.id} ({self.shape})"
        if not np.all(np.isfinite(self.position)):
            return f"{where}: position {self.position.tolist()} not finite"
        if not np.all(np.isfinite(self.size)) or not np.all(self.size > 0.0):
            return f"{where}: size {self.size.tolist()} not finite and > 0"
        if not (math.isfinite(self.uncertainty_m) and self.uncertainty_m >= 0.0):
            return f"{where}: uncertainty_m {self.uncertainty_m!r} not finite and >= 0"
        problem = quaternion_norm_problem(self.orientation)
        return None if problem is None else f"{where}: orientation {problem}"


@dataclass(slots=True, kw_only=True)
class Obstacles:
    """The obstacles known at ``stamp``, in ``frame_id``, as one visualization_msgs/MarkerArray.

    to_ros writes a DELETEALL marker first (so obstacles that disappeared vanish from RViz and
    Foxglove too, and so an empty list still carries stamp and frame), then one ADD marker per
    obstacle in namespace "obstacles". from_ros skips DELETE/DELETEALL markers and refuses
    marker types other than CUBE, SPHERE and CYLINDER.
    """

    ROS_TYPE: ClassVar[str] = "visualization_msgs/msg/MarkerArray"

    stamp: float = 0.0
    frame_id: str = "odom"
    obstacles: list[Obstacle] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.stamp = float(self.stamp)
        self.obstacles = list(self.obstacles)
        seen: set[int] = set()
        for obstacle in self.obstacles:
            if not isinstance(obstacle, Obstacle):
                raise ValueError(f"{owner}.obstacles: expected Obstacle entries, got {type(obstacle).__name__}")
            if obstacle.id in seen:
                raise ValueError(f"{owner}.obstacles: duplicate id {obstacle.id}")
            seen.add(obstacle.id)

    def problems(self) -> list[str]:
        """What makes this message unusable, one line per bad obstacle (empty: usable); see :meth:`Obstacle.problem`."""
        return [problem for problem in (o.problem() for o in self.obstacles) if problem is not None]

    def to_ros(self, types: TypeLookup) -> Any:
        """visualization_msgs/msg/MarkerArray: a DELETEALL marker, then one marker per obstacle."""
        clear = _marker(types, self.stamp, self.frame_id, marker_id=0, marker_type=0, action=_DELETEALL,
                        position=np.zeros(3), orientation=np.array([0.0, 0.0, 0.0, 1.0]), scale=np.zeros(3))
        markers = [clear] + [
            _marker(types, self.stamp, self.frame_id, marker_id=o.id, marker_type=MARKER_TYPES[o.shape],
                    action=_ADD, position=o.position, orientation=o.orientation, scale=o.size,
                    text=_uncertainty_text(o.uncertainty_m))
            for o in self.obstacles
        ]
        return types(self.ROS_TYPE)(markers=markers)

    @classmethod
    def from_ros(cls, ros_msg: Any) -> Obstacles:
        """From a MarkerArray of CUBE/SPHERE/CYLINDER markers; stamp and frame from its first marker."""
        markers = list(ros_msg.markers)
        if not markers:
            return cls()
        stamp, frame_id = header_from_ros(markers[0].header)
        obstacles = []
        for marker in markers:
            if int(marker.action) in (_DELETE, _DELETEALL):
                continue
            shape = _SHAPES_BY_TYPE.get(int(marker.type))
            if shape is None:
                raise ValueError(
                    f"{cls.__name__}: marker id {int(marker.id)} has type {int(marker.type)}; "
                    f"only CUBE=1, SPHERE=2 and CYLINDER=3 are obstacles"
                )
            obstacles.append(Obstacle(
                id=int(marker.id),
                shape=shape,
                position=xyz_from_ros(marker.pose.position),
                orientation=xyzw_from_ros(marker.pose.orientation),
                size=xyz_from_ros(marker.scale),
                uncertainty_m=_uncertainty_of(int(marker.id), str(marker.text)),
            ))
        return cls(stamp=stamp, frame_id=frame_id, obstacles=obstacles)


def _marker(
    types: TypeLookup,
    stamp: float,
    frame_id: str,
    *,
    marker_id: int,
    marker_type: int,
    action: int,
    position: np.ndarray,
    orientation: np.ndarray,
    scale: np.ndarray,
    text: str = "",
) -> Any:
    """A fully filled visualization_msgs/msg/Marker, whichever distro's field set the class has."""
    marker_cls = types("visualization_msgs/msg/Marker")
    r, g, b, a = OBSTACLE_RGBA
    values = {
        "header": header_to_ros(types, stamp, frame_id),
        "ns": MARKER_NAMESPACE,
        "id": marker_id,
        "type": marker_type,
        "action": action,
        "pose": pose_to_ros(types, position, orientation),
        "scale": vector3_to_ros(types, scale),
        "color": types("std_msgs/msg/ColorRGBA")(r=r, g=g, b=b, a=a),
        "lifetime": types("builtin_interfaces/msg/Duration")(sec=0, nanosec=0),
        "frame_locked": False,
        "points": [],
        "colors": [],
        "text": text,
        "mesh_resource": "",
        "mesh_use_embedded_materials": False,
    }
    # Fields newer distros added (textures, embedded meshes): filled only where the class has them.
    optional = {
        "texture_resource": lambda: "",
        "texture": lambda: _empty_compressed_image(types),
        "uv_coordinates": lambda: [],
        "mesh_file": lambda: _empty_mesh_file(types),
    }
    return build_message(marker_cls, values, optional)


def _empty_compressed_image(types: TypeLookup) -> Any:
    cls = types("sensor_msgs/msg/CompressedImage")
    return cls(header=header_to_ros(types, 0.0, ""), format="", data=number_sequence(cls, np.zeros(0), np.uint8))


def _empty_mesh_file(types: TypeLookup) -> Any:
    cls = types("visualization_msgs/msg/MeshFile")
    return cls(filename="", data=number_sequence(cls, np.zeros(0), np.uint8))
