"""The node registry: node type names (as used in hw_configs and as executable names) to their classes."""

from __future__ import annotations

import importlib

from aegis.config_files import did_you_mean, shorten
from aegis.node import Node

# type name -> "module:Class". Imported lazily so that `aegis check` stays fast and a node's heavy
# dependencies (PyBullet, onnxruntime) load only when that node is used. Every entry is also an
# executable (`ros2 run aegis <type>`): setup.py reads this table (with ast) to declare them.
NODE_TYPES: dict[str, str] = {
    "double_integrator": "aegis.nodes.double_integrator:DoubleIntegratorPlant",
    "pid": "aegis.nodes.pid:PidPositionController",
    "sim_bridge": "aegis.nodes.quadrotor_sim_bridge:SimBridge",
    "swarm_sim_bridge": "aegis.nodes.swarm_sim_bridge:SwarmSimBridge",
    "quadrotor_controller": "aegis.nodes.quadrotor_controller:QuadrotorController",
    "diff_drive_sim_bridge": "aegis.nodes.diff_drive_sim_bridge:DiffDriveSimBridge",
    "diff_drive_controller": "aegis.nodes.diff_drive_controller:DiffDriveController",
    "twist_to_wheels": "aegis.nodes.twist_to_wheels:TwistToWheels",
    "diff_drive_twist_controller": "aegis.nodes.diff_drive_controller:DiffDriveTwistController",
    "quadrotor_position_controller": "aegis.nodes.quadrotor_chain:QuadrotorPositionController",
    "quadrotor_attitude_controller": "aegis.nodes.quadrotor_chain:QuadrotorAttitudeController",
    "quadrotor_rate_controller": "aegis.nodes.quadrotor_chain:QuadrotorRateController",
    "quadrotor_mpc": "aegis.nodes.mpc:QuadrotorMpc",
    "diff_drive_mpc": "aegis.nodes.mpc:DiffDriveMpc",
    "quadrotor_scenario_mpc": "aegis.nodes.scenario_mpc:QuadrotorScenarioMpc",
    "safety_filter": "aegis.nodes.quadrotor_safety_filter:SafetyFilter",
    "diff_drive_safety_filter": "aegis.nodes.diff_drive_safety_filter:DiffDriveSafetyFilter",
    "supervisor": "aegis.nodes.supervisor:Supervisor",
    "diff_drive_supervisor": "aegis.nodes.supervisor:DiffDriveSupervisor",
    "quadrotor_policy": "aegis.nodes.policy:QuadrotorPolicy",
    "diff_drive_policy": "aegis.nodes.policy:DiffDrivePolicy",
    "twist_to_unstamped": "aegis.nodes.driver_adapters:TwistToUnstamped",
    "crazyflie_odometry": "aegis.nodes.driver_adapters:CrazyflieOdometry",
    "crazyflie_full_state": "aegis.nodes.driver_adapters:CrazyflieFullState",
    "lidar_obstacles": "aegis.nodes.lidar_obstacles:LidarObstacles",
    "depth_obstacles": "aegis.nodes.depth_obstacles:DepthObstacles",
    "state_estimator": "aegis.nodes.state_estimator:StateEstimator",
}


class UnknownNodeType(KeyError):
    """A hw_config or command names a node type that is not registered."""

    def __str__(self) -> str:
        return str(self.args[0])


def node_class(type_name: str) -> type[Node]:
    """Import and return the node class registered as ``type_name``."""
    try:
        target = NODE_TYPES[type_name]
    except KeyError:
        raise UnknownNodeType(
            f"unknown node type {shorten(repr(type_name))}{did_you_mean(type_name, NODE_TYPES)} (known: {', '.join(sorted(NODE_TYPES))})"
        ) from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if cls.type_name != type_name:
        raise RuntimeError(f"registry maps {type_name!r} to {target}, whose type_name is {cls.type_name!r}")
    return cls
