"""What the ROS 2 adapter measures of a node's timer: start jitter against rcl's schedule, step durations, deadline misses.

A node on an rclpy timer is due at creation + k x period on its clock (rcl_timer_init and
rcl_timer_call, rcl/src/rcl/timer.c; the period truncated to integer ns as rclpy's create_timer
does). A call at ``now`` serves the oldest due tick; the ticks due after it and up to ``now`` are
skipped by rcl (never a burst of calls), and each counts as a deadline miss and a skipped tick, as
under the realtime executor (aegis.executors.realtime). The start jitter is ``now`` minus the due
time served (under ``use_sim_time`` that is the /clock quantisation: tests/test_ros_timer_schedule.py);
a step whose end (``now`` + its wall duration) is past due + period is a deadline miss. Once per
second of the node's clock, :meth:`TimerTiming.record` returns a LoopDiagnostics for /diagnostics:
level OK, or WARN after a miss in that window (no ERROR: ``realtime.deadline_miss_limit`` belongs to
the realtime executor). A clock that goes backwards (a restarted simulation) re-anchors the schedule.
"""

from __future__ import annotations

from aegis.executors.loop_stats import NodeLoop
from aegis.msgs.diagnostics import OK, WARN, LoopDiagnostics
from aegis.msgs.stamp import NS_PER_S
from aegis.ros_shell.timing import timer_period_s

REPORT_PERIOD_NS = NS_PER_S
"""One LoopDiagnostics per node about every second of its clock, as the realtime executor sends them."""


class TimerTiming:
    """One timer-driven node's timing (``loop``: the realtime executor's record) and its LoopDiagnostics."""

    def __init__(self, name: str, rate_hz: float, created_ns: int) -> None:
        self.period_ns = int(float(timer_period_s(rate_hz)) * NS_PER_S)  # rclpy's create_timer
        self.loop = NodeLoop(name, self.period_ns, self.period_ns)
        self._due_ns = created_ns + self.period_ns
        self._next_report_ns = created_ns + REPORT_PERIOD_NS

    def record(self, now_ns: int, duration_ns: int) -> LoopDiagnostics | None:
        """Count one timer call at ``now_ns`` (the node's clock) whose step took ``duration_ns`` (wall); a report when one is due."""
        loop, period = self.loop, self.period_ns
        due = self._due_ns
        if now_ns < due - period:  # the clock went back more than a period: rcl re-anchors the timer
            due = now_ns
            self._next_report_ns = now_ns + REPORT_PERIOD_NS
        skipped = max(0, (now_ns - due) // period)
        if skipped:
            loop.skipped_ticks += skipped
            loop.deadline_misses += skipped
            loop.window_misses += skipped
        late = max(0, now_ns - due - skipped * period)  # the call serves the latest tick due (the rest were skipped)
        loop.steps += 1
        loop.last_duration_ns = duration_ns
        loop.durations.add(duration_ns)
        loop.window.append(duration_ns)
        loop.jitter.add(late)
        if late + duration_ns > period:
            loop.deadline_misses += 1
            loop.window_misses += 1
        self._due_ns = due + (skipped + 1) * period if now_ns >= due else due
        if now_ns < self._next_report_ns:
            return None
        while self._next_report_ns <= now_ns:
            self._next_report_ns += REPORT_PERIOD_NS
        return self._report(now_ns)

    def _report(self, now_ns: int) -> LoopDiagnostics:
        loop = self.loop
        window = sorted(loop.window) or [loop.last_duration_ns]
        report = LoopDiagnostics(
            stamp=now_ns / NS_PER_S,
            name=loop.name,
            period_s=self.period_ns / NS_PER_S,
            last_duration_s=loop.last_duration_ns / NS_PER_S,
            p50_duration_s=_nearest_rank(window, 50) / NS_PER_S,
            p99_duration_s=_nearest_rank(window, 99) / NS_PER_S,
            deadline_misses=loop.deadline_misses,
            ticks=loop.ticks,
            level=WARN if loop.window_misses else OK,
        )
        loop.window.clear()
        loop.window_misses = 0
        return report


def _nearest_rank(sorted_values: list[int], q: float) -> int:
    return sorted_values[max(0, -(-len(sorted_values) * q // 100) - 1)]
