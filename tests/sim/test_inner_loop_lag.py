"""The quadrotor filter's plant model tells the truth about the shipped inner loop (PyBullet, closed loop).

The shipped configs declare ``actuator_lag_s`` and ``actuator_delay_s`` for the safety filter: how the
240 Hz attitude loop realises a commanded acceleration. Here the default chain flies its figure-8, every command the
filter sends and the simulator's true acceleration are recorded, and the declared first-order
lag must explain the true acceleration far better than "it happens at once" (the assumption that
let the filter collide in clutter), and about as well as the best lag fitted to the same data.
"""

from __future__ import annotations

import numpy as np
import pytest

from aegis.config import load_config
from aegis.launch_plan import make_plan
from aegis.paths import shipped_config
from aegis.runs.plan_run import run_plan


def _lag_error(times: np.ndarray, commands: np.ndarray, accelerations: np.ndarray, tau: float, delay: float = 0.0) -> float:
    """RMS error of a first-order lag of the commands (held between ticks, ``delay`` late) against the measured acceleration."""
    dt = np.diff(times, prepend=times[0])
    commands = np.interp(times - delay, times, commands, left=0.0)
    model = np.zeros_like(commands)
    for k in range(1, len(times)):
        model[k] = model[k - 1] + (commands[k - 1] - model[k - 1]) * (1.0 - np.exp(-dt[k] / tau))
    return float(np.sqrt(np.mean((model - accelerations) ** 2)))


@pytest.fixture(scope="module")
def flight():
    plan = make_plan(load_config(shipped_config("quadrotor_oracle_sim"), []))
    filter_node = next(n for n in plan.nodes if n.type_name == "safety_filter")
    commands: list[tuple[float, np.ndarray]] = []
    truth: list[tuple[float, np.ndarray]] = []

    def listener(topic: str, msg, t_ns: int) -> None:
        if topic == filter_node.outputs["command"]:
            commands.append((t_ns / 1e9, msg.linear.copy()))

    def prepare(nodes) -> None:
        sim = nodes[0]
        step = sim.step

        def recorded(now, inputs):
            out = step(now, inputs)
            truth.append((now + sim.world.dt, sim.world.state().velocity_world))
            return out

        sim.step = recorded

    run_plan(plan, 12.0, 0, [listener], prepare=prepare)
    times = np.array([t for t, _ in truth])
    accelerations = np.gradient(np.array([v for _, v in truth]), times, axis=0)
    command_times = np.array([t for t, _ in commands])
    index = np.searchsorted(command_times, times, side="right") - 1
    held = np.where((index >= 0)[:, None], np.array([u for _, u in commands])[np.clip(index, 0, None)], 0.0)
    settled = times > 1.0
    params = filter_node.params
    return times[settled], held[settled], accelerations[settled], params["actuator_lag_s"], params["actuator_delay_s"]


def test_the_declared_lag_explains_the_true_acceleration(flight):
    times, commands, accelerations, declared, delay = flight
    for axis in (0, 1):  # the horizontal axes: what the attitude loop realises by tilting
        at_once = _lag_error(times, commands[:, axis], accelerations[:, axis], 1e-4)
        with_lag = _lag_error(times, commands[:, axis], accelerations[:, axis], declared[axis], delay[axis])
        best = min(
            _lag_error(times, commands[:, axis], accelerations[:, axis], tau, dead)
            for tau in np.arange(0.05, 0.3, 0.01) for dead in np.arange(0.0, 0.1, 0.01)
        )
        assert with_lag < 0.5 * at_once, f"axis {axis}: the lag model explains little ({with_lag:.3f} vs {at_once:.3f} m/s^2)"
        assert with_lag < 1.15 * best, f"axis {axis}: a lag of {declared[axis]} s after {delay[axis]} s is off the best fit ({with_lag:.3f} vs {best:.3f})"
