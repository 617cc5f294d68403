"""Sensor noise for odometry and IMU messages: white Gaussian noise from a seeded rng, returning new messages.

IMU biases (``gyro_bias_std_radps``, ``accel_bias_std_mps2``) are constant offsets the sim bridge
draws once per reset from a stream of their own (:func:`draw_imu_bias`) and adds to each sample
(:func:`biased_imu`); they are not in the covariance (a sensor does not know its bias).

Each function draws a FIXED number of standard normals per call whatever the standard deviations
(12 for a RobotState, 9 for an ImuSample, in the order the fields are listed), so changing one
std never shifts the random stream of the others, and a standard deviation of 0 leaves that
field bit-identical. Attitude noise is a small rotation in the body frame: q_noisy = q * exp(d/2)
with d ~ N(0, std^2 I) (rad, about body x, y, z). The added variance is added to the message's
covariance diagonal, so consumers see how noisy the reading is; an IMU field whose covariance
[0, 0] is -1 ("not measured" in sensor_msgs/Imu) is left as it is.
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from typing import Annotated

import numpy as np
from pydantic import Field

from aegis.msgs import ImuSample, RobotState
from aegis.node import NodeParams

_Std = Annotated[float, Field(ge=0, allow_inf_nan=False)]

STATE_DRAWS = 12
"""Normals drawn per noisy_state call: position (3), orientation (3), linear velocity (3), angular velocity (3)."""

IMU_DRAWS = 9
"""Normals drawn per noisy_imu call: orientation (3), angular velocity (3), linear acceleration (3)."""


class NoiseParams(NodeParams):
    """Standard deviations of white noise on odometry (RobotState) and IMU (ImuSample) fields; 0 = exact."""

    position_std_m: _Std = Field(0.0, description="odometry position, per world axis (m)")
    orientation_std_rad: _Std = Field(0.0, description="odometry attitude, per body axis (rad)")
    velocity_std_mps: _Std = Field(0.0, description="odometry linear velocity, per body axis (m/s)")
    angular_velocity_std_radps: _Std = Field(0.0, description="odometry angular velocity, per body axis (rad/s)")
    imu_orientation_std_rad: _Std = Field(0.0, description="IMU attitude, per body axis (rad)")
    gyro_std_radps: _Std = Field(0.0, description="IMU angular velocity, per axis (rad/s)")
    accel_std_mps2: _Std = Field(0.0, description="IMU linear acceleration, per axis (m/s^2)")
    gyro_bias_std_radps: _Std = Field(
        0.0, description="IMU gyro bias, per axis (rad/s): a constant offset drawn at every reset (not in the covariance)"
    )
    accel_bias_std_mps2: _Std = Field(
        0.0, description="IMU accelerometer bias, per axis (m/s^2): a constant offset drawn at every reset (not in the covariance)"
    )

    def scaled(self, factor: float) -> NoiseParams:
        """Every standard deviation times ``factor`` (a scenario's sensor_noise_scale); ValueError if < 0."""
        if not (math.isfinite(factor) and factor >= 0):
            raise ValueError(f"noise scale factor must be a finite number >= 0, got {factor!r}")
        return NoiseParams(**{name: value * factor for name, value in self.model_dump().items()})


def noisy_state(state: RobotState, noise: NoiseParams, rng: np.random.Generator) -> RobotState:
    """A copy of ``state`` with noise on position, orientation and twist (``state`` is not changed)."""
    d = rng.standard_normal(STATE_DRAWS)
    pose_added, twist_added = _state_variances(
        noise.position_std_m, noise.orientation_std_rad, noise.velocity_std_mps, noise.angular_velocity_std_radps
    )
    return RobotState.of_typed(  # the fields' shapes and dtype are the validated message's: the unchecked constructor
        state.stamp,
        state.frame_id,
        state.child_frame_id,
        state.position + noise.position_std_m * d[0:3],
        perturb_quaternion(state.orientation, noise.orientation_std_rad * d[3:6]),
        state.linear_velocity + noise.velocity_std_mps * d[6:9],
        state.angular_velocity + noise.angular_velocity_std_radps * d[9:12],
        state.pose_covariance + pose_added,
        state.twist_covariance + twist_added,
    )


def noisy_imu(sample: ImuSample, noise: NoiseParams, rng: np.random.Generator) -> ImuSample:
    """A copy of ``sample`` with noise on orientation, angular velocity and acceleration (``sample`` is not changed)."""
    d = rng.standard_normal(IMU_DRAWS)
    orientation, orientation_cov = sample.orientation.copy(), sample.orientation_covariance.copy()
    if orientation_cov[0, 0] != -1.0:
        orientation = perturb_quaternion(orientation, noise.imu_orientation_std_rad * d[0:3])
        orientation_cov += _isotropic(noise.imu_orientation_std_rad)
    gyro, gyro_cov = _noisy_vector(sample.angular_velocity, sample.angular_velocity_covariance, noise.gyro_std_radps, d[3:6])
    accel, accel_cov = _noisy_vector(
        sample.linear_acceleration, sample.linear_acceleration_covariance, noise.accel_std_mps2, d[6:9]
    )
    return ImuSample.of_typed(sample.stamp, sample.frame_id, orientation, gyro, accel, orientation_cov, gyro_cov, accel_cov)


@lru_cache(maxsize=16)
def _state_variances(position: float, orientation: float, velocity: float, angular_velocity: float) -> tuple[np.ndarray, np.ndarray]:
    """The variances noisy_state adds to the pose and twist covariances' diagonals (6, 6 each), computed once per set of stds."""
    pose = np.diag(np.repeat([position**2, orientation**2], 3))
    twist = np.diag(np.repeat([velocity**2, angular_velocity**2], 3))
    pose.setflags(write=False)
    twist.setflags(write=False)
    return pose, twist


@lru_cache(maxsize=16)
def _isotropic(std: float) -> np.ndarray:
    """std^2 I (3, 3), computed once per std (read-only)."""
    variance = np.eye(3) * std**2
    variance.setflags(write=False)
    return variance


def draw_imu_bias(noise: NoiseParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(accelerometer bias (3,) m/s^2, gyro bias (3,) rad/s) for one episode: 6 standard normals, always drawn."""
    d = rng.standard_normal(6)
    return noise.accel_bias_std_mps2 * d[0:3], noise.gyro_bias_std_radps * d[3:6]


def biased_imu(sample: ImuSample, accel_bias: np.ndarray, gyro_bias: np.ndarray) -> ImuSample:
    """A copy of ``sample`` with constant biases added to the measured fields (those not marked "not measured")."""
    gyro = sample.angular_velocity if sample.angular_velocity_covariance[0, 0] == -1.0 else sample.angular_velocity + gyro_bias
    accel = sample.linear_acceleration if sample.linear_acceleration_covariance[0, 0] == -1.0 else sample.linear_acceleration + accel_bias
    return dataclasses.replace(sample, angular_velocity=gyro, linear_acceleration=accel)


def _noisy_vector(value: np.ndarray, covariance: np.ndarray, std: float, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if covariance[0, 0] == -1.0:  # sensor_msgs/Imu: not measured
        return value.copy(), covariance.copy()
    return value + std * normals, covariance + _isotropic(std)


def perturb_quaternion(q: np.ndarray, rotation_vector: np.ndarray) -> np.ndarray:
    """``q * exp(rotation_vector / 2)``: ``q`` (x, y, z, w) turned by a body-frame rotation vector (rad); exact for 0."""
    rx, ry, rz = rotation_vector.tolist()  # Python floats: the same IEEE arithmetic as numpy's scalars, without their overhead
    angle = math.sqrt(rx * rx + ry * ry + rz * rz)
    if angle == 0.0:
        return np.array(q, dtype=np.float64)
    s = math.sin(0.5 * angle) / angle
    bx, by, bz, bw = rx * s, ry * s, rz * s, math.cos(0.5 * angle)
    ax, ay, az, aw = q.tolist()
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


CRAZYFLIE_NOISE = NoiseParams(
    position_std_m=0.002,
    orientation_std_rad=0.005,
    velocity_std_mps=0.02,
    angular_velocity_std_radps=0.01,
    imu_orientation_std_rad=0.005,
    gyro_std_radps=0.003,
    accel_std_mps2=0.02,
)
"""A Crazyflie 2.x flying under motion capture (or Lighthouse) with its onboard EKF: the state estimate's jitter.

Odometry: the EKF fed by a motion-capture system (Vicon / OptiTrack report sub-millimetre marker
noise; Bitcraze's Lighthouse positioning docs a millimetre-level jitter) keeps a position jitter of
about 1-2 mm, attitude about 0.3 degrees, velocity (differentiated and filtered) about 2 cm/s, body
rates about 0.01 rad/s after the gyro's low-pass. IMU: the Crazyflie 2.1's Bosch BMI088, datasheet
noise densities 0.014 deg/s/sqrt(Hz) (gyro) and 175 ug/sqrt(Hz) (accelerometer), over a ~120 Hz
bandwidth: 0.0027 rad/s and 0.019 m/s^2 per sample. White noise only: biases (NoiseParams' *_bias_std_*,
which a config can set) and drift are not in these nominal figures.
"""

HUSKY_NOISE = NoiseParams(
    position_std_m=0.005,
    orientation_std_rad=0.005,
    velocity_std_mps=0.02,
    angular_velocity_std_radps=0.02,
)
"""A Clearpath Husky's odometry: wheel encoders fused with its IMU (UM6/UM7) by robot_localization, as husky_control does.

husky_control's diff_drive_controller declares a twist covariance of 0.001 (std 3.2 cm/s, rad/s)
and a pose covariance of 0.001 m^2 in x and y (std 3.2 cm) that bounds the drift of dead
reckoning over a run; the sample-to-sample jitter of the fused estimate is much smaller. White noise
here: 5 mm position, 0.005 rad (0.3 degrees) heading, 2 cm/s and 0.02 rad/s twist. Drift (a slowly
growing pose error) is not modelled. The Husky bridge publishes no IMU message.
"""

NOMINAL_NOISE: dict[str, NoiseParams] = {"quadrotor": CRAZYFLIE_NOISE, "diff_drive": HUSKY_NOISE}
"""Robot kind -> the realistic noise a sim bridge's ``noise: nominal`` stands for."""
