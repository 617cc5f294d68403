"""A PyBullet world with one differential-drive ground robot (a Husky by default): wheel-speed commands through a motor lag.

One :class:`DiffDriveWorld` owns one PyBullet client (DIRECT by default, GUI on request), and every
PyBullet call here passes that client's ``physicsClientId``, so several worlds run side by side in
one process (a test checks the calls). The interface is :class:`~aegis.sim.pybullet_world.QuadrotorWorld`'s:
``client``, ``body_id``, ``reset``, ``step(command, wind_world, external_force_world)``, ``state()``,
``set_scales``, ``body_radius_m`` and ``close()``.

The robot is loaded from pybullet_data (``robot.diff_drive.urdf``, default ``husky/husky.urdf``) or
from the robot section's own ``urdf``, with the URDF's inertia. Its wheels are found by joint name
(``left_wheel_joints``, ``right_wheel_joints``). The base of the Husky's URDF is ``base_footprint``,
on the ground under the robot: :meth:`DiffDriveWorld.state` reports that frame's pose and its twist
in the body frame, as a ground robot's odometry has it (REP 105). The frame is fixed to the chassis,
so the tyres' compliance (the URDF's contact stiffness) puts it 1-3 mm below z = 0 (measured: 0.8 mm
at rest, down to 2.8 mm while driving). Links the URDF gives no inertia (PyBullet would make each 1 kg) are made
1 g, and the heaviest other link (the chassis) takes whatever ``robot.mass_kg`` leaves after the
wheels, so the simulated mass is the hw_config's.

Each :meth:`DiffDriveWorld.step` (one physics step of ``1 / physics_rate_hz``):

1. the (left, right) wheel speed commands, clipped to the speed limit, pass through the first-order
   motor lag (exact discretisation, the quadrotor's motor model);
2. every wheel of a side gets its side's lagged speed as a PyBullet VELOCITY_CONTROL target, with
   the torque limit as the motor's maximum force: within it the wheel turns at that speed; beyond
   it (pushing an obstacle, a heavy turn) it turns slower. A zero command therefore brakes;
3. an external force (impulse disturbance) pushes the chassis at its centre of mass; wind is
   accepted and ignored (a ground robot's aerodynamic drag at 1 m/s is negligible);
4. PyBullet advances by one fixed step, and the base state is read back.

Friction: PyBullet multiplies the two bodies' coefficients, and the ground plane here has 1.0, so a
wheel's own coefficient (the URDF's 1.0, times ``set_scales``' friction) is the contact's. The
world uses PyBullet's pyramid friction approximation (``enableConeFriction=0``), per client: with
the Coulomb cone a skid-steer Husky at mu = 1 hardly turns (measured, mean over 4 s: in place and on
a 1 m radius arc 3.7 and 4.3 times slower than the two-wheel model says, with 60-70 % turn-rate
chatter), while with the pyramid it turns 1.37-1.57 times slower (+-15 % chatter), like the real
robot (Clearpath calibrates 1.875). That factor is the config's ``wheel_separation_multiplier``,
which the controllers' kinematics use.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet

from aegis.config import RobotConfig
from aegis.controllers.quadrotor_model import motor_lag_factor, motor_lag_step, quaternion_to_matrix
from aegis.sim import BodyStateViews, open_world, stdout_to_devnull, world_time_step

GROUND_FRICTION = 1.0
"""Lateral friction of the ground plane: a wheel's own coefficient is then the contact's."""

MIN_START_HEIGHT_M = -0.005
"""Lowest base height reset accepts: the base is on the ground, and resting contacts sink ~1 mm."""

PLACEHOLDER_MASS_KG = 1e-3
"""Mass given to links without inertia in the URDF (frames such as base_footprint, imu_link)."""


@dataclass(frozen=True)
class DiffDriveState:
    """The simulated ground robot at one instant. World frame ENU, body frame FLU, quaternion (x, y, z, w).

    ``position`` is the URDF base frame's origin (the Husky's base_footprint: on the ground, under the
    robot's centre, 1-3 mm below z = 0 on its compliant tyres). ``wheel_speeds`` are the measured joint speeds (rad/s) of the left and the right
    wheels, each side's mean; ``motor_speeds`` the lagged (left, right) targets the wheels are driven to.
    """

    time_s: float
    position: np.ndarray
    orientation: np.ndarray
    velocity_world: np.ndarray
    angular_velocity_world: np.ndarray
    velocity_body: np.ndarray
    body_rates: np.ndarray
    wheel_speeds: np.ndarray
    motor_speeds: np.ndarray


class DiffDriveWorld(BodyStateViews):
    """A PyBullet client with an optional ground plane and one wheeled robot built from ``robot`` (kind diff_drive)."""

    def __init__(
        self,
        robot: RobotConfig,
        physics_rate_hz: float = 240.0,
        gravity_mps2: float = 9.81,
        ground_plane: bool = True,
        gui: bool = False,
    ) -> None:
        self.dt = world_time_step(robot, "diff_drive", physics_rate_hz)
        self.robot = robot
        params = robot.diff_drive
        self.gravity_mps2 = float(gravity_mps2)
        self.ground_plane = ground_plane
        self._lag = motor_lag_factor(self.dt, params.motor_time_constant_s)
        self._max_speed = params.max_wheel_speed_radps
        self._max_torque = params.max_wheel_torque_nm
        urdf = urdf_path(robot)

        opened = open_world(self, self.dt, self.gravity_mps2, ground_plane, gui, enableConeFriction=0)
        self.client, self.plane_id, self._finalizer = opened.client, opened.plane_id, opened.close
        cid = self.client
        if self.plane_id is not None:
            pybullet.changeDynamics(self.plane_id, -1, lateralFriction=GROUND_FRICTION, physicsClientId=cid)
        with stdout_to_devnull():  # PyBullet prints a warning per link without inertia, to C's stdout
            self.body_id = pybullet.loadURDF(
                str(urdf), [0.0, 0.0, 0.0], flags=pybullet.URDF_USE_INERTIA_FROM_FILE, physicsClientId=cid
            )
        self._find_links(urdf)
        self.motor_speeds = np.zeros(2)
        self._commands = np.zeros(2)
        self._targets = [0.0] * len(self._wheels)
        self._forces = [self._max_torque] * len(self._wheels)
        self.set_scales()  # the chassis takes what robot.mass_kg leaves after the wheels
        self.reset()
        self.body_radius_m = self._footprint_radius()

    # -- setup ------------------------------------------------------------------------------
    def _find_links(self, urdf: Path) -> None:
        """Wheel joints by name; the links without inertia made light; the chassis (heaviest other link) found."""
        cid, body = self.client, self.body_id
        params = self.robot.diff_drive
        joints = {}
        for index in range(pybullet.getNumJoints(body, physicsClientId=cid)):
            info = pybullet.getJointInfo(body, index, physicsClientId=cid)
            joints[info[1].decode()] = (index, info[2], info[12].decode())
        missing = [n for n in (*params.left_wheel_joints, *params.right_wheel_joints) if n not in joints]
        if missing:
            raise ValueError(
                f"{urdf}: no wheel joint {', '.join(map(repr, missing))} (joints: {', '.join(sorted(joints))}); "
                "set robot.diff_drive.left_wheel_joints / right_wheel_joints"
            )
        for name in (*params.left_wheel_joints, *params.right_wheel_joints):
            if joints[name][1] != pybullet.JOINT_REVOLUTE:
                raise ValueError(f"{urdf}: wheel joint {name!r} is not revolute or continuous")
        left = [joints[n][0] for n in params.left_wheel_joints]
        right = [joints[n][0] for n in params.right_wheel_joints]
        self._wheels = left + right
        self._side = np.array([0] * len(left) + [1] * len(right))  # index into (left, right) per wheel
        self._left, self._right = slice(0, len(left)), slice(len(left), len(left) + len(right))
        base, inert = _root_and_links_without_inertia(urdf)
        link_names = {-1: base, **{index: child for index, _, child in joints.values()}}
        self._nominal: dict[int, tuple[float, tuple[float, float, float]]] = {}
        for link, name in link_names.items():
            info = pybullet.getDynamicsInfo(body, link, physicsClientId=cid)
            mass, inertia = info[0], info[2]
            if name in inert:
                mass, inertia = PLACEHOLDER_MASS_KG, (PLACEHOLDER_MASS_KG * 1e-3,) * 3
                pybullet.changeDynamics(body, link, mass=mass, localInertiaDiagonal=inertia, physicsClientId=cid)
            self._nominal[link] = (mass, tuple(inertia))
        others = [link for link in self._nominal if link not in self._wheels and link_names[link] not in inert]
        if not others:
            raise ValueError(f"{urdf}: no link besides the wheels has a mass to carry robot.mass_kg")
        self._chassis = max(others, key=lambda link: self._nominal[link][0])
        self._fixed_mass = sum(m for link, (m, _) in self._nominal.items() if link != self._chassis)
        self._friction = {w: pybullet.getDynamicsInfo(body, w, physicsClientId=cid)[1] for w in self._wheels}

    def _footprint_radius(self) -> float:
        """Half the diagonal of the collision shapes' footprint, measured at the reset pose (upright, yaw 0, at the origin).

        From the shapes themselves (box corners, cylinder rims, spheres), not from PyBullet's AABBs,
        which are loose around a link whose inertial frame is rotated (the Husky's chassis).
        """
        cid, body = self.client, self.body_id
        x0, y0 = self._position[:2].tolist()
        reach_x = reach_y = 0.0
        for link in range(-1, pybullet.getNumJoints(body, physicsClientId=cid)):
            if link == -1:
                frame = pybullet.getBasePositionAndOrientation(body, physicsClientId=cid)
            else:
                frame = pybullet.getLinkState(body, link, computeForwardKinematics=1, physicsClientId=cid)[:2]
            for shape in pybullet.getCollisionShapeData(body, link, physicsClientId=cid):
                points = _shape_points(shape[2], shape[3])
                if points is None:  # a mesh or a plane: its (loose) bounding box
                    lo, hi = pybullet.getAABB(body, link, physicsClientId=cid)
                    points_world = np.array([lo, hi])
                else:
                    position, orientation = pybullet.multiplyTransforms(*frame, shape[5], shape[6], physicsClientId=cid)
                    rotation = quaternion_to_matrix(orientation)
                    points_world = points @ rotation.T + np.asarray(position)
                reach_x = max(reach_x, float(np.abs(points_world[:, 0] - x0).max()))
                reach_y = max(reach_y, float(np.abs(points_world[:, 1] - y0).max()))
        return math.hypot(reach_x, reach_y)

    # -- the world interface ---------------------------------------------------------------
    def reset(self, position: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0), yaw: float = 0.0) -> DiffDriveState:
        """Place the robot at rest, base at ``position`` (on the ground: z = 0), heading ``yaw``; wheels and motors stopped."""
        position = np.asarray(position, dtype=float)
        if self.ground_plane and position[2] < MIN_START_HEIGHT_M:
            raise ValueError(f"initial position z={position[2]:g} m is below the ground (the base rests at z = 0)")
        cid, body = self.client, self.body_id
        orientation = [0.0, 0.0, math.sin(0.5 * yaw), math.cos(0.5 * yaw)]
        pybullet.resetBasePositionAndOrientation(body, position.tolist(), orientation, physicsClientId=cid)
        pybullet.resetBaseVelocity(body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], physicsClientId=cid)
        for joint in self._wheels:
            pybullet.resetJointState(body, joint, 0.0, 0.0, physicsClientId=cid)
        pybullet.performCollisionDetection(physicsClientId=cid)
        self.motor_speeds[:] = 0.0
        self.steps = 0
        self._read_state()
        return self.state()

    def set_scales(
        self,
        mass: float = 1.0,
        inertia: float = 1.0,
        motor_constant: float = 1.0,
        friction: float = 1.0,
        *,
        torque: float = 1.0,
        motor_time_constant: float = 1.0,
    ) -> None:
        """Scale the total mass, the chassis inertia, the wheel torque limit, the wheels' friction and the wheel lag.

        Domain randomisation and dynamics perturbations (aegis.sim.dynamics): the controllers keep
        the nominal model, so this is model mismatch. The chassis takes the mass change (wheels keep
        theirs), its inertia scaled with its mass and then by ``inertia``; ``motor_constant`` and
        ``torque`` both scale the motors' torque limit (a torque constant times a current limit);
        ``motor_time_constant`` the first-order wheel speed lag (nominal: the robot section's
        ``diff_drive.motor_time_constant_s``, 50 ms for a Husky).
        """
        cid, body = self.client, self.body_id
        chassis_mass = self.robot.mass_kg * mass - self._fixed_mass
        if chassis_mass <= 0.0:
            raise ValueError(
                f"robot mass {self.robot.mass_kg * mass:g} kg is not above its wheels and frames' {self._fixed_mass:g} kg"
            )
        nominal_mass, nominal_inertia = self._nominal[self._chassis]
        scale = chassis_mass / nominal_mass * inertia
        pybullet.changeDynamics(
            body, self._chassis, mass=chassis_mass, localInertiaDiagonal=[i * scale for i in nominal_inertia],
            physicsClientId=cid,
        )
        for wheel, nominal in self._friction.items():
            pybullet.changeDynamics(body, wheel, lateralFriction=nominal * friction, physicsClientId=cid)
        self._forces = [self._max_torque * motor_constant * torque] * len(self._wheels)
        self._lag = motor_lag_factor(self.dt, self.robot.diff_drive.motor_time_constant_s * motor_time_constant)

    def step(
        self,
        wheel_commands: np.ndarray,
        wind_world: np.ndarray | None = None,
        external_force_world: np.ndarray | None = None,
    ) -> None:
        """Advance one physics step with (left, right) ``wheel_commands`` (rad/s, clipped to +-max) held over it.

        ``wind_world`` is accepted for the common world interface and ignored (see the module doc);
        ``external_force_world`` (N) pushes the chassis at its centre of mass.
        """
        commands = self._commands
        np.clip(wheel_commands, -self._max_speed, self._max_speed, out=commands)
        left, right = motor_lag_step(self.motor_speeds, commands, self._lag).tolist()
        targets = self._targets
        for i, side in enumerate(self._side.tolist()):
            targets[i] = right if side else left
        cid, body = self.client, self.body_id
        pybullet.setJointMotorControlArray(
            body, self._wheels, pybullet.VELOCITY_CONTROL, targetVelocities=targets, forces=self._forces, physicsClientId=cid
        )
        if external_force_world is not None:
            centre = pybullet.getLinkState(body, self._chassis, physicsClientId=cid)[0]
            pybullet.applyExternalForce(
                body, self._chassis, external_force_world.tolist(), centre, pybullet.WORLD_FRAME, physicsClientId=cid
            )
        pybullet.stepSimulation(physicsClientId=cid)
        self.steps += 1
        self._read_state()

    def state(self) -> DiffDriveState:
        """The state after the last step (fresh arrays, safe to keep)."""
        speeds = [joint[1] for joint in pybullet.getJointStates(self.body_id, self._wheels, physicsClientId=self.client)]
        left, right = speeds[self._left], speeds[self._right]
        return DiffDriveState(
            time_s=self.time_s,
            position=self._position.copy(),
            orientation=self._orientation.copy(),
            velocity_world=self._velocity_world.copy(),
            angular_velocity_world=self._angular_world.copy(),
            velocity_body=self._velocity_body.copy(),
            body_rates=self._body_rates.copy(),
            wheel_speeds=np.array([sum(left) / len(left), sum(right) / len(right)]),
            motor_speeds=self.motor_speeds.copy(),
        )

    def in_contact(self, other: int | None = None) -> bool:
        """Whether the robot touches ``other`` (a body id), or anything at all."""
        if other is None:
            return bool(pybullet.getContactPoints(bodyA=self.body_id, physicsClientId=self.client))
        return bool(pybullet.getContactPoints(bodyA=self.body_id, bodyB=other, physicsClientId=self.client))

    def close(self) -> None:
        """Disconnect the PyBullet client (also done when the world is garbage-collected)."""
        self._finalizer()

    def _read_state(self) -> None:
        cid, body = self.client, self.body_id
        position, orientation = pybullet.getBasePositionAndOrientation(body, physicsClientId=cid)
        velocity, angular = pybullet.getBaseVelocity(body, physicsClientId=cid)
        state = np.array(position + orientation + velocity + angular)
        self._position, self._orientation = state[0:3], state[3:7]
        self._velocity_world, self._angular_world = state[7:10], state[10:13]
        rotation = quaternion_to_matrix(orientation)
        self._velocity_body, self._body_rates = (rotation.T @ state[7:13].reshape(2, 3).T).T  # R^T v, R^T w


def urdf_path(robot: RobotConfig) -> Path:
    """The robot's URDF: the robot section's own ``urdf`` if it has one, else ``diff_drive.urdf`` in pybullet_data."""
    if robot.urdf is not None:
        path = Path(robot.urdf)
    else:
        import pybullet_data

        path = Path(pybullet_data.getDataPath()) / robot.diff_drive.urdf
    if not path.is_file():
        raise FileNotFoundError(f"robot {robot.name!r}: URDF not found: {path}")
    return path


def _shape_points(geometry: int, dimensions: tuple[float, ...]) -> np.ndarray | None:
    """Points in a collision shape's own frame whose extent along any axis is the shape's (cylinders: 64 rim points)."""
    if geometry == pybullet.GEOM_BOX:
        half = np.asarray(dimensions[:3]) / 2.0
        return np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
    if geometry == pybullet.GEOM_SPHERE:
        return np.vstack([np.eye(3), -np.eye(3)]) * dimensions[0]
    if geometry in (pybullet.GEOM_CYLINDER, pybullet.GEOM_CAPSULE):  # dimensions: (length, radius, ...), axis z
        length, radius = dimensions[0], dimensions[1]
        angles = np.linspace(0.0, 2.0 * math.pi, 32, endpoint=False)
        rim = np.column_stack([radius * np.cos(angles), radius * np.sin(angles), np.zeros_like(angles)])
        caps = length / 2.0 + (radius if geometry == pybullet.GEOM_CAPSULE else 0.0)
        return np.vstack([rim + [0.0, 0.0, caps], rim - [0.0, 0.0, caps]])
    return None


def _root_and_links_without_inertia(urdf: Path) -> tuple[str, set[str]]:
    """The URDF's root link (the one that is no joint's child) and the names of its links without an <inertial>."""
    root = ElementTree.parse(urdf).getroot()
    children = {child.get("link") for child in root.iter("child")}
    links = list(root.iter("link"))
    roots = [link.get("name", "") for link in links if link.get("name") not in children]
    return (roots[0] if len(roots) == 1 else ""), {link.get("name", "") for link in links if link.find("inertial") is None}
