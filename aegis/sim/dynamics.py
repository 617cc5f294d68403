"""Dynamics perturbations: a typed file of plant parameters (values or per-episode ranges) the simulator runs with.

A dynamics file says how the simulated robot differs from the nominal one its controllers and
safety filter are built on (that difference is the model mismatch an evaluation exercises)::

    description: motors twice as slow
    motor_time_constant_scale: 2.0            # a value ...
    mass_scale: {low: 0.7, high: 1.3}         # ... or a range, drawn uniformly per episode seed

Scales multiply the robot's nominal parameters (its hw_config's robot section); latencies are
seconds added to the bridge's own. Every key is optional (omitted: nominal); an unknown key, a
non-positive scale or a negative latency is refused with the file and the key named. What each
key means for each robot:

==============================  =======================================  ======================================
key                             quadrotor (sim_bridge)                   ground robot (diff_drive_sim_bridge)
==============================  =======================================  ======================================
mass_scale                      body mass                                total mass (the chassis takes it)
inertia_scale                   principal inertia                        chassis inertia (after the mass scale)
motor_time_constant_scale       rotor speed lag (nominal 25 ms)          wheel speed lag (nominal 50 ms)
thrust_coeff_scale              kf: thrust and roll/pitch torque         no meaning (no thrust): must stay 1
torque_coeff_scale              km: rotor drag (yaw) torque              wheel motors' torque limit
drag_scale                      rotor (induced) drag coefficients        no meaning (no aero model): must stay 1
sensing_latency_s               every sensor message published later     the same
actuation_latency_s             rotor commands reach the motors later    wheel commands reach the wheels later
sensor_noise_scale              the config's odometry and IMU noise      its odometry noise
==============================  =======================================  ======================================

Composition with a scenario's own randomisation (``randomization:``, on in ``aegis eval``): both
are drawn, each from its own random stream of the episode seed, and combined: scales multiply
(the scenario's ``motor_constant_scale`` multiplies both ``thrust_coeff_scale`` and
``torque_coeff_scale``), latencies add, noise scales multiply. So ``--dynamics heavy`` on a
scenario that draws mass in [0.9, 1.1] flies masses in [1.17, 1.43]. The same seed draws the
same values; a fixed value still takes its draw, so narrowing one range never moves another's.

Shipped sets (``aegis sim|eval --dynamics NAME``): the repository's ``dynamics/`` folder,
installed to share/aegis/dynamics.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from aegis.config_files import ConfigError, format_errors, pydantic_errors, read_yaml_mapping
from aegis.paths import share_dir
from aegis.scenario.schema import LatencyRange, NonNegativeRange, ScaleRange

DYNAMICS_FOLDER = "dynamics"
"""share/aegis/<this> holds the shipped dynamics sets (the repository's dynamics/ folder)."""

DYNAMICS_STREAM = 2
"""The dynamics draw uses ``default_rng([seed, DYNAMICS_STREAM])``: a stream of its own, apart from the scenario's and the sensors'."""


def _value_or_range(value: Any) -> Any:
    """A plain number ``v`` is the range ``{low: v, high: v}``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"low": value, "high": value}
    return value


Scale = Annotated[ScaleRange, BeforeValidator(_value_or_range)]
Seconds = Annotated[LatencyRange, BeforeValidator(_value_or_range)]
NoiseScale = Annotated[NonNegativeRange, BeforeValidator(_value_or_range)]


class Dynamics(BaseModel):
    """One dynamics set: each parameter a value or a {low, high} range (see the module doc for what each means)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    description: str = Field("", description="what this set is for, in words")
    mass_scale: Scale = Field(1.0, description="x nominal mass")
    inertia_scale: Scale = Field(1.0, description="x nominal inertia")
    motor_time_constant_scale: Scale = Field(1.0, description="x nominal motor (rotor or wheel) time constant")
    thrust_coeff_scale: Scale = Field(1.0, description="x nominal thrust coefficient kf (quadrotor)")
    torque_coeff_scale: Scale = Field(1.0, description="x nominal torque coefficient: km (quadrotor), wheel torque limit (ground)")
    drag_scale: Scale = Field(1.0, description="x nominal rotor drag coefficients (quadrotor)")
    sensing_latency_s: Seconds = Field(0.0, description="added sensing latency (s)")
    actuation_latency_s: Seconds = Field(0.0, description="added actuation latency: commands reach the actuators this much later (s)")
    sensor_noise_scale: NoiseScale = Field(1.0, description="x the config's sensor noise")

    def draw(self, seed: int | None) -> DynamicsDraw:
        """One value per parameter (uniform in its range; a fixed one is its value), from the seed's own stream."""
        rng = np.random.default_rng(None if seed is None else [seed, DYNAMICS_STREAM])
        return DynamicsDraw(**{name: float(rng.uniform(getattr(self, name).low, getattr(self, name).high)) for name in PARAMETERS})


@dataclass(frozen=True, slots=True)
class DynamicsDraw:
    """One episode's perturbation, a value per :class:`Dynamics` parameter (the defaults: nothing perturbed).

    The simulator bridges read it field by field (aegis.nodes.sim_bridge and its robots' bridges).
    """

    mass_scale: float = 1.0
    inertia_scale: float = 1.0
    motor_time_constant_scale: float = 1.0
    thrust_coeff_scale: float = 1.0
    torque_coeff_scale: float = 1.0
    drag_scale: float = 1.0
    sensing_latency_s: float = 0.0
    actuation_latency_s: float = 0.0
    sensor_noise_scale: float = 1.0

    def as_dict(self) -> dict[str, float]:
        """The values by parameter name, in draw order (what a summary records)."""
        return asdict(self)


PARAMETERS: tuple[str, ...] = tuple(name for name in Dynamics.model_fields if name != "description")
"""The drawn parameters, in declaration (draw) order: DynamicsDraw's fields (tests/sim/test_dynamics.py holds them equal)."""

NOMINAL = DynamicsDraw()
"""What every parameter is when nothing perturbs it."""


def load_dynamics(path: str | Path) -> Dynamics:
    """Load and validate a dynamics file; ConfigError naming the file and each bad key."""
    path = Path(path)
    raw = read_yaml_mapping(path)
    try:
        return Dynamics.model_validate(raw)
    except ValidationError as exc:
        errors = pydantic_errors(exc, Dynamics)
        for name, value in raw.items():  # a plain number is the range {low: v, high: v}: its problem once, at its key
            low = next((msg for key, msg in errors if key == f"{name}.low"), None)
            if isinstance(value, (int, float)) and low is not None:
                errors = [(name if key == f"{name}.low" else key, msg) for key, msg in errors if (key, msg) != (f"{name}.high", low)]
        raise ConfigError(format_errors(path, errors)) from None


def shipped_dynamics_names() -> list[str]:
    """The stems of the shipped dynamics sets, sorted."""
    return sorted(p.stem for p in (share_dir() / DYNAMICS_FOLDER).glob("*.yaml"))


def resolve_dynamics(name: str | Path) -> Path:
    """A dynamics file as given if it exists, else a shipped set of that name; ConfigError listing them otherwise."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = share_dir() / DYNAMICS_FOLDER / f"{str(name).removesuffix('.yaml')}.yaml"
    if shipped.is_file():
        return shipped
    names = shipped_dynamics_names()
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ConfigError(f"{name}: no such dynamics file, nor a shipped set{hint} (shipped: {', '.join(names)})")


def plant_overrides(config: Any, dynamics: str | Path | None) -> list[str]:
    """The config override giving ``config``'s plant (its first node) the dynamics set or file ``dynamics`` (none for None).

    ConfigError naming a bad set (with the shipped ones), or a bad file and its key, in one line.
    """
    if dynamics is None:
        return []
    path = resolve_dynamics(dynamics).resolve()
    load_dynamics(path)
    plant, node = next(iter(config.nodes.items()))  # the simulator is listed first
    from aegis.registry import node_class

    if "dynamics" not in node_class(node.type).Params.model_fields:
        raise ConfigError(f"--dynamics {dynamics}: the plant {plant!r} ({node.type}) takes no dynamics perturbations")
    return [f"nodes.{plant}.params.dynamics={path}"]
