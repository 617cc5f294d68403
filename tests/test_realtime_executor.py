"""The realtime executor: ticks on the wall clock, skipped (never burst) when late, lockstep's message order, wall-clock
ages, EndRun and stop, diagnostics, and OS settings reported when refused. Counts and ordering only: no timed asserts."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Mapping

import numpy as np
import pytest

from aegis.config import RealtimeConfig
from aegis.executors import realtime
from aegis.executors.lockstep import LockstepExecutor
from aegis.executors.loop_stats import Histogram
from aegis.executors.realtime import RealtimeExecutor, stop_on_signals
from aegis.msgs import AccelCommand, LoopDiagnostics, RobotState
from aegis.node import EndRun, Node, Port, Received


def value(x: float, stamp: float = 0.0) -> AccelCommand:
    return AccelCommand(stamp=stamp, frame_id="odom", linear=np.full(3, float(x)))


class Counter(Node):
    """Publishes how many times it has stepped; records when it ran (its ``now`` and the wall clock)."""

    type_name = "counter"
    outputs = (Port("count", AccelCommand, "/count"),)

    def reset(self, seed=None):
        self.nows: list[float] = []
        self.walls: list[float] = []

    def step(self, now, inputs):
        self.nows.append(now)
        self.walls.append(time.perf_counter())
        return {"count": value(len(self.nows), now)}  # stamped when made: its age counts from its stamp (aegis.node.input_age_ns)


class Reader(Node):
    """Reads /count (bound 50 ms) and republishes what it read as (its own count, the count read)."""

    type_name = "reader"
    inputs = (Port("count", AccelCommand, "/count", max_age_s=0.05),)
    outputs = (Port("seen", AccelCommand, "/seen"),)

    def reset(self, seed=None):
        self.received: list[tuple[float, float, Received | None]] = []

    def step(self, now, inputs):
        self.received.append((now, time.perf_counter(), inputs["count"]))
        read = inputs["count"].msg.linear[0] if inputs["count"] is not None else -1.0
        return {"seen": AccelCommand(stamp=now, frame_id="odom", linear=np.array([len(self.received), read, 0.0]))}


class Follower(Node):
    """Runs on every /seen message; records what it carried."""

    type_name = "follower"
    inputs = (Port("seen", AccelCommand, "/seen"),)
    trigger = "seen"

    def reset(self, seed=None):
        self.seen: list[tuple[float, float]] = []

    def step(self, now, inputs):
        self.seen.append(tuple(inputs["seen"].msg.linear[:2]))
        return {}


class Sleeper(Counter):
    """A Counter whose steps take ``sleeps[k]`` seconds of wall time (k: its step number; default 0)."""

    type_name = "sleeper"

    def __init__(self, *args, sleeps: Mapping[int, float] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sleeps = dict(sleeps or {})

    def step(self, now, inputs):
        outputs = super().step(now, inputs)
        pause = self.sleeps.get(len(self.nows) - 1, self.sleeps.get(-1, 0.0))
        if pause:
            time.sleep(pause)
        return outputs


def run(nodes, duration_s, **kwargs):
    executor = RealtimeExecutor(nodes, **kwargs)
    executor.reset(0)
    return executor, executor.run(duration_s)


def test_a_node_steps_once_per_period_and_never_early() -> None:
    fast, slow = Counter("fast", rate_hz=100.0), Counter("slow", rate_hz=25.0)
    _executor, stats = run([fast, slow], 0.5)
    assert stats.loops["fast"].ticks == 50 and stats.loops["slow"].ticks == 13  # ticks due in [0, 0.5 s)
    for name, loop in stats.loops.items():  # a busy machine skips some ticks (counted in ticks), never most of them
        assert loop.steps >= loop.ticks // 2, name
    for node, period in ((fast, 0.01), (slow, 0.04)):
        assert node.nows == sorted(node.nows)
        # the i-th step runs tick i or a later one (after a skip), never before its time
        assert all(now >= i * period - 1e-9 for i, now in enumerate(node.nows))
        loop = stats.loops[node.name]
        assert loop.durations.count == loop.jitter.count == loop.steps == len(node.nows)
    assert stats.ended_by is None and not stats.stopped
    assert stats.settings == {"priority": "off", "cpu_affinity": "off", "lock_memory": "off"}


def test_a_slow_step_skips_the_ticks_it_overran_counts_them_and_never_bursts() -> None:
    node = Sleeper("late", rate_hz=100.0, sleeps={2: 0.055})  # step 2 (t = 20 ms) ends near 75 ms: ticks 3-6 are past
    _, stats = run([node], 0.3)
    loop = stats.loops["late"]
    assert loop.ticks == 30 and loop.steps + loop.skipped_ticks == 30
    assert loop.skipped_ticks >= 4
    assert loop.deadline_misses >= loop.skipped_ticks + 1  # the slow step itself ended past its deadline
    slow_end = node.walls[2] + 0.055
    # no catch-up burst: at most the late tick and the next on-time one start within 2 ms of the slow step's end
    assert sum(slow_end <= wall < slow_end + 0.002 for wall in node.walls) <= 2


def test_a_node_slower_than_its_period_runs_back_to_back_and_misses_every_tick() -> None:
    node = Sleeper("slow", rate_hz=100.0, sleeps={-1: 0.025})
    _, stats = run([node], 0.5)
    loop = stats.loops["slow"]
    assert loop.ticks == 50
    assert loop.steps <= 0.5 / 0.025 + 1  # one step per wake-up, never several to make up
    assert loop.skipped_ticks == 50 - loop.steps and loop.deadline_misses == 50


def test_a_configured_deadline_shorter_than_the_step_is_missed_by_every_step() -> None:
    node = Sleeper("tight", rate_hz=50.0, sleeps={-1: 0.004})
    _, stats = run([node], 0.2, deadlines_s={"tight": 0.002})
    loop = stats.loops["tight"]
    assert loop.deadline_ns == 2_000_000 and loop.deadline_misses == loop.steps + loop.skipped_ticks == 10


def test_messages_flow_in_lockstep_order() -> None:
    def sequence(executor_type, **kwargs):
        seen: list[tuple[str, tuple[float, ...]]] = []
        nodes = [Counter("counter", rate_hz=50.0), Reader("reader", rate_hz=25.0), Follower("follower")]
        executor = executor_type(nodes, listeners=[lambda topic, msg, t: seen.append((topic, tuple(msg.linear)))], **kwargs)
        executor.reset(0)
        stats = executor.run(0.4)
        return seen, stats, nodes[2].seen

    lockstep, _, lockstep_followed = sequence(LockstepExecutor)
    for _attempt in range(3):  # a stall past a 20 ms period skips a tick (overrun policy): then the orders differ by design
        wall, stats, wall_followed = sequence(RealtimeExecutor)
        skipped = {name: loop.skipped_ticks for name, loop in stats.loops.items()}
        if not any(skipped.values()):
            break
    assert skipped == {"counter": 0, "reader": 0, "follower": 0}, "a tick was skipped (machine too busy): the orders differ"
    assert wall == lockstep
    assert wall_followed == lockstep_followed and len(wall_followed) == 10


def test_ages_and_staleness_come_from_the_wall_clock() -> None:
    once = Sleeper("once", rate_hz=2.0)  # publishes at 0 s, next at 0.5 s: after the run
    reader = Reader("reader", rate_hz=100.0)
    _, stats = run([once, reader], 0.15)
    published_at = once.nows[0]
    ages = [(now, wall, r.age_s, r.stale) for now, wall, r in reader.received]
    assert len(ages) == stats.steps["reader"] >= 10
    for now, wall, age, stale in ages:
        assert age == pytest.approx(now - published_at, abs=1e-9)  # age = the reader's now - the publisher's
        assert age == pytest.approx(wall - once.walls[0], abs=0.01)  # ... which is wall time
        assert stale == (age > 0.05)
    assert [a for _, _, a, _ in ages] == sorted(a for _, _, a, _ in ages)
    assert ages[0][3] is False and ages[-1][3] is True


class Ender(Counter):
    type_name = "ender"

    def step(self, now, inputs):
        outputs = super().step(now, inputs)
        if len(self.nows) == 5:
            raise EndRun("crashed", outputs)
        return outputs


class CountFollower(Follower):
    type_name = "count_follower"
    inputs = (Port("seen", AccelCommand, "/count"),)


def test_endrun_ends_the_run_after_its_outputs_and_their_triggered_nodes() -> None:
    ender, after = Ender("ender", rate_hz=100.0), Counter("after", rate_hz=100.0, topics={"count": "/after"})
    follower = CountFollower("follower")
    executor, stats = run([ender, after, follower], 30.0)
    assert (stats.ended_by, stats.end_reason) == ("ender", "crashed")
    assert stats.steps == {"ender": 5, "after": 4, "follower": 5}  # "after" does not run at the ending instant
    msg, _ = executor.latest("/count")
    assert msg.linear[0] == 5.0


def test_a_stop_event_ends_the_run_cleanly_and_close_closes_the_nodes() -> None:
    stop = threading.Event()

    class Stopper(Counter):
        """Sets the stop event on its 10th step, as a signal handler or another thread would."""

        type_name = "stopper"

        def step(self, now, inputs):
            outputs = super().step(now, inputs)
            if len(self.nows) == 10:
                stop.set()
            return outputs

        def close(self):
            self.closed = getattr(self, "closed", 0) + 1

    node = Stopper("node", rate_hz=100.0)
    with RealtimeExecutor([node]) as executor:
        executor.reset(0)
        stats = executor.run(None, stop)
    assert stats.stopped and stats.ended_by is None
    assert stats.steps["node"] == 10
    assert node.closed == 1
    executor.close()
    assert node.closed == 1


def test_sigint_sets_the_stop_event_inside_stop_on_signals() -> None:
    class Interrupted(Counter):
        type_name = "interrupted"

        def step(self, now, inputs):
            outputs = super().step(now, inputs)
            if len(self.nows) == 5:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: without the handler, KeyboardInterrupt
            return outputs

    node = Interrupted("node", rate_hz=100.0)
    previous = signal.getsignal(signal.SIGINT)
    executor = RealtimeExecutor([node])
    executor.reset(0)
    with stop_on_signals(threading.Event()) as stop:
        stats = executor.run(10.0, stop)
    assert stats.stopped and 5 <= stats.steps["node"] <= 6
    assert signal.getsignal(signal.SIGINT) is previous


def test_loop_diagnostics_per_node_every_window_and_the_miss_limit_makes_them_errors(monkeypatch) -> None:
    monkeypatch.setattr(realtime, "REPORT_PERIOD_NS", 100_000_000)  # windows of 0.1 s instead of 1 s
    reports: list[LoopDiagnostics] = []
    keep = lambda topic, msg, t: reports.append(msg) if topic == "/diagnostics" else None
    nodes = [Counter("ok", rate_hz=100.0), Sleeper("late", rate_hz=100.0, sleeps={-1: 0.012})]
    settings = RealtimeConfig(executor="realtime", deadline_miss_limit=3)
    _, stats = run(nodes, 0.55, listeners=[keep], settings=settings)
    by_node = {name: [r for r in reports if r.name == name] for name in ("ok", "late")}
    assert 4 <= len(by_node["ok"]) <= 5 and 4 <= len(by_node["late"]) <= 5
    for own in by_node.values():
        assert [r.ticks for r in own] == sorted(r.ticks for r in own) and own[0].period_s == pytest.approx(0.01)
        assert all(r.p99_duration_s >= r.p50_duration_s > 0 for r in own)
    late = by_node["late"]
    assert all(r.level == 2 for r in late)  # about 10 misses per window, over the limit of 3
    assert stats.loops["late"].windows_over_limit == len(late)
    assert late[-1].deadline_misses <= stats.loops["late"].deadline_misses
    _, unlimited = run([Sleeper("late", rate_hz=100.0, sleeps={-1: 0.012})], 0.35, listeners=[keep])
    assert reports[-1].level == 1 and unlimited.loops["late"].windows_over_limit == 0  # no limit: WARN


def test_a_refused_setting_is_reported_and_warned_not_raised(monkeypatch, caplog) -> None:
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    unavailable = max(os.sched_getaffinity(0)) + 1000
    settings = RealtimeConfig(executor="realtime", priority=80, cpu_affinity=[unavailable])
    with caplog.at_level(logging.WARNING):
        _, stats = run([Counter("node", rate_hz=100.0)], 0.05, settings=settings)
    assert stats.steps["node"] >= 3
    assert stats.settings["priority"].startswith("refused: Operation not permitted") and "CAP_SYS_NICE" in stats.settings["priority"]
    assert stats.settings["cpu_affinity"] == f"refused: CPU(s) {unavailable} not available to this process (it may use " + ",".join(
        map(str, sorted(os.sched_getaffinity(0)))
    ) + ")"
    assert set(stats.refused) == {"priority", "cpu_affinity"}
    assert sum("refused" in r.message for r in caplog.records) == 2


def test_an_applied_affinity_holds_during_the_run_and_is_undone_after() -> None:
    before = os.sched_getaffinity(0)
    cpu = min(before)
    inside: list[set[int]] = []

    class Looker(Counter):
        type_name = "looker"

        def step(self, now, inputs):
            inside.append(os.sched_getaffinity(0))
            return super().step(now, inputs)

    _, stats = run([Looker("node", rate_hz=100.0)], 0.03, settings=RealtimeConfig(executor="realtime", cpu_affinity=[cpu]))
    assert stats.settings["cpu_affinity"] == f"applied: CPU(s) {cpu}"
    assert inside and all(s == {cpu} for s in inside)
    assert os.sched_getaffinity(0) == before


def test_bad_wiring_and_deadlines_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one node that runs at a rate"):
        RealtimeExecutor([Follower("follower")])
    with pytest.raises(ValueError, match="'nobody': no such node"):
        RealtimeExecutor([Counter("node", rate_hz=10.0)], deadlines_s={"nobody": 0.1})
    with pytest.raises(ValueError, match="runs on a trigger"):
        RealtimeExecutor([Counter("node", rate_hz=10.0), Follower("follower")], deadlines_s={"follower": 0.1})
    with pytest.raises(ValueError, match="must be > 0"):
        RealtimeExecutor([Counter("node", rate_hz=10.0)], deadlines_s={"node": 0.0})
    with pytest.raises(ValueError, match="node names must be unique"):
        RealtimeExecutor([Counter("node", rate_hz=10.0), Counter("node", rate_hz=10.0)])


def test_the_histogram_counts_microsecond_bins_and_powers_of_two_beyond() -> None:
    histogram = Histogram()
    for us in range(1, 101):
        histogram.add(us * 1000 + 400)
    assert histogram.count == 100 and histogram.percentile_us(50) == 50.5 and histogram.percentile_us(99) == 99.5
    assert histogram.mean_us() == pytest.approx(50.9)
    histogram.add(5_000_000)  # 5 ms: the [4096, 8192) µs bin, reported no higher than the largest sample
    assert histogram.percentile_us(100) == 5000.0 and histogram.bins()[-1] == [4096.0, 8192.0, 1]
    histogram.add(-5)
    assert histogram.bins()[0] == [0.0, 1.0, 1]


class QueueInbox:
    """What a DdsBridge is to the executor, fed by another thread: ``take`` what arrived, ``wait`` for more."""

    def __init__(self) -> None:
        self._queue: list[tuple[str, object]] = []
        self._lock = threading.Lock()
        self._arrived = threading.Event()

    def put(self, topic: str, msg: object) -> None:
        with self._lock:
            self._queue.append((topic, msg))
            self._arrived.set()

    def take(self) -> list[tuple[str, object]]:
        with self._lock:
            taken, self._queue = self._queue, []
            self._arrived.clear()
            return taken

    def wait(self, timeout_s: float) -> bool:
        return self._arrived.wait(timeout_s)


def test_messages_from_the_inbox_are_delivered_and_trigger_their_readers() -> None:
    """Another process's messages (here another thread's) reach the graph in order and step the nodes they trigger."""
    class UntilThird(Follower):
        def step(self, now, inputs):
            super().step(now, inputs)
            if len(self.seen) == 3:
                raise EndRun("three arrived")
            return {}

    counter, follower = Counter("counter", rate_hz=20.0), UntilThird("follower")
    executor = RealtimeExecutor([counter, follower])
    executor.reset(0)
    inbox = QueueInbox()
    sent = [AccelCommand(stamp=0.0, frame_id="odom", linear=np.array([k, 10.0 * k, 0.0])) for k in range(1, 4)]

    def feed() -> None:
        for msg in sent:
            time.sleep(0.05)
            inbox.put("/seen", msg)

    feeder = threading.Thread(target=feed)
    feeder.start()
    stats = executor.run(60.0, inbox=inbox)
    feeder.join()
    assert stats.ended_by == "follower"
    assert follower.seen == [(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)]
    assert stats.loops["follower"].steps == 3
    assert executor.latest("/seen")[0] is sent[-1]


def test_a_run_starts_at_the_agreed_time() -> None:
    """``start_ns``: tick 0 runs at (not before) the given CLOCK_MONOTONIC reading, and the run's clock counts from it."""
    counter = Counter("counter", rate_hz=50.0)
    executor = RealtimeExecutor([counter])
    executor.reset(0)
    start_ns = time.perf_counter_ns() + 200_000_000
    executor.run(0.1, start_ns=start_ns)
    assert counter.walls[0] * 1e9 >= start_ns - 1e3  # perf_counter() in seconds: a microsecond of float rounding
    assert counter.nows[0] >= 0.0


def test_a_restarted_process_resumes_on_the_runs_time_line_from_its_next_tick() -> None:
    """``resume``: a start 0.5 s in the past (a stack restarted into a running run) runs from the next tick on that time
    line; the ticks before it are neither run nor counted as missed or skipped."""
    counter = Counter("counter", rate_hz=50.0)
    executor = RealtimeExecutor([counter])
    executor.reset(0)
    start_ns = time.perf_counter_ns() - 500_000_000
    # the run ends 1.5 s after start_ns: 1 s left, room for the executor's set-up (a full garbage collection of a
    # process that has run two thousand tests takes a good part of a second)
    stats = executor.run(1.5, start_ns=start_ns, resume=True)
    assert counter.nows and counter.nows[0] >= 0.5  # the run's clock, not the process's: it joined half a second in
    assert stats.loops["counter"].skipped_ticks == 0
    assert len(counter.nows) <= 51  # 0.5 .. 1.5 s at 50 Hz, not the 75 ticks since the start


class HealthyInputs(Node):
    """Usable odometry and a valid filtered command every tick: what keeps a supervisor running."""

    type_name = "healthy_inputs"
    outputs = (Port("state", RobotState, "/odom"), Port("command", AccelCommand, "/cmd_accel_filtered"))

    def step(self, now, inputs):
        return {"state": RobotState(stamp=now, position=np.array([0.0, 0.0, 1.0])), "command": AccelCommand(stamp=now)}


def test_the_supervisor_reads_every_nodes_loop_diagnostics_and_degrades_on_one_over_the_limit(monkeypatch) -> None:
    from aegis.nodes.supervisor import QuadrotorSupervisorParams, Supervisor

    monkeypatch.setattr(realtime, "REPORT_PERIOD_NS", 100_000_000)  # windows of 0.1 s instead of 1 s
    statuses: list = []
    keep = lambda topic, msg, t: statuses.append(msg) if topic == "/supervisor/status" else None
    supervisor = Supervisor("supervisor", QuadrotorSupervisorParams(recovery_s=10.0), rate_hz=50.0)
    nodes = [HealthyInputs("inputs", rate_hz=50.0), Sleeper("late", rate_hz=100.0, sleeps={-1: 0.012}), supervisor]
    settings = RealtimeConfig(executor="realtime", deadline_miss_limit=3)
    deadlines = {"inputs": 0.1, "supervisor": 0.1}  # only "late" misses (the others wait behind its 12 ms steps, in one thread)
    run(nodes, 0.35, listeners=[keep], settings=settings, deadlines_s=deadlines)
    assert set(supervisor.watched_nodes) == {"inputs", "late", "supervisor"}  # each node's report reached it (a queued port)
    assert statuses[0].state == "running"
    assert statuses[-1].state == "degraded" and statuses[-1].reason.startswith("node late missed")
    assert supervisor.metrics()["supervisor_loop_faults"] >= 1


def test_another_processes_threads_get_the_settings_or_say_why_not(monkeypatch, caplog) -> None:
    """apply_to_threads (an emulator the loop waits on, aegis hil --mcu): every thread the process has gets the CPU, and
    SCHED_FIFO where permitted; a refusal is an outcome and a warning, never an exception; a gone process is refused."""
    import subprocess
    import sys

    from aegis.executors.os_settings import apply_to_threads

    child = subprocess.Popen([sys.executable, "-c", "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start(); time.sleep(30)"])
    try:
        time.sleep(0.3)  # its second thread started
        cpu = max(os.sched_getaffinity(0))
        threads = [int(t) for t in os.listdir(f"/proc/{child.pid}/task")]
        applied = apply_to_threads(child.pid, None, [cpu])
        assert applied.outcomes["cpu_affinity"] == f"applied: CPU(s) {cpu}, {len(threads)} threads" and len(threads) >= 2
        assert all(os.sched_getaffinity(tid) == {cpu} for tid in threads) and applied.outcomes["priority"] == "off"

        def refuse(*args):
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "sched_setscheduler", refuse)
        with caplog.at_level(logging.WARNING):
            refused = apply_to_threads(child.pid, 10, None)
        assert refused.outcomes["priority"].startswith("refused: Operation not permitted") and "CAP_SYS_NICE" in refused.outcomes["priority"]
        assert any(f"process {child.pid}" in r.message for r in caplog.records)
    finally:
        child.kill()
        child.wait()
    gone = apply_to_threads(child.pid, 10, [cpu])
    assert gone.outcomes["priority"].startswith("refused: no threads of process") and set(gone.refused) == {"priority", "cpu_affinity"}
