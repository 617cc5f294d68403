"""The operating system's real-time settings for the loop thread: SCHED_FIFO priority, CPU affinity, locked memory.

:func:`apply_settings` asks for each requested setting and never raises when the OS says no (no
CAP_SYS_NICE or rtprio limit for SCHED_FIFO, a CPU outside the container's set, a memlock limit):
each outcome is "off" (not requested), "applied: ..." or "refused: <the OS's reason>", every
refusal is logged as a warning, and the run goes on without it. What was applied is undone by
:meth:`AppliedSettings.restore` (the previous scheduler and affinity come back, memory is
unlocked), so a benchmark can compare configurations in one process. Linux only; elsewhere each
requested setting is refused as unsupported.

Priority and affinity are set on the calling thread (``pid`` 0): call from the thread that runs
the loop; :func:`apply_to_threads` sets them on every thread of another process (an emulator the loop
waits on). Memory locking is process-wide (``mlockall(MCL_CURRENT | MCL_FUTURE)``): page faults in
the loop are gone, and so is any allocation past RLIMIT_MEMLOCK, which real-time hosts set to
unlimited.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

OFF = "off"
_MCL_CURRENT, _MCL_FUTURE = 1, 2


@dataclass
class AppliedSettings:
    """Each setting's outcome, and how to undo what was applied."""

    outcomes: dict[str, str]
    _undo: list[Callable[[], None]] = field(default_factory=list)

    @property
    def refused(self) -> dict[str, str]:
        return {k: v for k, v in self.outcomes.items() if v.startswith("refused")}

    def restore(self) -> None:
        """Undo what was applied, last first; a failure to undo is logged, not raised."""
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except OSError as exc:
                logger.warning("could not restore a real-time setting: %s", exc)


def apply_settings(priority: int | None, cpu_affinity: Sequence[int] | None, lock_memory: bool) -> AppliedSettings:
    """Ask for SCHED_FIFO at ``priority``, the CPUs ``cpu_affinity`` and locked memory; see the module doc."""
    applied = AppliedSettings({"priority": OFF, "cpu_affinity": OFF, "lock_memory": OFF})
    if cpu_affinity is not None:
        _try(applied, "cpu_affinity", lambda: _set_affinity(applied, cpu_affinity))
    if priority is not None:
        _try(applied, "priority", lambda: _set_fifo(applied, priority))
    if lock_memory:
        _try(applied, "lock_memory", lambda: _lock_memory(applied))
    for name, outcome in applied.refused.items():
        logger.warning("real-time setting %s %s; the loop runs without it", name, outcome)
    return applied


def apply_to_threads(pid: int, priority: int | None, cpu_affinity: Sequence[int] | None) -> AppliedSettings:
    """SCHED_FIFO at ``priority`` and the CPUs ``cpu_affinity`` for every thread process ``pid`` has now (Linux's
    /proc/PID/task); outcomes and refusals as :func:`apply_settings` (never raises; memory locking is not another's to ask)."""
    applied = AppliedSettings({"priority": OFF, "cpu_affinity": OFF, "lock_memory": OFF})
    try:
        threads = sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task"))
    except OSError as exc:
        threads, reason = [], f"refused: no threads of process {pid} to set ({_reason(exc)})"
        applied.outcomes.update({k: reason for k, wanted in (("priority", priority), ("cpu_affinity", cpu_affinity)) if wanted is not None})
    if threads and cpu_affinity is not None:
        _try(applied, "cpu_affinity", lambda: [_set_affinity(applied, cpu_affinity, tid) for tid in threads][-1] + f", {len(threads)} threads")
    if threads and priority is not None:
        _try(applied, "priority", lambda: [_set_fifo(applied, priority, tid) for tid in threads][-1] + f", {len(threads)} threads")
    for name, outcome in applied.refused.items():
        logger.warning("real-time setting %s for process %d %s; it runs without it", name, pid, outcome)
    return applied


def _try(applied: AppliedSettings, name: str, action: Callable[[], str]) -> None:
    try:
        applied.outcomes[name] = "applied: " + action()
    except (OSError, AttributeError, ValueError) as exc:  # AttributeError: os lacks sched_* off Linux
        applied.outcomes[name] = f"refused: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, AttributeError):
        return "not supported on this platform"
    return str(exc) or type(exc).__name__


def _set_affinity(applied: AppliedSettings, cpus: Sequence[int], tid: int = 0) -> str:
    previous = os.sched_getaffinity(tid)
    wanted = set(cpus)
    unavailable = sorted(wanted - previous)
    if unavailable:
        raise ValueError(f"CPU(s) {', '.join(map(str, unavailable))} not available to this process (it may use {_cpu_list(previous)})")
    os.sched_setaffinity(tid, wanted)
    applied._undo.append(lambda: os.sched_setaffinity(tid, previous))
    return f"CPU(s) {_cpu_list(wanted)}"


def _set_fifo(applied: AppliedSettings, priority: int, tid: int = 0) -> str:
    policy, param = os.sched_getscheduler(tid), os.sched_getparam(tid)
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError as exc:
        raise PermissionError(
            f"{exc.strerror or exc}: SCHED_FIFO priority {priority} needs CAP_SYS_NICE or an rtprio limit >= {priority} "
            f"(ulimit -r; in a container, --cap-add SYS_NICE)"
        ) from None
    applied._undo.append(lambda: os.sched_setscheduler(tid, policy, param))
    return f"SCHED_FIFO priority {priority}"


def _lock_memory(applied: AppliedSettings) -> str:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mlockall: {os.strerror(errno)} (RLIMIT_MEMLOCK: ulimit -l; or CAP_IPC_LOCK)")
    applied._undo.append(lambda: _munlockall(libc))
    return "mlockall(MCL_CURRENT | MCL_FUTURE)"


def _munlockall(libc: ctypes.CDLL) -> None:
    if libc.munlockall() != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"munlockall: {os.strerror(errno)}")


def _cpu_list(cpus: set[int]) -> str:
    return ",".join(map(str, sorted(cpus)))
