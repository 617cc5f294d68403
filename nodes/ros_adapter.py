"""The one ROS 2 adapter: hosts any aegis node in an rclpy node; the only module that imports rclpy, and only when called.

Per node it creates a publisher per output topic, a subscription per input topic (a ``many``
port has one of each per topic of its list), a timer at the node's rate (or steps on its trigger input's messages), and read-only ROS parameters from its
Params. A timer-driven node's timing (start jitter against rcl's schedule, step durations,
deadline misses: aegis.ros_shell.loop_timing) goes out as LoopDiagnostics on /diagnostics once a
second, as under the realtime executor. Every decision is made by plain functions of aegis.ros_shell, tested without ROS; this
module only hands their results to rclpy. Receive times and ``now`` come from the node's ROS
clock, so ``use_sim_time`` (set from the hw_config) drives the node from /clock.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from aegis.launch_plan import LaunchPlan, NodeLaunch
from aegis.msgs.diagnostics import LoopDiagnostics
from aegis.msgs.ros_types import TypeLookup, rclpy_types
from aegis.msgs.stamp import time_to_ros
from aegis.node import Node, port_topics
from aegis.registry import node_class
from aegis.ros_shell.loop_timing import TimerTiming
from aegis.ros_shell import (
    NodeRunner,
    ParameterError,
    ParamType,
    QosSettings,
    RosUnavailable,
    SimClock,
    apply_parameter_values,
    is_clock_source,
    parameter_descriptors,
    publisher_qos,
    rclpy_missing_message,
    relative_topic,
    startup_error,
    subscription_qos,
    timer_period_s,
)


CLOCK_TYPE = "rosgraph_msgs/msg/Clock"
DIAGNOSTICS_TOPIC = "/diagnostics"


def import_rclpy(distro: str) -> ModuleType:
    """rclpy, or RosUnavailable with the message telling the user what to source."""
    try:
        import rclpy
    except ImportError as exc:
        raise RosUnavailable(rclpy_missing_message(distro, exc)) from None
    return rclpy


class RosNodeHost:
    """One aegis node inside one rclpy node: its parameters, endpoints, timer and step runner."""

    ros_node: Any
    runner: NodeRunner

    def __init__(self, launch: NodeLaunch, plan: LaunchPlan, types: TypeLookup) -> None:
        from rclpy.node import Node as RclpyNode
        from rclpy.parameter import Parameter

        # The simulator of a use_sim_time plan is the clock: it runs on the wall clock and publishes /clock.
        self._sim_clock = SimClock(launch.rate_hz) if is_clock_source(plan, launch) else None
        self.ros_node = RclpyNode(
            launch.name,
            namespace=plan.namespace or None,
            parameter_overrides=[Parameter("use_sim_time", value=plan.use_sim_time and self._sim_clock is None)],
        )
        try:
            self._build(launch, types)
        except BaseException:
            self.ros_node.destroy_node()
            raise

    def _build(self, launch: NodeLaunch, types: TypeLookup) -> None:
        node = dataclasses.replace(launch, params=self._declare_parameters(launch)).instantiate()
        node.reset()
        logger = self.ros_node.get_logger()
        self.runner = NodeRunner(node, types, log_error=logger.error)
        self._clock = self.ros_node.get_clock()
        self._publishers = {
            port.name: tuple(
                self.ros_node.create_publisher(types(port.msg_type.ROS_TYPE), relative_topic(topic), _qos_profile(publisher_qos(port)))
                for topic in port_topics(node.topics[port.name])
            )
            for port in node.outputs
        }
        self._many_outputs = {port.name for port in node.outputs if port.many}
        self._subscriptions = [
            self.ros_node.create_subscription(
                types(port.msg_type.ROS_TYPE),
                relative_topic(topic),
                self._on_message_callback(port.name, index if port.many else None),
                _qos_profile(subscription_qos(port)),
            )
            for port in node.inputs
            for index, topic in enumerate(port_topics(node.topics[port.name]))
        ]
        self._timer = None if node.trigger else self.ros_node.create_timer(timer_period_s(node.rate_hz), self._on_timer)
        # what the node's timer keeps: LoopDiagnostics on /diagnostics once a second (the simulator's timer is on the wall clock)
        self.timing = None if node.trigger else TimerTiming(node.name, node.rate_hz, self._clock.now().nanoseconds)
        self._diagnostics = None
        if self.timing is not None:
            qos = _qos_profile(QosSettings(depth=10, reliability="reliable"))
            self._diagnostics = self.ros_node.create_publisher(types(LoopDiagnostics.ROS_TYPE), relative_topic(DIAGNOSTICS_TOPIC), qos)
        self._clock_publisher = None
        self._types = types
        if self._sim_clock is not None:
            clock_qos = _qos_profile(QosSettings(depth=1, reliability="reliable"))  # what ros2 bag play --clock offers
            self._clock_publisher = self.ros_node.create_publisher(types(CLOCK_TYPE), "/clock", clock_qos)
            logger.info(f"{node.name} publishes /clock: simulated time advances one {1e3 / node.rate_hz:g} ms step per tick")
        logger.info(_summary(node))

    def destroy(self) -> None:
        self.ros_node.destroy_node()

    def _declare_parameters(self, launch: NodeLaunch) -> dict[str, Any]:
        """Declare the node's read-only parameters; start-up overrides come back validated as plan params."""
        from rcl_interfaces.msg import ParameterDescriptor
        from rclpy.parameter import Parameter

        params_cls = node_class(launch.type_name).Params
        values: dict[str, Any] = {}
        for d in parameter_descriptors(params_cls, launch.params):
            descriptor = ParameterDescriptor(
                name=d.name,
                type=int(d.type),
                description=d.description,
                additional_constraints=d.constraints,
                read_only=d.read_only,
                dynamic_typing=d.type == ParamType.NOT_SET,
            )
            if isinstance(d.value, tuple):
                # An empty list would be inferred as a byte array: declare the type instead.
                value: Any = list(d.value) if d.value else Parameter.Type(int(d.type))
            else:
                value = d.value
            try:
                values[d.name] = self.ros_node.declare_parameter(d.name, value, descriptor).value
            except Exception as exc:  # noqa: BLE001 - rclpy's type errors, reported as the parameter's
                raise ParameterError(f"node {launch.name!r}: parameter {d.name}: {exc}") from None
        return apply_parameter_values(params_cls, launch.params, values, node_name=launch.name)

    def _now_ns(self) -> int:
        return self._sim_clock.now_ns if self._sim_clock is not None else self._clock.now().nanoseconds

    def _on_timer(self) -> None:
        timer_ns = self._clock.now().nanoseconds  # the timer's clock: ROS time, or the wall for the simulator
        started = time.perf_counter_ns()
        if self._sim_clock is None:
            self._step(timer_ns)
        else:
            now_ns = self._sim_clock.advance()
            self._step(now_ns)
            clock = self._types(CLOCK_TYPE)(clock=time_to_ros(self._types, now_ns / 1e9))
            self._clock_publisher.publish(clock)
        report = self.timing.record(timer_ns, time.perf_counter_ns() - started)
        if report is not None:
            self._diagnostics.publish(report.to_ros(self._types))

    def _on_message_callback(self, port_name: str, index: int | None):
        trigger = port_name == self.runner.node.trigger

        def on_message(ros_msg: Any) -> None:
            now_ns = self._now_ns()
            if self.runner.receive(port_name, ros_msg, now_ns, index) and trigger:
                self._step(now_ns)

        return on_message

    def _step(self, now_ns: int) -> None:
        outputs = self.runner.tick(now_ns)
        if outputs is None:
            return
        for port_name, ros_msg in outputs.items():
            publishers = self._publishers[port_name]
            if port_name not in self._many_outputs:
                publishers[0].publish(ros_msg)
                continue
            for publisher, one in zip(publishers, ros_msg):  # one message (or None) per topic
                if one is not None:
                    publisher.publish(one)


def _qos_profile(settings: QosSettings) -> Any:
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        history=getattr(HistoryPolicy, settings.history.upper()),
        depth=settings.depth,
        reliability=getattr(ReliabilityPolicy, settings.reliability.upper()),
        durability=getattr(DurabilityPolicy, settings.durability.upper()),
    )


def _summary(node: Node) -> str:
    timing = f"on {node.trigger}" if node.trigger else f"{node.rate_hz:g} Hz"
    subs = ", ".join(f"{t} (depth {p.depth})" for p in node.inputs for t in port_topics(node.topics[p.name])) or "nothing"
    pubs = ", ".join(f"{t} (depth {p.depth})" for p in node.outputs for t in port_topics(node.topics[p.name])) or "nothing"
    return f"{node.name} ({node.type_name}) runs {timing}; subscribes {subs}; publishes {pubs}"


def run(launches: Sequence[NodeLaunch], plan: LaunchPlan, ros_args: Sequence[str], types: TypeLookup | None = None) -> int:
    """Host ``launches`` in this process until Ctrl-C or a ROS shutdown; returns the exit code.

    What fails while starting (rclpy refusing ``ros_args``, a message package that is not installed,
    a parameter override of a type rclpy refuses) is a RosStartupError naming the stage, after
    whatever was created is destroyed: the executable prints it in one line, exit code 2.

    The executor arrangement (chosen against rclpy's executors.py and rcl's timer.c, jazzy): every
    node spins on its own SingleThreadedExecutor, in its own thread when the process hosts several
    (the main thread spins a process of one). Not a shared MultiThreadedExecutor: there one thread
    waits for every node's entities and hands ready callbacks to a pool, and an entity whose
    callback group is busy (each node's default group is mutually exclusive: timer, subscriptions
    and parameter services alike) is left out of the wait set until the callback ends, with
    nothing to wake the waiting thread when it does. That is rclpy#1223's pattern: high CPU, timers
    that hang or fire late. With one executor per node, a node's wait set holds only its own
    entities, its callbacks run one at a time in its thread (a node never runs concurrently with
    itself), and one node's long step (an MPC solve, an inference) delays only that node's
    callbacks. rclpy has no intra-process transport: composition saves processes, not
    serialisation.
    """
    rclpy = import_rclpy(plan.ros_distro)
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    try:
        rclpy.init(args=[sys.argv[0], *ros_args])
    except Exception as exc:  # noqa: BLE001 - rclpy's own argument errors (RCLInvalidROSArgsError, ...): one line
        raise startup_error(" ".join(ros_args) or "rclpy.init", exc) from None
    lookup = types or rclpy_types()
    hosts: list[RosNodeHost] = []
    executors: list[Any] = []
    try:
        for launch in launches:
            try:
                hosts.append(RosNodeHost(launch, plan, lookup))
            except ParameterError:
                raise
            except Exception as exc:  # noqa: BLE001 - a missing message package, a parameter type rclpy refuses: one line
                raise startup_error(f"node {launch.name}", exc) from None
        for host in hosts:
            executor = SingleThreadedExecutor()
            executor.add_node(host.ros_node)
            executors.append(executor)
        _spin_all(executors, [launch.name for launch in launches], ExternalShutdownException)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for executor in executors:
            executor.shutdown()
        for host in hosts:
            host.destroy()
        rclpy.try_shutdown()
    return 0


def _spin_all(executors: Sequence[Any], names: Sequence[str], shutdown: type[BaseException]) -> None:
    """Spin one executor here, or each in a thread of its own until all have stopped (the first failure is raised here)."""
    if len(executors) == 1:
        executors[0].spin()
        return
    failures: list[BaseException] = []

    def spin(executor: Any) -> None:
        try:
            executor.spin()
        except shutdown:
            pass
        except BaseException as exc:  # noqa: BLE001 - raised again in the main thread, after the others stop
            failures.append(exc)
            for other in executors:
                other.shutdown()

    threads = [threading.Thread(target=spin, args=(executor,), name=f"aegis:{name}", daemon=True) for executor, name in zip(executors, names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)  # a timed join keeps the main thread responsive to Ctrl-C
    if failures:
        raise failures[0]
