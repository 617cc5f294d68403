"""A multi-layer lidar's organized point cloud: PointCloud (sensor_msgs/PointCloud2 with float32 x, y, z)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from aegis.msgs.fields import as_array
from aegis.msgs.ros_types import TypeLookup, number_sequence
from aegis.msgs.stamp import header_from_ros, header_to_ros

_FLOAT32 = 7
"""sensor_msgs/PointField.FLOAT32."""
_XYZ = ("x", "y", "z")


@dataclass(slots=True, kw_only=True)
class PointCloud:
    """An organized cloud of points (m, in ``frame_id``), as sensor_msgs/PointCloud2 carries a multi-layer lidar's scan.

    ``points`` is (H, W, 3) float32: row ``k`` is the lidar's ring (scan plane) ``k``, column ``i`` its
    beam ``i``, as velodyne_pointcloud and the Ouster driver organise theirs; a beam with no return is
    NaN (``is_dense`` false on the wire). Written little-endian with fields x, y, z (FLOAT32, offsets
    0, 4, 8, point_step 12); from_ros reads any cloud whose x, y and z are FLOAT32 fields, at any
    offsets and point_step, either byte order, and refuses others naming what is missing.
    """

    ROS_TYPE: ClassVar[str] = "sensor_msgs/msg/PointCloud2"

    stamp: float = 0.0
    frame_id: str = "laser"
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3), dtype=np.float32))

    def __post_init__(self) -> None:
        self.stamp = float(self.stamp)
        self.points = as_array(type(self).__name__, "points", self.points, (None, None, 3), np.float32)

    def to_ros(self, types: TypeLookup) -> Any:
        """sensor_msgs/msg/PointCloud2."""
        cls = types(self.ROS_TYPE)
        field_cls = types("sensor_msgs/msg/PointField")
        height, width = self.points.shape[:2]
        little = np.ascontiguousarray(self.points, dtype="<f4")
        return cls(
            header=header_to_ros(types, self.stamp, self.frame_id),
            height=height,
            width=width,
            fields=[field_cls(name=name, offset=4 * k, datatype=_FLOAT32, count=1) for k, name in enumerate(_XYZ)],
            is_bigendian=False,
            point_step=12,
            row_step=12 * width,
            data=number_sequence(cls, little.reshape(-1).view(np.uint8), np.uint8),
            is_dense=bool(np.isfinite(self.points).all()),
        )

    @classmethod
    def from_ros(cls, ros_msg: Any) -> PointCloud:
        """From a sensor_msgs/PointCloud2 with FLOAT32 x, y, z fields; ValueError naming what does not fit."""
        owner = cls.__name__
        offsets = {}
        for f in ros_msg.fields:
            if f.name in _XYZ:
                if int(f.datatype) != _FLOAT32 or int(f.count) != 1:
                    raise ValueError(f"{owner}: field {f.name!r} must be one FLOAT32 (datatype 7), got datatype {f.datatype} count {f.count}")
                offsets[f.name] = int(f.offset)
        missing = [name for name in _XYZ if name not in offsets]
        if missing:
            raise ValueError(f"{owner}: the cloud has no FLOAT32 field {', '.join(missing)}")
        height, width, step, row_step = int(ros_msg.height), int(ros_msg.width), int(ros_msg.point_step), int(ros_msg.row_step)
        data = ros_msg.data
        raw = data.reshape(-1) if isinstance(data, np.ndarray) else np.frombuffer(bytes(data), dtype=np.uint8)
        if step < 4 or max(offsets.values()) + 4 > step or row_step < width * step or raw.size != height * row_step:
            raise ValueError(
                f"{owner}: {height}x{width} cloud with point_step {step} and row_step {row_step} does not fit its "
                f"{raw.size} bytes or its x, y, z offsets {offsets}"
            )
        rows = np.ascontiguousarray(raw.reshape(height, row_step)[:, : width * step]).reshape(height, width, step)
        wire = np.dtype(">f4" if ros_msg.is_bigendian else "<f4")
        points = np.stack(
            [np.ascontiguousarray(rows[:, :, offsets[n] : offsets[n] + 4]).view(wire)[..., 0] for n in _XYZ], axis=-1
        ).astype(np.float32)
        stamp, frame_id = header_from_ros(ros_msg.header)
        return cls(stamp=stamp, frame_id=frame_id, points=points)
