"""A PyBullet world with one quadrotor: rotor forces, yaw torques, rotor drag and ground effect applied each physics step.

One :class:`QuadrotorWorld` owns one PyBullet client (DIRECT by default, GUI on request), and
every PyBullet call here passes that client's ``physicsClientId``, so several worlds run side by
side in one process without touching each other (a test checks the calls, another the behaviour).
The physics of one airframe is a :class:`QuadrotorBody`; a world is a body that owns its client,
and aegis.sim.swarm_world puts several bodies in one client.

The body is generated from the hw_config's parameters as a one-link URDF (pybullet_data has no
drone), written once per parameter set to a cache file in the temp folder and loaded with the
URDF's own inertia (PyBullet would otherwise recompute it from the collision box). Its origin is
its centre of mass; its collision shape is a flat box reaching ``COLLISION_HALF_HEIGHT_M`` below
and above it, so a quadrotor resting on the ground has its origin at z = 0.01 m. PyBullet's
default velocity damping is switched off: drag is the rotor-drag model below, nothing else.

Each :meth:`QuadrotorWorld.step` (one physics step of ``1 / physics_rate_hz``):

1. rotor speeds follow the held commands through the first-order motor lag (exact discretisation);
2. each rotor pushes ``kf w^2`` along body z, times ``1 + C (r / 4 h)^2`` within ground effect
   (gym-pybullet-drones' model: ``h`` the rotor's height, clipped so the gain stays <= 4/15; only
   while the body is less than 90 degrees from upright), and drags ``-km w^2`` (CCW rotor) or
   ``+km w^2`` (CW) about body z;
3. the rotor forces, summed with their moments about the centre of mass by the model's own mixing
   matrix (aegis.controllers.quadrotor_model, the one the controllers invert), and the rotor drag
   ``-c * sum(w) * v_body`` are applied as one force and one torque in the body frame (for a rigid
   body the same as four forces at the hubs, in two PyBullet calls instead of five);
4. PyBullet advances by one fixed step, and the state is read back.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from xml.sax.saxutils import quoteattr
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet

from aegis.config import RobotConfig
from aegis.sim import BodyStateViews, open_world, world_time_step
from aegis.controllers.quadrotor_model import (
    QuadrotorModel,
    motor_lag_factor,
    motor_lag_step,
    quaternion_to_matrix,
    rotor_positions,
)

COLLISION_HALF_HEIGHT_M = 0.01
"""Half height of the collision box: the height of the centre of mass when resting on the ground."""

GROUND_EFFECT_MAX_GAIN = 4.0 / 15.0
"""Largest relative thrust gain of the ground effect (gym-pybullet-drones' clip height)."""

_ORIGIN = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class QuadrotorState:
    """The simulated quadrotor at one instant. World frame ENU, body frame FLU, quaternion (x, y, z, w)."""

    time_s: float
    position: np.ndarray
    orientation: np.ndarray
    velocity_world: np.ndarray
    angular_velocity_world: np.ndarray
    velocity_body: np.ndarray
    body_rates: np.ndarray
    specific_force_body: np.ndarray  # what an accelerometer at the centre of mass reads (m/s^2)
    motor_speeds: np.ndarray


class QuadrotorBody(BodyStateViews):
    """One quadrotor built from ``robot`` (kind quadrotor) in an open PyBullet ``client``: its physics per step.

    :meth:`apply` sets this step's rotor forces, torques and drag; the owner of the client then
    steps the simulation once (for every body in it) and calls :meth:`advanced` to read the new state.
    """

    def __init__(self, client: int, robot: RobotConfig, dt: float, gravity_mps2: float, ground_plane: bool) -> None:
        if robot.quadrotor is None:
            raise ValueError(f"robot {robot.name!r} (kind {robot.kind}) has no quadrotor parameters")
        self.robot = robot
        self.model = QuadrotorModel.from_robot(robot, gravity_mps2)
        self.dt = dt
        self.gravity_mps2 = float(gravity_mps2)
        self.ground_plane = ground_plane
        params = robot.quadrotor
        self._lag = motor_lag_factor(self.dt, params.motor_time_constant_s)
        self._rotors = rotor_positions(params.arm_length_m)
        self._drag = tuple(float(c) for c in params.rotor_drag_coeff)
        self._mix = self.model.mix
        self._ground_effect = params.ground_effect and ground_plane
        self._ground_effect_coeff = params.ground_effect_coeff * params.prop_radius_m**2 / 16.0
        self._ground_effect_min_h = math.sqrt(self._ground_effect_coeff / GROUND_EFFECT_MAX_GAIN)
        self._max_speed = params.max_motor_speed_radps
        self.client = client
        self.body_id = pybullet.loadURDF(
            str(quadrotor_urdf(robot)), [0.0, 0.0, 1.0], flags=pybullet.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client
        )
        pybullet.changeDynamics(self.body_id, -1, linearDamping=0.0, angularDamping=0.0, physicsClientId=client)
        self.motor_speeds = np.zeros(4)
        self._commands = np.zeros(4)
        self.reset()

    def reset(
        self, position: np.ndarray | tuple[float, float, float] = (0.0, 0.0, COLLISION_HALF_HEIGHT_M),
        yaw: float = 0.0,
        motor_speeds: np.ndarray | float = 0.0,
    ) -> QuadrotorState:
        """Place the body at rest at ``position`` (its centre of mass) with heading ``yaw``; rotors at ``motor_speeds``."""
        position = np.asarray(position, dtype=float)
        if self.ground_plane and position[2] < COLLISION_HALF_HEIGHT_M - 1e-9:
            raise ValueError(
                f"initial position z={position[2]:g} m is below the ground: the lowest is {COLLISION_HALF_HEIGHT_M} m (resting)"
            )
        cid = self.client
        orientation = [0.0, 0.0, math.sin(0.5 * yaw), math.cos(0.5 * yaw)]
        pybullet.resetBasePositionAndOrientation(self.body_id, position.tolist(), orientation, physicsClientId=cid)
        pybullet.resetBaseVelocity(self.body_id, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], physicsClientId=cid)
        pybullet.performCollisionDetection(physicsClientId=cid)  # contacts of the new pose, not the last step's
        self.motor_speeds[:] = np.clip(motor_speeds, 0.0, self._max_speed)
        self.steps = 0
        self._velocity_before = np.zeros(3)
        self._read_state()
        self._velocity_before = self._velocity_world
        return self.state()

    @property
    def body_radius_m(self) -> float:
        """Radius of a sphere about the centre of mass that holds the airframe and propellers."""
        params = self.robot.quadrotor
        return params.arm_length_m + params.prop_radius_m

    def set_scales(
        self,
        mass: float = 1.0,
        inertia: float = 1.0,
        motor_constant: float = 1.0,
        friction: float = 1.0,
        *,
        thrust: float = 1.0,
        torque: float = 1.0,
        drag: float = 1.0,
        motor_time_constant: float = 1.0,
    ) -> None:
        """Scale the simulated body's mass, inertia, rotor constants, rotor drag and motor lag from the nominal ones.

        Domain randomisation and dynamics perturbations (aegis.sim.dynamics): the controllers keep
        the nominal model, so this is model mismatch. ``motor_constant`` scales kf and km together
        (a scenario's randomisation); ``thrust`` scales kf alone (thrust and the roll/pitch torques
        it makes), ``torque`` km alone (the rotors' yaw drag torque); ``drag`` the rotor drag
        coefficients; ``motor_time_constant`` the rotor speed lag. ``friction`` is accepted for the
        worlds' common interface and ignored: nothing a flying quadrotor does depends on the
        friction of its collision box.
        """
        nominal_inertia = np.asarray(self.robot.quadrotor.inertia_kg_m2, dtype=float)
        pybullet.changeDynamics(
            self.body_id, -1, mass=self.robot.mass_kg * mass, localInertiaDiagonal=(nominal_inertia * inertia).tolist(),
            physicsClientId=self.client,
        )
        mix = self.model.mix * motor_constant
        mix[:3] *= thrust
        mix[3] *= torque
        self._mix = mix
        params = self.robot.quadrotor
        self._drag = tuple(float(c) * drag for c in params.rotor_drag_coeff)
        self._lag = motor_lag_factor(self.dt, params.motor_time_constant_s * motor_time_constant)

    def apply(
        self,
        motor_commands: np.ndarray,
        wind_world: np.ndarray | None = None,
        external_force_world: np.ndarray | None = None,
    ) -> None:
        """Set the forces of the next physics step with ``motor_commands`` (rad/s, clipped to [0, max]) held over it.

        ``wind_world`` (m/s) moves the air the rotor drag acts against; ``external_force_world`` (N)
        pushes the centre of mass (impulse disturbances). The client's owner steps the simulation next.
        """
        commands = self._commands
        np.minimum(motor_commands, self._max_speed, out=commands)
        np.maximum(commands, 0.0, out=commands)
        speeds = motor_lag_step(self.motor_speeds, commands, self._lag)
        squared = speeds * speeds
        # The model's own mixing: [thrust, torque x, y, z] = A @ w^2, so simulator and controllers agree.
        thrust, roll, pitch, yaw = (self._mix @ squared).tolist()
        if self._ground_effect and self._rotation[2, 2] > 0.0:
            heights = self._position[2] + self._rotors @ self._rotation[2]
            np.maximum(heights, self._ground_effect_min_h, out=heights)
            thrust, roll, pitch = (self._mix[:3] @ (squared * (1.0 + self._ground_effect_coeff / (heights * heights)))).tolist()
        drag = -float(speeds.sum())
        if wind_world is None:
            vx, vy, vz = self._velocity_body.tolist()
        else:  # rotor drag acts on the velocity relative to the air
            vx, vy, vz = ((self._velocity_world - wind_world) @ self._rotation).tolist()
        cx, cy, cz = self._drag
        cid, body = self.client, self.body_id
        if external_force_world is not None:
            pybullet.applyExternalForce(
                body, -1, external_force_world.tolist(), self._position.tolist(), pybullet.WORLD_FRAME, physicsClientId=cid
            )
        pybullet.applyExternalForce(
            body, -1, (drag * cx * vx, drag * cy * vy, thrust + drag * cz * vz), _ORIGIN, pybullet.LINK_FRAME,
            physicsClientId=cid,
        )
        pybullet.applyExternalTorque(body, -1, (roll, pitch, yaw), pybullet.LINK_FRAME, physicsClientId=cid)

    def advanced(self) -> None:
        """After the client stepped: count the step and read the new state."""
        self.steps += 1
        self._velocity_before = self._velocity_world
        self._read_state()

    def state(self) -> QuadrotorState:
        """The state after the last step (fresh arrays, safe to keep)."""
        accel_world = (self._velocity_world - self._velocity_before) / self.dt
        accel_world[2] += self.gravity_mps2
        return QuadrotorState(
            time_s=self.time_s,
            position=self._position.copy(),
            orientation=self._orientation.copy(),
            velocity_world=self._velocity_world.copy(),
            angular_velocity_world=self._angular_world.copy(),
            velocity_body=self._velocity_body.copy(),
            body_rates=self._body_rates.copy(),
            specific_force_body=accel_world @ self._rotation,
            motor_speeds=self.motor_speeds.copy(),
        )

    def in_contact(self) -> bool:
        """Whether the body touches anything (the ground, for now)."""
        return bool(pybullet.getContactPoints(bodyA=self.body_id, physicsClientId=self.client))

    def _read_state(self) -> None:
        cid, body = self.client, self.body_id
        position, orientation = pybullet.getBasePositionAndOrientation(body, physicsClientId=cid)
        velocity, angular = pybullet.getBaseVelocity(body, physicsClientId=cid)
        state = np.array(position + orientation + velocity + angular)
        self._position, self._orientation = state[0:3], state[3:7]
        self._velocity_world, self._angular_world = state[7:10], state[10:13]
        self._rotation = quaternion_to_matrix(orientation)
        self._velocity_body, self._body_rates = (self._rotation.T @ state[7:13].reshape(2, 3).T).T  # R^T v, R^T w


class QuadrotorWorld(QuadrotorBody):
    """A PyBullet client with an optional ground plane and one quadrotor built from ``robot`` (kind quadrotor)."""

    def __init__(
        self,
        robot: RobotConfig,
        physics_rate_hz: float = 240.0,
        gravity_mps2: float = 9.81,
        ground_plane: bool = True,
        gui: bool = False,
    ) -> None:
        dt = world_time_step(robot, "quadrotor", physics_rate_hz)
        opened = open_world(self, dt, float(gravity_mps2), ground_plane, gui)
        self.plane_id, self._finalizer = opened.plane_id, opened.close
        super().__init__(opened.client, robot, dt, gravity_mps2, ground_plane)

    def step(
        self,
        motor_commands: np.ndarray,
        wind_world: np.ndarray | None = None,
        external_force_world: np.ndarray | None = None,
    ) -> None:
        """Advance one physics step with ``motor_commands`` (rad/s, clipped to [0, max]) held over it (see :meth:`apply`)."""
        self.apply(motor_commands, wind_world, external_force_world)
        pybullet.stepSimulation(physicsClientId=self.client)
        self.advanced()

    def close(self) -> None:
        """Disconnect the PyBullet client (also done when the world is garbage-collected)."""
        self._finalizer()


def quadrotor_urdf(robot: RobotConfig) -> Path:
    """The URDF of ``robot``'s quadrotor, generated from its parameters into a cache file (created once)."""
    text = quadrotor_urdf_text(robot)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "aegis-urdf"
    path = folder / f"quadrotor-{digest}.urdf"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temporary, path)  # atomic: parallel workers never read half a file
    return path


def quadrotor_urdf_text(robot: RobotConfig) -> str:
    """A one-link URDF: mass and principal inertia from the parameters, a flat collision box, arms and rotors to see."""
    q = robot.quadrotor
    if q is None:
        raise ValueError(f"robot {robot.name!r} has no quadrotor parameters")
    ixx, iyy, izz = (repr(float(v)) for v in q.inertia_kg_m2)
    half_width = q.arm_length_m / math.sqrt(2.0) + q.prop_radius_m
    rotors = "".join(
        f"""
    <visual>
      <origin xyz="{x!r} {y!r} 0.005" rpy="0 0 0"/>
      <geometry><cylinder radius="{q.prop_radius_m!r}" length="0.002"/></geometry>
      <material name="rotor{i}"><color rgba="{'0.8 0.2 0.2 0.7' if x > 0 else '0.2 0.2 0.8 0.7'}"/></material>
    </visual>"""
        for i, (x, y, _) in enumerate(rotor_positions(q.arm_length_m).tolist())
    )
    arm = 2.0 * q.arm_length_m
    return f"""<?xml version="1.0"?>
<!-- Generated by aegis.sim.pybullet_world from a hw_config's quadrotor parameters: do not edit. -->
<robot name={quoteattr(robot.name)}>
  <link name="base_link">
    <inertial>
      <origin xyz="0 0 0" rpy="0 0 0"/>
      <mass value="{float(robot.mass_kg)!r}"/>
      <inertia ixx="{ixx}" ixy="0" ixz="0" iyy="{iyy}" iyz="0" izz="{izz}"/>
    </inertial>
    <collision>
      <origin xyz="0 0 0" rpy="0 0 0"/>
      <geometry><box size="{2 * half_width!r} {2 * half_width!r} {2 * COLLISION_HALF_HEIGHT_M!r}"/></geometry>
    </collision>
    <visual>
      <origin xyz="0 0 0" rpy="0 0 0.7853981633974483"/>
      <geometry><box size="{arm!r} 0.006 0.004"/></geometry>
      <material name="arm"><color rgba="0.2 0.2 0.2 1"/></material>
    </visual>
    <visual>
      <origin xyz="0 0 0" rpy="0 0 -0.7853981633974483"/>
      <geometry><box size="{arm!r} 0.006 0.004"/></geometry>
      <material name="arm"><color rgba="0.2 0.2 0.2 1"/></material>
    </visual>{rotors}
  </link>
</robot>
"""
