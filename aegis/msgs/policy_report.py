"""PolicyReport: what a policy node did on one tick, on diagnostic_msgs/DiagnosticArray (a skipped nominal is never silent).

One DiagnosticStatus, as the other reports (aegis.msgs.diagnostics): level OK when the policy
proposed a nominal, WARN when it did not (odometry unusable, or its observation or action not
finite), ERROR when inference failed. The values give the last inference's latency and the
running counts, so `ros2 topic echo` or rqt_robot_monitor shows a policy's health on a robot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from aegis.msgs.diagnostics import ERROR, OK, WARN, _parse_bool, _parse_float, _parse_int, _require, _single_status, diagnostic_array_to_ros
from aegis.msgs.ros_types import TypeLookup

REASONS = ("ok", "lost_state", "nonfinite", "error")
"""Why a tick proposed what it did: a nominal (ok), or none, and why."""


@dataclass(slots=True, kw_only=True)
class PolicyReport:
    """One tick of a policy node: whether it proposed a nominal, why not, the inference latency and the counts so far."""

    ROS_TYPE: ClassVar[str] = "diagnostic_msgs/msg/DiagnosticArray"
    KEYS: ClassVar[tuple[str, ...]] = ("proposed", "reason", "latency_s", "ticks", "no_nominal_ticks", "providers")
    MEASURED: ClassVar[tuple[str, ...]] = ("latency_s",)
    """Fields measured on the wall clock: replay reports, never compares them."""

    stamp: float = 0.0
    frame_id: str = ""
    name: str = "policy"
    proposed: bool = True
    reason: str = "ok"
    latency_s: float = 0.0
    ticks: int = 0
    no_nominal_ticks: int = 0
    providers: str = ""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.stamp = float(self.stamp)
        self.proposed = bool(self.proposed)
        self.latency_s = float(self.latency_s)
        if self.reason not in REASONS:
            raise ValueError(f"{owner}.reason: expected one of {', '.join(REASONS)}, got {self.reason!r}")
        if self.proposed != (self.reason == "ok"):
            raise ValueError(f"{owner}: proposed is {self.proposed} but reason is {self.reason!r}")
        for name in ("ticks", "no_nominal_ticks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{owner}.{name}: expected a non-negative int, got {value!r}")

    @classmethod
    def of_typed(
        cls, stamp: float, name: str, reason: str, latency_s: float, ticks: int, no_nominal_ticks: int, providers: str
    ) -> PolicyReport:
        """A report (no frame; proposed when ``reason`` is "ok") from values that already have their types (a reason of
        REASONS, float latency, non-negative int counts), skipping __post_init__'s checks: for the policy's every tick;
        anything else goes through the checked constructor."""
        report = object.__new__(cls)
        report.stamp, report.frame_id, report.name, report.proposed, report.reason = float(stamp), "", name, reason == "ok", reason
        report.latency_s, report.ticks, report.no_nominal_ticks, report.providers = latency_s, ticks, no_nominal_ticks, providers
        return report

    @property
    def level(self) -> int:
        """OK when a nominal went out, ERROR when inference failed, WARN otherwise."""
        return OK if self.proposed else ERROR if self.reason == "error" else WARN

    def to_ros(self, types: TypeLookup) -> Any:
        """diagnostic_msgs/msg/DiagnosticArray with one status."""
        what = f"proposed a nominal in {self.latency_s * 1e6:.1f} µs" if self.proposed else f"no nominal ({self.reason})"
        return diagnostic_array_to_ros(
            types,
            self.stamp,
            self.frame_id,
            level=self.level,
            name=self.name,
            message=f"{what}; {self.no_nominal_ticks} of {self.ticks} ticks without one",
            values=[
                ("proposed", repr(self.proposed)),
                ("reason", self.reason),
                ("latency_s", repr(self.latency_s)),
                ("ticks", str(self.ticks)),
                ("no_nominal_ticks", str(self.no_nominal_ticks)),
                ("providers", self.providers),
            ],
        )

    @classmethod
    def from_ros(cls, ros_msg: Any) -> PolicyReport:
        """From a DiagnosticArray written by to_ros; ValueError naming a missing or malformed key."""
        owner = cls.__name__
        stamp, frame_id, status, values = _single_status(owner, ros_msg)
        _require(owner, values, cls.KEYS)
        return cls(
            stamp=stamp,
            frame_id=frame_id,
            name=str(status.name),
            proposed=_parse_bool(owner, "proposed", values["proposed"]),
            reason=values["reason"],
            latency_s=_parse_float(owner, "latency_s", values["latency_s"]),
            ticks=_parse_int(owner, "ticks", values["ticks"]),
            no_nominal_ticks=_parse_int(owner, "no_nominal_ticks", values["no_nominal_ticks"]),
            providers=values["providers"],
        )
