"""Driver adapters: the nodes between aegis's messages and a real robot driver's topics and types (Clearpath, crazyswarm2).

A real robot's driver speaks its own dialect; these nodes translate at the edge of a deployment
config (hw_configs/*_robot_*.yaml), so the rest of the chain is the one the simulator runs. Each is
triggered by the message it translates (it runs right after it, at the same instant: no added
latency) and holds no state beyond what it says.

``twist_to_unstamped``
    The supervisor's TwistStamped (/cmd_vel) as the geometry_msgs/Twist that Clearpath's ROS 2
    platform reads on ``<namespace>/cmd_vel`` (twist_mux's "external" input, priority 1, 0.5 s
    timeout; clearpath_common jazzy: ``use_stamped_vel: false``). ``planar`` keeps only linear.x
    and angular.z (what a differential drive follows).
``crazyflie_odometry``
    crazyswarm2's ``<cf>/odom`` (nav_msgs/Odometry from the firmware's ``stateEstimateZ`` log
    block) as aegis odometry. crazyswarm2 fills the twist with the *world-frame* velocity
    (``stateEstimateZ.vx/vy/vz``) and leaves the angular velocity at zero (its rate fields are
    commented out); aegis's odometry carries the twist in the body frame, as Odometry defines it:
    this node rotates the velocity into the body frame (v_body = R^T v_world) and sets the frames.
    A message whose quaternion is not a rotation passes unrotated, so the supervisor sees it
    unusable.
``crazyflie_full_state``
    The supervisor's world-frame acceleration (/cmd_accel) as crazyswarm2's full-state setpoint
    (``<cf>/cmd_full_state``, crazyflie_interfaces/msg/FullState). The setpoint's position and
    velocity are the latest fresh odometry, so the firmware's feedback terms see (nearly) no error
    and the filtered acceleration, its feed-forward, is the command; the heading is held at the
    yaw of the first usable odometry, body rates zero. That acceleration acts only under a
    firmware controller that uses the feed-forward (Mellinger, ``stabilizer.controller: 2`` in
    crazyswarm2's crazyflies.yaml; the PID controller ignores it, to our reading of the firmware,
    and would hold position instead). Without fresh odometry it sends a hold setpoint (the last
    usable position, zero velocity and acceleration: the firmware holds with its own estimator),
    counted in ``hold_ticks``; before any usable odometry it sends nothing (the firmware's
    commander watchdog then levels and stops the motors). None of this has been flown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field

from aegis.msgs import AccelCommand, RobotState, TwistCommand, UnstampedTwist
from aegis.msgs.drivers import FullStateSetpoint
from aegis.node import Node, NodeParams, Port, Received


class TwistToUnstampedParams(NodeParams):
    planar: bool = Field(True, description="pass only linear.x and angular.z (a differential drive); false: all six components")


class TwistToUnstamped(Node):
    """TwistStamped in, geometry_msgs/Twist out, on every message (Clearpath's cmd_vel)."""

    type_name = "twist_to_unstamped"
    Params = TwistToUnstampedParams
    trigger = "twist"
    inputs = (Port("twist", TwistCommand, "/cmd_vel", description="the supervisor's gated twist"),)
    outputs = (Port("command", UnstampedTwist, "/cmd_vel_unstamped", description="the same twist without a header, for the driver"),)

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> dict[str, Any]:
        received = inputs.get("twist")
        if received is None:
            return {}
        twist = received.msg
        if self.params.planar:
            return {"command": UnstampedTwist(stamp=now, linear=[twist.linear[0], 0.0, 0.0], angular=[0.0, 0.0, twist.angular[2]])}
        return {"command": UnstampedTwist(stamp=now, linear=twist.linear, angular=twist.angular)}


class CrazyflieOdometryParams(NodeParams):
    frame_id: str = Field("world", description="the world frame of the odometry (crazyswarm2's reference_frame setting)")
    child_frame_id: str = Field("base_link", description="the body frame the rotated twist is expressed in")


class CrazyflieOdometry(Node):
    """crazyswarm2's odometry (world-frame twist) in, aegis odometry (body-frame twist) out, on every message."""

    type_name = "crazyflie_odometry"
    Params = CrazyflieOdometryParams
    trigger = "odom"
    inputs = (Port("odom", RobotState, "/cf/odom", description="crazyswarm2's <cf>/odom: twist in the world frame, no angular velocity"),)
    outputs = (Port("state", RobotState, "/odom", description="odometry with the twist in the body frame"),)

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> dict[str, Any]:
        received = inputs.get("odom")
        if received is None:
            return {}
        msg = received.msg
        velocity = msg.linear_velocity
        if msg.is_usable():
            velocity = _rotation(msg.orientation).T @ velocity
        return {
            "state": RobotState(
                stamp=now, frame_id=self.params.frame_id, child_frame_id=self.params.child_frame_id,
                position=msg.position, orientation=msg.orientation, linear_velocity=velocity,
                angular_velocity=msg.angular_velocity, pose_covariance=msg.pose_covariance, twist_covariance=msg.twist_covariance,
            )
        }


class CrazyflieFullStateParams(NodeParams):
    frame_id: str = Field("world", description="frame of the setpoint (crazyswarm2's reference_frame setting)")


class CrazyflieFullState(Node):
    """The gated world-frame acceleration in, a crazyswarm2 full-state setpoint out (module doc), on every command."""

    type_name = "crazyflie_full_state"
    Params = CrazyflieFullStateParams
    trigger = "command"
    inputs = (
        Port("command", AccelCommand, "/cmd_accel", description="the supervisor's gated acceleration (world frame)"),
        Port("state", RobotState, "/odom", max_age_s=0.05, description="odometry (body-frame twist): the setpoint's position and velocity"),
    )
    outputs = (Port("setpoint", FullStateSetpoint, "/cf/cmd_full_state", description="crazyswarm2's full-state setpoint"),)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self._heading: np.ndarray | None = None
        self._last_position: np.ndarray | None = None
        self.hold_ticks = 0

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> dict[str, Any]:
        command, state = inputs.get("command"), inputs.get("state")
        usable = state is not None and not state.stale and state.msg.is_usable()
        if usable:
            msg = state.msg
            if self._heading is None:
                x, y, z, w = msg.orientation.tolist()
                yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
                self._heading = np.array([0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0)])
            self._last_position = msg.position
            acceleration = command.msg.linear if command is not None else np.zeros(3)
            if not np.all(np.isfinite(acceleration)):  # the supervisor never passes one; belt and braces at the edge
                acceleration = np.zeros(3)
            setpoint = FullStateSetpoint(
                stamp=now, frame_id=self.params.frame_id, position=msg.position, orientation=self._heading,
                velocity=_rotation(msg.orientation) @ msg.linear_velocity, acceleration=acceleration,
            )
            return {"setpoint": setpoint}
        if self._last_position is None:
            return {}
        self.hold_ticks += 1
        return {"setpoint": FullStateSetpoint(stamp=now, frame_id=self.params.frame_id, position=self._last_position, orientation=self._heading)}

    def metrics(self) -> dict[str, Any]:
        """Setpoints sent as a hold for want of fresh odometry."""
        return {"full_state_hold_ticks": self.hold_ticks}


def _rotation(q: np.ndarray) -> np.ndarray:
    """Body-to-world rotation matrix of a unit quaternion (x, y, z, w)."""
    from aegis.controllers.quadrotor_model import quaternion_to_matrix

    return quaternion_to_matrix(q)
