"""The plain-Python half of the ROS 2 shell: everything the rclpy adapter and the launch files compute, tested without ROS.

``aegis.nodes.ros_adapter`` is the only module that imports rclpy; it asks this package for
every decision it makes: topic names and QoS of a port (:mod:`.wiring`), ROS parameters of a
node's Params (:mod:`.parameters`), timer periods, ROS time and input ages (:mod:`.timing`),
stepping a node and converting its messages (:mod:`.stepping`), the executables' command line
(:mod:`.command_line`) and the processes a launch file starts (:mod:`.processes`).
"""

from aegis.ros_shell.command_line import (
    ExecutableArgs,
    RosStartupError,
    RosUnavailable,
    SelectionError,
    parse_executable_args,
    rclpy_missing_message,
    startup_error,
    select_node,
    select_process,
    split_ros_args,
)
from aegis.ros_shell.parameters import ParamDescriptor, ParameterError, ParamType, apply_parameter_values, parameter_descriptors
from aegis.ros_shell.processes import COMPOSED_EXECUTABLE, ProcessDescription, process_descriptions
from aegis.ros_shell.stepping import NodeRunner
from aegis.ros_shell.timing import (
    InputLatch,
    QueueLatch,
    SimClock,
    is_clock_source,
    ns_to_seconds,
    received,
    ros_time_to_seconds,
    seconds_to_ros_time,
    timer_period_s,
)
from aegis.ros_shell.wiring import QosSettings, publisher_qos, relative_topic, resolved_topic, subscription_qos

__all__ = [
    "COMPOSED_EXECUTABLE",
    "ExecutableArgs",
    "InputLatch",
    "QueueLatch",
    "SimClock",
    "is_clock_source",
    "NodeRunner",
    "ParamDescriptor",
    "ParamType",
    "ParameterError",
    "ProcessDescription",
    "QosSettings",
    "RosStartupError",
    "RosUnavailable",
    "SelectionError",
    "apply_parameter_values",
    "ns_to_seconds",
    "parameter_descriptors",
    "parse_executable_args",
    "process_descriptions",
    "publisher_qos",
    "rclpy_missing_message",
    "startup_error",
    "received",
    "relative_topic",
    "resolved_topic",
    "ros_time_to_seconds",
    "seconds_to_ros_time",
    "select_node",
    "select_process",
    "split_ros_args",
    "subscription_qos",
    "timer_period_s",
]
