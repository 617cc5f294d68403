"""The lockstep executor: rates without drift, plan order within an instant, ages and staleness, triggers, determinism."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from aegis.config import load_config
from aegis.executors.lockstep import LockstepExecutor
from aegis.launch_plan import make_plan
from aegis.msgs import AccelCommand, RobotState
from aegis.node import EndRun, Node, Port, Received

REPO = Path(__file__).resolve().parent.parent


def point_mass_nodes(*overrides: str) -> list[Node]:
    return make_plan(load_config(REPO / "hw_configs" / "point_mass_sim.yaml", list(overrides))).instantiate()


class Probe(Node):
    """Test node: records when it ran and what it received on /odom."""

    type_name = "probe"
    inputs = (Port("state", RobotState, "/odom", max_age_s=0.02),)
    outputs = (Port("echo", AccelCommand, "/probe_echo"),)

    def reset(self, seed=None):
        self.calls: list[tuple[float, Received | None]] = []

    def step(self, now: float, inputs: Mapping[str, Received | None]):
        self.calls.append((now, inputs["state"]))
        return {"echo": AccelCommand(stamp=now, frame_id="odom", linear=np.full(3, now))}


class Triggered(Node):
    """Test node: runs on every /probe_echo message instead of a timer."""

    type_name = "triggered"
    inputs = (Port("echo", AccelCommand, "/probe_echo"),)
    trigger = "echo"

    def reset(self, seed=None):
        self.seen: list[tuple[float, float]] = []

    def step(self, now, inputs):
        self.seen.append((now, float(inputs["echo"].msg.linear[0])))
        return {}


def test_pid_closed_loop_reaches_its_setpoint() -> None:
    nodes = point_mass_nodes()
    executor = LockstepExecutor(nodes)
    executor.reset(seed=0)
    executor.run(8.0)
    state, _ = executor.latest("/odom")
    np.testing.assert_allclose(state.position, [1.0, 0.5, 0.0], atol=0.01)
    assert np.linalg.norm(state.linear_velocity) < 0.01


def test_each_node_runs_at_its_own_rate_without_drift() -> None:
    plant = point_mass_nodes("nodes.plant.rate_hz=240")[0]
    probe = Probe("probe", rate_hz=48.0)
    executor = LockstepExecutor([plant, probe])
    executor.reset()
    stats = executor.run(10.0)
    assert stats.steps == {"plant": 2400, "probe": 480}
    times = np.array([t for t, _ in probe.calls])
    np.testing.assert_array_equal(times, [round(k * 1e9 / 48) / 1e9 for k in range(480)])


def test_inputs_carry_their_age_and_staleness() -> None:
    plant = point_mass_nodes("nodes.plant.rate_hz=40")[0]  # publishes every 25 ms
    probe = Probe("probe", rate_hz=100.0)  # runs every 10 ms, bound 20 ms
    executor = LockstepExecutor([plant, probe])
    executor.reset()
    executor.run(0.1)
    ages = [round(r.age_s, 9) for _, r in probe.calls]
    stale = [r.stale for _, r in probe.calls]
    assert ages == [0.0, 0.01, 0.02, 0.005, 0.015, 0.0, 0.01, 0.02, 0.005, 0.015]
    assert stale == [False] * 10  # 20 ms is within the bound
    executor = LockstepExecutor([point_mass_nodes("nodes.plant.rate_hz=30")[0], probe])
    executor.reset()
    executor.run(0.1)
    assert any(r.stale for _, r in probe.calls) and all(r.age_s > 0.02 for _, r in probe.calls if r.stale)


class TightProbe(Probe):
    """A Probe whose instance tightens its input's bound (as a safety filter does from safety.stale_input_timeout_s)."""

    def input_max_age(self, port: Port) -> float | None:
        return 0.012


def test_the_executor_applies_the_instances_own_staleness_bound() -> None:
    plant = point_mass_nodes("nodes.plant.rate_hz=40")[0]  # publishes every 25 ms
    probe = TightProbe("probe", rate_hz=100.0)  # the port says 20 ms, the instance 12 ms
    assert probe.max_ages == {"state": 0.012}
    executor = LockstepExecutor([plant, probe])
    executor.reset()
    executor.run(0.1)
    stale = [r.stale for _, r in probe.calls]
    assert stale == [False, False, True, False, True] * 2  # ages 0, 10, 20, 5, 15 ms


def test_a_missing_input_is_none_and_the_plant_treats_it_as_no_command() -> None:
    probe = Probe("probe", rate_hz=10.0)
    executor = LockstepExecutor([probe])
    executor.reset()
    executor.run(0.3)
    assert [r for _, r in probe.calls] == [None, None, None]
    plant = point_mass_nodes("nodes.plant.params.initial_velocity_mps=[1, 0, 0]")[0]
    executor = LockstepExecutor([plant])
    executor.reset()
    executor.run(1.0)
    state, _ = executor.latest("/odom")
    assert state.position[0] == pytest.approx(0.995)  # coasting: no command, no acceleration


def test_plan_order_decides_who_sees_whom_within_an_instant() -> None:
    plant = point_mass_nodes()[0]
    first = Probe("probe", rate_hz=200.0)
    executor = LockstepExecutor([first, plant])  # probe before the plant: sees the previous state
    executor.reset()
    executor.run(0.02)
    assert first.calls[0][1] is None
    assert [round(r.age_s, 9) for _, r in first.calls[1:]] == [0.005, 0.005, 0.005]


def test_a_triggered_node_runs_right_after_its_input_is_published() -> None:
    probe = Probe("probe", rate_hz=50.0)
    follower = Triggered("follower")
    executor = LockstepExecutor([probe, follower])
    executor.reset()
    stats = executor.run(0.1)
    assert stats.steps["follower"] == 5
    assert follower.seen == [(t, t) for t in (0.0, 0.02, 0.04, 0.06, 0.08)]


def test_same_seed_same_run_bit_for_bit() -> None:
    def trajectory() -> np.ndarray:
        nodes = point_mass_nodes()
        states = []
        executor = LockstepExecutor(nodes, listeners=[lambda topic, msg, t: topic == "/odom" and states.append(msg.position.copy())])
        executor.reset(seed=7)
        executor.run(2.0)
        return np.array(states)

    first, second = trajectory(), trajectory()
    assert first.shape == (400, 3)
    assert first.tobytes() == second.tobytes()


def test_duplicate_node_names_and_undeclared_outputs_are_refused() -> None:
    with pytest.raises(ValueError, match="repeated: probe"):
        LockstepExecutor([Probe("probe", rate_hz=1.0), Probe("probe", rate_hz=1.0)])

    class Liar(Probe):
        def step(self, now, inputs):
            return {"nonsense": AccelCommand(stamp=now, frame_id="odom")}

    executor = LockstepExecutor([Liar("liar", rate_hz=1.0)])
    executor.reset()
    with pytest.raises(KeyError, match="output 'nonsense', which it does not declare"):
        executor.run(1.0)


def test_a_node_needs_a_rate_or_trigger_and_a_real_trigger_port() -> None:
    with pytest.raises(ValueError, match="needs a rate_hz > 0 or a trigger"):
        Probe("probe")

    class BadTrigger(Probe):
        trigger = "nothing"

    with pytest.raises(ValueError, match="trigger 'nothing' is not one of its inputs"):
        BadTrigger("bad", rate_hz=1.0)


class Referee(Node):
    """Test node: publishes its tick count and ends the run at ``stop_at`` seconds, with that tick's output."""

    type_name = "referee"
    outputs = (Port("echo", AccelCommand, "/probe_echo"),)
    stop_at = 0.5

    def reset(self, seed=None):
        self.ticks = 0

    def step(self, now, inputs):
        self.ticks += 1
        outputs = {"echo": AccelCommand(stamp=now, frame_id="odom", linear=np.full(3, now))}
        if now >= self.stop_at:
            raise EndRun("the robot is lost", outputs)
        return outputs


def test_a_node_ends_the_run_early_with_its_last_outputs_published() -> None:
    referee, probe, triggered = Referee("referee", rate_hz=100.0), Probe("probe", rate_hz=100.0), Triggered("triggered")
    executor = LockstepExecutor([referee, probe, triggered])
    executor.reset(seed=0)
    stats = executor.run(2.0)
    assert (stats.ended_by, stats.end_reason) == ("referee", "the robot is lost")
    assert stats.sim_time_s == pytest.approx(0.5)
    assert referee.ticks == 51  # t = 0, 0.01, ..., 0.5: nothing after the instant it ended
    assert stats.steps["referee"] == 51
    assert stats.steps["probe"] == 50  # listed after the referee: its 0.5 s tick never came
    message, published_ns = executor.latest("/probe_echo")
    assert published_ns == 500_000_000 and message.linear[0] == pytest.approx(0.5)  # the ending step's output went out
    assert triggered.seen[-1][0] == pytest.approx(0.5)  # and what it triggered at that instant still ran


def test_a_run_that_is_not_ended_lasts_its_duration_and_says_so() -> None:
    executor = LockstepExecutor([Probe("probe", rate_hz=100.0)])
    executor.reset(seed=0)
    stats = executor.run(0.3)
    assert stats.ended_by is None and stats.end_reason is None and stats.sim_time_s == 0.3
    ended = LockstepExecutor([Referee("referee", rate_hz=100.0)])
    ended.reset(seed=0)
    ended.run(2.0)
    ended.reset(seed=0)  # a reset forgets the earlier end: the next run goes to 0.5 s again
    again = ended.run(2.0)
    assert again.steps["referee"] == 51 and again.sim_time_s == pytest.approx(0.5)


class HeapProbe(Node):
    """Test node: how many objects were frozen (out of the collector's reach) when it stepped."""

    type_name = "heap_probe"

    def reset(self, seed=None):
        self.frozen: list[int] = []

    def step(self, now, inputs):
        import gc

        self.frozen.append(gc.get_freeze_count())
        return {}


def test_a_run_freezes_the_heap_that_existed_before_it_so_no_step_pays_for_a_full_collection() -> None:
    import gc

    from aegis.executors.heap import frozen_heap

    probe = HeapProbe("heap", rate_hz=50.0)
    executor = LockstepExecutor([*point_mass_nodes(), probe])
    executor.reset(seed=0)
    assert gc.get_freeze_count() == 0
    executor.run(0.2)
    assert len(probe.frozen) == 10 and min(probe.frozen) > 1000  # the process's objects, frozen during every step
    assert gc.get_freeze_count() == 0  # and given back after the run
    with frozen_heap():  # nested (a run inside a frozen block, or two threads' runs): the last one out unfreezes
        executor.reset(seed=0)
        executor.run(0.1)
        assert gc.get_freeze_count() > 1000  # the inner run's end left the outer block's freeze in place
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError, match="boom"), frozen_heap():
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0  # unfrozen when the block raises too
