"""Simulated sensors as building blocks for the sim bridge: 2-D lidar, RGB-D camera, odometry/IMU noise, latency, rates.

Each piece is plain Python + numpy; the lidar and the camera query one PyBullet client, passing
its ``physicsClientId`` on every call. They take the body pose (world ENU, quaternion x, y, z, w)
and a stamp and return aegis messages; noise comes from a ``numpy.random.Generator`` the caller
seeds. The bridge decides when each sensor fires (``decimation``) and how late its messages
arrive (``DelayLine``).

    lidar = Lidar2D(client, LidarParams(num_beams=360), exclude_body=robot_id)
    scan = lidar.scan(position, orientation_xyzw, stamp=now, rng=rng)        # LaserScan
    images = Camera(client, CameraParams()).capture(position, orientation_xyzw, stamp=now)
    odom = noisy_state(true_state, NoiseParams(position_std_m=0.01), rng)     # new RobotState
"""

from aegis.sim.sensors.camera import Camera, CameraParams
from aegis.sim.sensors.lidar import Lidar2D, LidarParams
from aegis.sim.sensors.noise import NoiseParams, biased_imu, draw_imu_bias, noisy_imu, noisy_state, perturb_quaternion
from aegis.sim.sensors.timing import DelayLine, decimation

__all__ = [
    "Camera",
    "CameraParams",
    "DelayLine",
    "Lidar2D",
    "LidarParams",
    "NoiseParams",
    "biased_imu",
    "draw_imu_bias",
    "decimation",
    "noisy_imu",
    "noisy_state",
    "perturb_quaternion",
]
