"""Reports on diagnostic_msgs/DiagnosticArray: SafetyFilterReport and LoopDiagnostics.

Each report is one DiagnosticStatus (hardware_id "aegis") whose KeyValue pairs hold every field
as text that parses back to the same value: floats as ``repr(float(x))`` (exact for float64),
arrays as comma-separated reprs, booleans as "True"/"False", integers in decimal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from aegis.msgs.fields import as_array
from aegis.msgs.ros_types import TypeLookup, byte_value, read_byte
from aegis.msgs.stamp import header_from_ros, header_to_ros

OK, WARN, ERROR = 0, 1, 2
HARDWARE_ID = "aegis"
_DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"


def _float_text(x: float) -> str:
    return repr(float(x))


def _floats_text(values: np.ndarray) -> str:
    return ",".join(repr(float(v)) for v in values)


def _bools_text(values: np.ndarray) -> str:
    return ",".join(repr(bool(v)) for v in values)


def _parse_bool(owner: str, key: str, text: str) -> bool:
    if text not in ("True", "False"):
        raise ValueError(f"{owner}: key {key!r} must be 'True' or 'False', got {text!r}")
    return text == "True"


def _parse_float(owner: str, key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{owner}: key {key!r} is not a float: {text!r}") from None


def _parse_int(owner: str, key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{owner}: key {key!r} is not an integer: {text!r}") from None


def _split(text: str) -> list[str]:
    return text.split(",") if text else []


def diagnostic_array_to_ros(
    types: TypeLookup,
    stamp: float,
    frame_id: str,
    *,
    level: int,
    name: str,
    message: str,
    values: Sequence[tuple[str, str]],
) -> Any:
    """A diagnostic_msgs/msg/DiagnosticArray holding one DiagnosticStatus."""
    status_cls = types("diagnostic_msgs/msg/DiagnosticStatus")
    key_value = types("diagnostic_msgs/msg/KeyValue")
    status = status_cls(
        level=byte_value(status_cls, level),
        name=name,
        message=message,
        hardware_id=HARDWARE_ID,
        values=[key_value(key=k, value=v) for k, v in values],
    )
    return types(_DIAGNOSTIC_ARRAY)(header=header_to_ros(types, stamp, frame_id), status=[status])


def _single_status(owner: str, ros_msg: Any) -> tuple[float, str, Any, dict[str, str]]:
    """(stamp, frame_id, the one status, its key -> value) of a DiagnosticArray."""
    statuses = list(ros_msg.status)
    if len(statuses) != 1:
        raise ValueError(f"{owner}: expected a DiagnosticArray with one status, got {len(statuses)}")
    status = statuses[0]
    stamp, frame_id = header_from_ros(ros_msg.header)
    return stamp, frame_id, status, {str(kv.key): str(kv.value) for kv in status.values}


def _require(owner: str, values: dict[str, str], keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in values]
    if missing:
        raise ValueError(f"{owner}: DiagnosticStatus lacks key(s) {', '.join(missing)}")


@dataclass(slots=True, kw_only=True)
class SafetyFilterReport:
    """What the safety filter did on one step.

    ``layer`` is the layer whose command went out ("qp", "relaxed_qp", "backup", "estop", ...);
    ``h`` the barrier values (>= 0 is safe), ``active`` which constraints were active, ``slack``
    the relaxation used, ``solve_time_s`` the solver's time. ``model_residual_mps2`` is how far the
    measured acceleration is from what the filter's plant model predicts (low-passed; 0 without a
    model) and ``model_warning`` says when that model's assumption is violated. ``perception_age_s`` is
    how old the obstacles the filter used are, from their stamp (when they were measured) to the
    tick (NaN: none received, or no obstacle source). The status level is
    OK on the "qp" layer without a model warning, ERROR on "estop" and WARN otherwise (a fallback,
    or a plant unlike the model, is never silent). The two model keys and the perception age are
    optional when reading.
    """

    ROS_TYPE: ClassVar[str] = _DIAGNOSTIC_ARRAY
    KEYS: ClassVar[tuple[str, ...]] = ("layer", "intervened", "h", "active", "slack", "solver_status", "solve_time_s")
    MEASURED: ClassVar[tuple[str, ...]] = ("solve_time_s",)
    """Fields measured on the wall clock: they differ between two runs of the same inputs (replay reports, never compares them)."""

    stamp: float = 0.0
    frame_id: str = ""
    name: str = "safety_filter"
    layer: str = "qp"
    intervened: bool = False
    h: np.ndarray = field(default_factory=lambda: np.zeros(0))
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    slack: float = 0.0
    solver_status: str = ""
    solve_time_s: float = 0.0
    model_residual_mps2: float = 0.0
    model_warning: str = ""
    perception_age_s: float = math.nan

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.stamp = float(self.stamp)
        self.model_residual_mps2 = float(self.model_residual_mps2)
        self.perception_age_s = float(self.perception_age_s)
        self.intervened = bool(self.intervened)
        self.h = as_array(owner, "h", self.h, (None,))
        self.active = as_array(owner, "active", self.active, (None,), bool)
        self.slack = float(self.slack)
        self.solve_time_s = float(self.solve_time_s)

    @classmethod
    def of_typed(
        cls, name: str, layer: str, intervened: bool, h: np.ndarray, active: np.ndarray, slack: float, solver_status: str, solve_time_s: float
    ) -> SafetyFilterReport:
        """A report (stamp 0, no frame) from values that already have their types, skipping __post_init__'s conversions.

        For the safety filter's every tick (the checked constructor costs about 2 µs): ``h`` a float64
        and ``active`` a bool 1-D array, ``intervened`` a bool, ``slack`` and ``solve_time_s`` floats.
        Anything else goes through the normal constructor.
        """
        report = object.__new__(cls)
        report.stamp, report.frame_id, report.name, report.layer, report.intervened = 0.0, "", name, layer, intervened
        report.h, report.active, report.slack, report.solver_status, report.solve_time_s = h, active, slack, solver_status, solve_time_s
        report.model_residual_mps2, report.model_warning, report.perception_age_s = 0.0, "", math.nan
        return report

    @property
    def level(self) -> int:
        """DiagnosticStatus level: OK on "qp" with no model warning, ERROR on "estop", WARN otherwise."""
        return ERROR if self.layer == "estop" else OK if self.layer == "qp" and not self.model_warning else WARN

    def to_ros(self, types: TypeLookup) -> Any:
        """diagnostic_msgs/msg/DiagnosticArray with one status."""
        action = "corrected the command" if self.intervened else "passed the command through"
        return diagnostic_array_to_ros(
            types,
            self.stamp,
            self.frame_id,
            level=self.level,
            name=self.name,
            message=f"{self.layer} layer {action} (solver: {self.solver_status or 'n/a'})"
            + (f"; {self.model_warning}" if self.model_warning else ""),
            values=[
                ("layer", self.layer),
                ("intervened", repr(self.intervened)),
                ("h", _floats_text(self.h)),
                ("active", _bools_text(self.active)),
                ("slack", _float_text(self.slack)),
                ("solver_status", self.solver_status),
                ("solve_time_s", _float_text(self.solve_time_s)),
                ("model_residual_mps2", _float_text(self.model_residual_mps2)),
                ("model_warning", self.model_warning),
                ("perception_age_s", _float_text(self.perception_age_s)),
            ],
        )

    @classmethod
    def from_ros(cls, ros_msg: Any) -> SafetyFilterReport:
        """From a DiagnosticArray written by to_ros; ValueError naming a missing or malformed key."""
        owner = cls.__name__
        stamp, frame_id, status, values = _single_status(owner, ros_msg)
        _require(owner, values, cls.KEYS)
        return cls(
            stamp=stamp,
            frame_id=frame_id,
            name=str(status.name),
            layer=values["layer"],
            intervened=_parse_bool(owner, "intervened", values["intervened"]),
            h=np.array([_parse_float(owner, "h", t) for t in _split(values["h"])], dtype=np.float64),
            active=np.array([_parse_bool(owner, "active", t) for t in _split(values["active"])], dtype=bool),
            slack=_parse_float(owner, "slack", values["slack"]),
            solver_status=values["solver_status"],
            solve_time_s=_parse_float(owner, "solve_time_s", values["solve_time_s"]),
            model_residual_mps2=_parse_float(owner, "model_residual_mps2", values.get("model_residual_mps2", "0")),
            model_warning=values.get("model_warning", ""),
            perception_age_s=_parse_float(owner, "perception_age_s", values.get("perception_age_s", "nan")),
        )


@dataclass(slots=True, kw_only=True)
class LoopDiagnostics:
    """Timing of one periodic loop: its period, step durations (s), deadline misses and level 0/1/2."""

    ROS_TYPE: ClassVar[str] = _DIAGNOSTIC_ARRAY
    KEYS: ClassVar[tuple[str, ...]] = (
        "period_s", "last_duration_s", "p50_duration_s", "p99_duration_s", "deadline_misses", "ticks",
    )
    MEASURED: ClassVar[tuple[str, ...]] = ("last_duration_s", "p50_duration_s", "p99_duration_s", "deadline_misses", "level")
    """Fields measured on the wall clock (and what follows from them): replay reports, never compares them."""

    stamp: float = 0.0
    frame_id: str = ""
    name: str = "loop"
    period_s: float = 0.0
    last_duration_s: float = 0.0
    p50_duration_s: float = 0.0
    p99_duration_s: float = 0.0
    deadline_misses: int = 0
    ticks: int = 0
    level: int = OK

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.stamp = float(self.stamp)
        for name in ("period_s", "last_duration_s", "p50_duration_s", "p99_duration_s"):
            setattr(self, name, float(getattr(self, name)))
        for name in ("deadline_misses", "ticks"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{owner}.{name}: expected a non-negative int, got {value!r}")
            setattr(self, name, int(value))
        if self.level not in (OK, WARN, ERROR):
            raise ValueError(f"{owner}.level: expected 0 (OK), 1 (WARN) or 2 (ERROR), got {self.level!r}")
        self.level = int(self.level)

    def to_ros(self, types: TypeLookup) -> Any:
        """diagnostic_msgs/msg/DiagnosticArray with one status."""
        return diagnostic_array_to_ros(
            types,
            self.stamp,
            self.frame_id,
            level=self.level,
            name=self.name,
            message=(
                f"{self.deadline_misses} deadline misses in {self.ticks} ticks, "
                f"p99 {self.p99_duration_s * 1e3:.3f} ms of {self.period_s * 1e3:.3f} ms"
            ),
            values=[
                ("period_s", _float_text(self.period_s)),
                ("last_duration_s", _float_text(self.last_duration_s)),
                ("p50_duration_s", _float_text(self.p50_duration_s)),
                ("p99_duration_s", _float_text(self.p99_duration_s)),
                ("deadline_misses", str(self.deadline_misses)),
                ("ticks", str(self.ticks)),
            ],
        )

    @classmethod
    def from_ros(cls, ros_msg: Any) -> LoopDiagnostics:
        """From a DiagnosticArray written by to_ros; ValueError naming a missing or malformed key."""
        owner = cls.__name__
        stamp, frame_id, status, values = _single_status(owner, ros_msg)
        _require(owner, values, cls.KEYS)
        return cls(
            stamp=stamp,
            frame_id=frame_id,
            name=str(status.name),
            level=read_byte(status.level),
            **{k: _parse_float(owner, k, values[k]) for k in cls.KEYS[:4]},
            deadline_misses=_parse_int(owner, "deadline_misses", values["deadline_misses"]),
            ticks=_parse_int(owner, "ticks", values["ticks"]),
        )
