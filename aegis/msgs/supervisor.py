"""The supervisor's messages: an e-stop input on std_msgs/Bool and its status on diagnostic_msgs/DiagnosticArray.

``EStop`` is what a person, a remote or a watchdog publishes to stop the robot (``data`` true:
engaged). std_msgs/msg/Bool has no header: the stamp is not carried on the wire (the bag's log
time keeps the time), as for ThrustRatesCommand. ``SupervisorStatus`` is one DiagnosticStatus
(as the other reports, aegis.msgs.diagnostics): the state, why the supervisor is in it, and the
running counts; level OK when running, WARN when initialising, armed or degraded, ERROR in estop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from aegis.msgs.diagnostics import ERROR, OK, WARN, _parse_bool, _parse_int, _require, _single_status, diagnostic_array_to_ros
from aegis.msgs.ros_types import TypeLookup

SUPERVISOR_STATES = ("init", "armed", "running", "degraded", "estop")
"""The supervisor's states, in the order a healthy start goes through the first three."""


@dataclass(slots=True, kw_only=True)
class EStop:
    """An e-stop signal: ``engaged`` true stops the robot (std_msgs/msg/Bool ``data``)."""

    ROS_TYPE: ClassVar[str] = "std_msgs/msg/Bool"

    stamp: float = 0.0
    frame_id: str = ""
    engaged: bool = False

    def __post_init__(self) -> None:
        self.stamp = float(self.stamp)
        if not isinstance(self.engaged, bool):
            raise ValueError(f"EStop.engaged: expected a bool, got {self.engaged!r}")

    def to_ros(self, types: TypeLookup) -> Any:
        return types(self.ROS_TYPE)(data=self.engaged)

    @classmethod
    def from_ros(cls, ros_msg: Any) -> EStop:
        return cls(engaged=bool(ros_msg.data))


@dataclass(slots=True, kw_only=True)
class SupervisorStatus:
    """One tick of the supervisor: its state, the reason, whether it passed the command, and its counts so far."""

    ROS_TYPE: ClassVar[str] = "diagnostic_msgs/msg/DiagnosticArray"
    KEYS: ClassVar[tuple[str, ...]] = ("state", "reason", "passed", "ticks", "gated_ticks", "transitions")

    stamp: float = 0.0
    frame_id: str = ""
    name: str = "supervisor"
    state: str = "init"
    reason: str = ""
    passed: bool = False
    ticks: int = 0
    gated_ticks: int = 0
    transitions: int = 0

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.stamp = float(self.stamp)
        if self.state not in SUPERVISOR_STATES:
            raise ValueError(f"{owner}.state: expected one of {', '.join(SUPERVISOR_STATES)}, got {self.state!r}")
        if not isinstance(self.passed, bool):
            raise ValueError(f"{owner}.passed: expected a bool, got {self.passed!r}")
        for name in ("ticks", "gated_ticks", "transitions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{owner}.{name}: expected a non-negative int, got {value!r}")

    @classmethod
    def of_typed(
        cls, stamp: float, name: str, state: str, reason: str, passed: bool, ticks: int, gated_ticks: int, transitions: int
    ) -> SupervisorStatus:
        """A status (no frame) from values that already have their types (a state of SUPERVISOR_STATES, a bool, non-negative
        int counts), skipping __post_init__'s checks: for the supervisor's every tick; anything else goes through the
        checked constructor."""
        status = object.__new__(cls)
        status.stamp, status.frame_id, status.name, status.state, status.reason = float(stamp), "", name, state, reason
        status.passed, status.ticks, status.gated_ticks, status.transitions = passed, ticks, gated_ticks, transitions
        return status

    @property
    def level(self) -> int:
        """OK running, ERROR in estop, WARN otherwise (initialising, armed, degraded: never silent)."""
        return OK if self.state == "running" else ERROR if self.state == "estop" else WARN

    def to_ros(self, types: TypeLookup) -> Any:
        """diagnostic_msgs/msg/DiagnosticArray with one status."""
        what = "passing the command" if self.passed else "holding the safe command"
        return diagnostic_array_to_ros(
            types,
            self.stamp,
            self.frame_id,
            level=self.level,
            name=self.name,
            message=f"{self.state}: {what}" + (f" ({self.reason})" if self.reason else ""),
            values=[
                ("state", self.state),
                ("reason", self.reason),
                ("passed", repr(self.passed)),
                ("ticks", str(self.ticks)),
                ("gated_ticks", str(self.gated_ticks)),
                ("transitions", str(self.transitions)),
            ],
        )

    @classmethod
    def from_ros(cls, ros_msg: Any) -> SupervisorStatus:
        """From a DiagnosticArray written by to_ros; ValueError naming a missing or malformed key."""
        owner = cls.__name__
        stamp, frame_id, status, values = _single_status(owner, ros_msg)
        _require(owner, values, cls.KEYS)
        return cls(
            stamp=stamp,
            frame_id=frame_id,
            name=str(status.name),
            state=values["state"],
            reason=values["reason"],
            passed=_parse_bool(owner, "passed", values["passed"]),
            **{k: _parse_int(owner, k, values[k]) for k in ("ticks", "gated_ticks", "transitions")},
        )
