"""Exteroceptive sensor messages: LaserScan (sensor_msgs/LaserScan) and Image (sensor_msgs/Image)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from aegis.msgs.fields import as_array, as_float32
from aegis.msgs.ros_types import TypeLookup, number_sequence
from aegis.msgs.stamp import header_from_ros, header_to_ros

_SCAN_SCALARS = ("angle_min", "angle_max", "angle_increment", "time_increment", "scan_time", "range_min", "range_max")


@dataclass(slots=True, kw_only=True)
class LaserScan:
    """One planar range scan, as sensor_msgs/LaserScan carries it.

    Angles in rad (counter-clockwise from x of ``frame_id``), times in s, ranges in m.
    ``ranges`` and ``intensities`` are float32 as on the wire; ``intensities`` is empty when
    the sensor gives none, else as long as ``ranges``. The scalar fields are float32 on the
    wire too, so they are held rounded to float32 precision and round-trip exactly.
    """

    ROS_TYPE: ClassVar[str] = "sensor_msgs/msg/LaserScan"

    stamp: float = 0.0
    frame_id: str = "laser"
    angle_min: float = 0.0
    angle_max: float = 0.0
    angle_increment: float = 0.0
    time_increment: float = 0.0
    scan_time: float = 0.0
    range_min: float = 0.0
    range_max: float = 0.0
    ranges: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    intensities: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.stamp = float(self.stamp)
        for name in _SCAN_SCALARS:
            setattr(self, name, as_float32(getattr(self, name)))
        self.ranges = as_array(owner, "ranges", self.ranges, (None,), np.float32)
        self.intensities = as_array(owner, "intensities", self.intensities, (None,), np.float32)
        if self.intensities.size not in (0, self.ranges.size):
            raise ValueError(
                f"{owner}.intensities: expected shape (0,) or ({self.ranges.size},), got {self.intensities.shape}"
            )

    def to_ros(self, types: TypeLookup) -> Any:
        """sensor_msgs/msg/LaserScan."""
        cls = types(self.ROS_TYPE)
        return cls(
            header=header_to_ros(types, self.stamp, self.frame_id),
            **{name: float(getattr(self, name)) for name in _SCAN_SCALARS},
            ranges=number_sequence(cls, self.ranges, np.float32),
            intensities=number_sequence(cls, self.intensities, np.float32),
        )

    @classmethod
    def from_ros(cls, ros_msg: Any) -> LaserScan:
        """From a sensor_msgs/LaserScan."""
        stamp, frame_id = header_from_ros(ros_msg.header)
        return cls(
            stamp=stamp,
            frame_id=frame_id,
            **{name: float(getattr(ros_msg, name)) for name in _SCAN_SCALARS},
            ranges=np.array(ros_msg.ranges, dtype=np.float32),
            intensities=np.array(ros_msg.intensities, dtype=np.float32),
        )


IMAGE_ENCODINGS: dict[str, tuple[int, np.dtype]] = {
    "rgb8": (3, np.dtype(np.uint8)),
    "mono8": (1, np.dtype(np.uint8)),
    "32FC1": (1, np.dtype(np.float32)),
}
"""Supported sensor_msgs/Image encodings -> (channels, dtype). One channel means an (H, W) array."""


def _encoding_layout(owner: str, encoding: str) -> tuple[int, np.dtype]:
    try:
        return IMAGE_ENCODINGS[encoding]
    except KeyError:
        allowed = ", ".join(IMAGE_ENCODINGS)
        raise ValueError(
            f"{owner}.encoding: unsupported image encoding {encoding!r} (supported: {allowed})"
        ) from None


@dataclass(slots=True, kw_only=True)
class Image:
    """A camera image, as sensor_msgs/Image carries it.

    ``data`` is (H, W, 3) uint8 for "rgb8", (H, W) uint8 for "mono8" and (H, W) float32 metres
    for "32FC1" depth. Written little-endian (is_bigendian=0) with rows packed (step = W *
    channels * itemsize); from_ros also reads big-endian data and padded rows.
    """

    ROS_TYPE: ClassVar[str] = "sensor_msgs/msg/Image"

    stamp: float = 0.0
    frame_id: str = "camera"
    encoding: str = "rgb8"
    data: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3), dtype=np.uint8))

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.stamp = float(self.stamp)
        channels, dtype = _encoding_layout(owner, self.encoding)
        shape: tuple[int | None, ...] = (None, None) if channels == 1 else (None, None, channels)
        data = np.asarray(self.data)
        if data.dtype != dtype and not _lossless_cast(data, dtype):
            raise ValueError(
                f"{owner}.data: encoding {self.encoding!r} needs {dtype.name} data, got {data.dtype.name}"
            )
        self.data = as_array(owner, "data", data, shape, dtype)

    @property
    def height(self) -> int:
        """Rows of the image."""
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        """Columns of the image."""
        return int(self.data.shape[1])

    def to_ros(self, types: TypeLookup) -> Any:
        """sensor_msgs/msg/Image."""
        cls = types(self.ROS_TYPE)
        channels, dtype = IMAGE_ENCODINGS[self.encoding]
        little = np.ascontiguousarray(self.data, dtype=dtype.newbyteorder("<"))
        row_bytes = self.width * channels * dtype.itemsize
        return cls(
            header=header_to_ros(types, self.stamp, self.frame_id),
            height=self.height,
            width=self.width,
            encoding=self.encoding,
            is_bigendian=0,
            step=row_bytes,
            data=number_sequence(cls, little.reshape(-1).view(np.uint8), np.uint8),
        )

    @classmethod
    def from_ros(cls, ros_msg: Any) -> Image:
        """From a sensor_msgs/Image in a supported encoding; ValueError naming any other."""
        encoding = str(ros_msg.encoding)
        channels, dtype = _encoding_layout(cls.__name__, encoding)
        height, width, step = int(ros_msg.height), int(ros_msg.width), int(ros_msg.step)
        row_bytes = width * channels * dtype.itemsize
        data = ros_msg.data  # numpy uint8 (rosbags), array.array('B') or bytes (rclpy)
        raw = data.reshape(-1) if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
        if step < row_bytes or raw.size != height * step:
            raise ValueError(
                f"{cls.__name__}: {height}x{width} {encoding!r} image needs step >= {row_bytes} and "
                f"height*step bytes, got step {step} and {raw.size} bytes"
            )
        rows = raw.reshape(height, step)[:, :row_bytes]
        wire = dtype.newbyteorder(">" if ros_msg.is_bigendian else "<")
        pixels = np.ascontiguousarray(rows).view(wire).astype(dtype)
        shape = (height, width) if channels == 1 else (height, width, channels)
        stamp, frame_id = header_from_ros(ros_msg.header)
        return cls(stamp=stamp, frame_id=frame_id, encoding=encoding, data=pixels.reshape(shape))


def _lossless_cast(data: np.ndarray, dtype: np.dtype) -> bool:
    """True if ``data`` converts to ``dtype`` without losing values (floats to float32 allowed)."""
    if dtype.kind == "f":
        return data.dtype.kind in "fiub"
    if data.dtype.kind in "iub":
        info = np.iinfo(dtype)
        return data.size == 0 or (int(data.min()) >= info.min and int(data.max()) <= info.max)
    return False
