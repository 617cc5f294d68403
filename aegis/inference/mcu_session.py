"""The emulated microcontroller as a runtime: a processor-in-the-loop image under QEMU mps2-an386 answering policy and filter-QP requests in wire frames on its UART.

:class:`PilSession` runs an image built by :func:`aegis.export.pil.build_pil_image` under
``qemu-system-arm -M mps2-an386`` with its UART on a host pseudo-terminal (``-serial pty``) and talks to it
through :class:`aegis.transport.links.SerialLink`: the same frames and link a HIL run uses. ``-icount shift=0``
makes QEMU's virtual clock advance 1 ns per instruction, so the SysTick count the firmware returns (25 MHz core
clock: one tick every 40 instructions) gives the instructions each answer took, to within 40. :class:`McuQp` is
a filter solve path (aegis.controllers.cbf.qp.QpSolver) that solves on the MCU; :func:`route_through_mcu` puts
a plan's policy node and safety filter on it (`aegis bench pil` in lockstep, `aegis hil --mcu` at wall clock).
It lives with the inference runtimes, below the runs and the export, so that both can use it. A long module: the
session, its QP path and the route that uses both change together.
"""

from __future__ import annotations

import math
import re
import struct
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aegis.controllers.cbf.qp import INACTIVE_ROW_B, QpSolution, QpSpec
from aegis.inference.mcu_step_frame import STEP_ANSWER_ID, STEP_ID, STEP_MAX_ROWS, StepAnswer, parse_step_answer, step_payload
from aegis.inference.no_action import NoActionYet

QEMU = "qemu-system-arm"


class McuSessionError(RuntimeError):
    """QEMU did not start the image, or the image did not answer in time."""


OBSERVATION_ID = 1
ACTION_ID = 2
QP_PROBLEM_ID = 3
QP_ANSWER_ID = 4
DUAL_PROBLEM_ID = 5
DUAL_ANSWER_ID = 6
STOP_ID = 0xFF01
CORE_CLOCK_HZ = 25_000_000
"""mps2-an386's SYSCLK, which drives SysTick (CLKSOURCE = core clock) in QEMU."""
INSTRUCTIONS_PER_TICK = 1e9 / CORE_CLOCK_HZ
"""Under ``-icount shift=0`` (1 ns of virtual time per instruction): instructions per SysTick tick."""
QEMU_PIL_ARGS = ("-M", "mps2-an386", "-display", "none", "-monitor", "none", "-serial", "pty",
                 "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-name", "aegis-pil,debug-threads=on")
"""``debug-threads=on`` names QEMU's threads, so that the CPU's (``.../TCG``) can be waited for before holding them
(aegis.runs.hil_mcu.hold_emulator): it starts after QEMU has printed the pty's path."""
_PTY = re.compile(r"char device redirected to (/dev/pts/\d+)")


class PilSession:
    """The PIL image running under QEMU; :meth:`act` sends an observation frame and returns (action, instructions)."""

    def __init__(self, image: Any, input_size: int, output_size: int, timeout_s: float = 30.0) -> None:
        """``image``: the ELF's path, or an object with ``.elf`` (aegis.export.mcu.McuImage)."""
        from aegis.transport.links import SerialLink

        self.input_size, self.output_size = input_size, output_size
        self.timeout_s = timeout_s
        self.process = subprocess.Popen([QEMU, *QEMU_PIL_ARGS, "-kernel", str(getattr(image, "elf", image))], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = _PTY.search(line)
        if not match:
            self.process.kill()
            raise McuSessionError(f"{QEMU} did not put the UART on a pty: {line.strip()!r}")
        self.link = SerialLink.open(match.group(1))
        self._seq_stamp = 0
        self._answer = struct.Struct(f"<{output_size}fI")

    def _request(self, msg_id: int, payload: bytes, answer_id: int, answer_size: int) -> bytes:
        self._seq_stamp += 1
        self.link.send(msg_id, payload, stamp_ns=self._seq_stamp)
        deadline = time.monotonic() + self.timeout_s
        while (left := deadline - time.monotonic()) > 0.0:
            for frame in self.link.poll(min(0.1, left)):
                if frame.msg_id == answer_id and frame.stamp_ns == self._seq_stamp and len(frame.payload) == answer_size:
                    return frame.payload
            if self.process.poll() is not None:
                break
        raise McuSessionError(f"no answer from the PIL image within {self.timeout_s:g} s (QEMU exit status {self.process.poll()})")

    def act(self, observation: np.ndarray) -> tuple[np.ndarray, float]:
        """The firmware's action for one observation (float32), and the instructions its answer took."""
        x = np.ascontiguousarray(observation, dtype="<f4").reshape(self.input_size)
        *action, ticks = self._answer.unpack(self._request(OBSERVATION_ID, x.tobytes(), ACTION_ID, self._answer.size))
        return np.array(action, dtype=np.float32), ticks * INSTRUCTIONS_PER_TICK

    def solve_qp(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float, bool, int, float]:
        """The firmware's QP answer: (u, slack, solved, OSQP iterations, instructions). ``a`` is (rows, inputs), sent row by row."""
        m = int(np.size(nominal))
        payload = np.concatenate([np.ravel(nominal), np.ravel(a), np.ravel(b)]).astype("<f8").tobytes()
        data = self._request(QP_PROBLEM_ID, payload, QP_ANSWER_ID, 8 * (m + 1) + 12)
        values = np.frombuffer(data, dtype="<f8", count=m + 1)
        solved, iterations, ticks = struct.unpack_from("<III", data, 8 * (m + 1))
        return values[:m].copy(), float(values[m]), bool(solved), int(iterations), ticks * INSTRUCTIONS_PER_TICK

    def solve_dual(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float, bool, int, float]:
        """The firmware's float active-set answer: (u, slack, solved, steps, instructions). Sent and answered in float32."""
        m = int(np.size(nominal))
        payload = np.concatenate([np.ravel(nominal), np.ravel(a), np.ravel(b)]).astype("<f4").tobytes()
        data = self._request(DUAL_PROBLEM_ID, payload, DUAL_ANSWER_ID, 4 * (m + 1) + 12)
        values = np.frombuffer(data, dtype="<f4", count=m + 1).astype(np.float64)
        solved, steps, ticks = struct.unpack_from("<III", data, 4 * (m + 1))
        return values[:m].copy(), float(values[m]), bool(solved), int(steps), ticks * INSTRUCTIONS_PER_TICK

    def step(self, observation: np.ndarray, a: np.ndarray, b: np.ndarray) -> StepAnswer:
        """One tick in one frame (id 7 -> id 8): the policy's action for ``observation`` and the float active-set QP's
        answer with that action as its nominal, for the candidate rows ``a`` (N, m), ``b`` (N,) of which it keeps the QP's
        K nearest to violation (N >= K). Needs the image's dual QP."""
        a2 = np.atleast_2d(a)
        data = self._request(STEP_ID, step_payload(observation, a2, b), STEP_ANSWER_ID, 4 + 4 * (self.output_size + a2.shape[1] + 1) + 16)
        return parse_step_answer(data, self.output_size, a2.shape[1])

    def close(self) -> int:
        """Send the stop frame; QEMU's exit status (0: the firmware ended cleanly)."""
        try:
            self.link.send(STOP_ID, b"", 0)
            return self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return -1
        finally:
            self.link.close()

    def __enter__(self) -> PilSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.close()


class McuQp:
    """A safety-filter solve path that solves on the MCU (the exported QP, OSQP through cvxpygen, in the PIL image).

    Drop-in for the filter's ``solver`` (aegis.controllers.cbf.qp.QpSolver); :attr:`instructions` and :attr:`iterations`
    keep each solve's instruction count and OSQP iterations.
    """

    name = "mcu-cvxpygen"

    def __init__(self, session: PilSession, spec: QpSpec, dual: bool = False, host: Any = None, tolerance: float = 1e-4) -> None:
        """``dual``: the image has the float active-set solve (aegis.export.filter_dual), not cvxpygen's OSQP. ``host``: the
        filter's own solver, for a pipelined route (never waits for the MCU): a solve the MCU's answer does not fit is the
        host's (counted ``host_solves``); ``tolerance``: how far (relative to 1 + |b|) that answer may miss a row of this tick."""
        self.session, self.spec, self.dual = session, spec, dual
        self.host, self.tolerance = host, tolerance
        self.host_solves = 0
        """Solves the host's solver made because no MCU answer fitted (pipelined only)."""
        if dual:
            self.name = "mcu-active-set"
        self.instructions: list[float] = []
        self.iterations: list[int] = []
        self.unanswered = 0
        self.round_trips_s: list[float] = []
        self.ahead: tuple[np.ndarray, np.ndarray, StepAnswer] | None = None
        """The one-frame tick's answer for this tick (rows a, b as sent in float32, the answer), set by the policy's request."""
        self.answered_ahead = 0
        """Solves answered by the one-frame tick's answer (no frame of their own)."""
        self._solution = QpSolution(np.zeros(spec.n_inputs), 0.0, "", False)

    def reset(self) -> None:
        """Nothing to clear here (the firmware's solver warm-starts from its last answer)."""

    def _answered_ahead(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> StepAnswer | None:
        """This tick's one-frame answer when it is for this very problem (the rows sent, the nominal = the policy's action)."""
        ahead, self.ahead = self.ahead, None
        if ahead is None:
            return None
        sent_a, sent_b, answer = ahead
        kept = [i for i in range(len(sent_b)) if answer.kept >> i & 1]  # the rows the MCU's QP had, in candidate order
        sent_a, sent_b = sent_a[kept], sent_b[kept]
        same = (np.array_equal(np.asarray(a, "<f4"), sent_a) and np.array_equal(np.asarray(b, "<f4"), sent_b)
                and np.array_equal(np.asarray(nominal, "<f4"), answer.action.astype("<f4")))
        return answer if same else None

    def _fits(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> StepAnswer | None:
        """Pipelined: the answer taken this tick (for the rows of the tick it was asked at) when its nominal is this one and
        its command meets this tick's rows ``a u + slack >= b`` (within ``tolerance``), as the filter will check it."""
        ahead, self.ahead = self.ahead, None
        if ahead is None:
            return None
        answer = ahead[2]
        if not (answer.solved and np.array_equal(np.asarray(nominal, "<f4"), answer.action.astype("<f4"))):
            return None
        u, slack = answer.u, answer.slack
        if not (np.isfinite(u).all() and math.isfinite(slack) and slack >= -self.tolerance):
            return None
        surplus = np.asarray(a) @ u + slack - np.asarray(b)
        return answer if bool(np.all(surplus >= -self.tolerance * (1.0 + np.abs(b)))) else None

    def solve(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> QpSolution:
        started = time.perf_counter()
        if self.host is not None:  # pipelined: the MCU's answer when it fits this tick, else the host's own solve; never waits
            answer = self._fits(nominal, a, b)
            if answer is None:
                self.host_solves += 1
                return self.host.solve(nominal, a, b)
        else:
            answer = self._answered_ahead(nominal, a, b)
        if answer is not None:  # solved on the MCU in the tick's one frame: no round trip of its own
            self.answered_ahead += 1
            self.instructions.append((answer.ticks - answer.policy_ticks) * INSTRUCTIONS_PER_TICK)
            self.iterations.append(answer.steps)
            return self._fill(answer.u, answer.slack, answer.solved, started)
        try:
            u, slack, solved, iterations, count = (self.session.solve_dual if self.dual else self.session.solve_qp)(nominal, a, b)
        except McuSessionError:  # no answer in time: a failed solve, the filter's fallback decides (a solver never raises)
            out = self._solution
            out.u[:] = np.nan
            out.slack, out.status, out.solved = math.nan, "no answer from the MCU", False
            out.solve_time_s = time.perf_counter() - started
            self.unanswered += 1
            return out
        self.instructions.append(count)
        self.iterations.append(iterations)
        self.round_trips_s.append(time.perf_counter() - started)
        return self._fill(u, slack, solved, started)

    def _fill(self, u: np.ndarray, slack: float, solved: bool, started: float) -> QpSolution:
        out = self._solution
        out.u[:] = u
        out.slack = slack
        out.solved = solved and bool(np.isfinite(u).all()) and np.isfinite(slack)
        out.status = "solved" if solved else "not solved"
        out.solve_time_s = time.perf_counter() - started
        return out


@dataclass
class McuRoute:
    """What :func:`route_through_mcu` put on the MCU, and what it counted: instructions per policy answer, the QP solvers."""

    policy_instructions: list[float] = field(default_factory=list)
    policy_round_trips_s: list[float] = field(default_factory=list)
    """Wall-clock time from sending each observation frame to its answer (the host's view of the emulated MCU)."""
    qp_solvers: list[McuQp] = field(default_factory=list)
    unanswered: int = 0
    """Policy requests the MCU did not answer in time (the node published no nominal for them)."""
    one_frame: bool = False
    """Each tick is one frame (id 7 -> 8: observation and the filter's rows out, action and filtered command back),
    once :meth:`bind` gave the executor; else an observation frame and a QP frame."""
    step_round_trips_s: list[float] = field(default_factory=list)
    """Wall-clock time of each one-frame tick's request to its answer."""
    peek: Any = None
    """The executor's ``peek_inputs`` (the filter's inputs at the policy's step), from :meth:`bind`."""
    last_action: np.ndarray | None = None
    """The MCU's last answered action: a wall-clock request carries the rows near binding at it (:func:`_near_rows`)."""
    now: float | None = None
    """The policy node's step in progress (its ``now``)."""

    pipeline: Any = None
    """The :class:`aegis.inference.mcu_pipeline.StepPipeline` of a pipelined route (the wall-clock loop), else None."""
    taken: Any = None
    """Pipelined: the answer taken at the policy's step in progress (None: none had arrived)."""
    no_answer: int = 0
    """Pipelined: policy ticks with no answer to take (no nominal published: the policy's error ticks)."""

    def bind(self, executor: Any) -> None:
        """Give the route the executor that will run the nodes (one-frame ticks need to see the filter's inputs)."""
        self.peek = executor.peek_inputs


def _can_bind(a: np.ndarray, b: np.ndarray, spec: QpSpec) -> np.ndarray:
    """Which rows ``a u + s >= b`` some command inside the input bounds' box violates: a row every such command meets never
    binds at the QP's answer (which lies in the box), so it can go unsent, as the padding rows ``a = 0, b = -1`` are."""
    lower, upper = np.asarray(spec.lower), np.asarray(spec.upper)
    return np.minimum(a * lower, a * upper).sum(axis=1) < b


def _reachable_rows(a: np.ndarray, b: np.ndarray, spec: QpSpec, binding_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The candidate rows that the QP could keep for some nominal inside the input bounds (fewer bytes on the UART: QEMU's
    takes tens of µs a byte, a real one 10.9 µs at 921600 baud): of N > K candidates it keeps the K nearest to violation,
    (a.u - b) / |a|, so a row whose nearest over the bounds' box is farther than the K-th smallest of the rows' farthest
    cannot be kept. A nominal outside the box may choose otherwise: the MCU then keeps other rows than the host, and the
    host sends its own QP. ``binding_only``: first only the rows that :func:`_can_bind` (the MCU pads fewer than K), for a
    route whose filter takes an answer that meets its rows rather than one for the very rows it keeps."""
    k = spec.max_rows
    if binding_only:
        binding = _can_bind(a, b, spec)
        a, b = a[binding], b[binding]
        if not len(b):
            return np.zeros((1, a.shape[1])), np.full(1, INACTIVE_ROW_B)  # a request has a row: one the MCU's padding is
    if len(b) <= k:
        return a, b
    lower, upper = np.asarray(spec.lower), np.asarray(spec.upper)
    norm = np.sqrt(np.einsum("ij,ij->i", a, a)) + 1e-12
    nearest = (np.minimum(a * lower, a * upper).sum(axis=1) - b) / norm
    farthest = (np.maximum(a * lower, a * upper).sum(axis=1) - b) / norm
    keep = nearest <= np.partition(farthest, k - 1)[k - 1]
    return a[keep], b[keep]


NEAR_ROW_FRACTION = 0.125
"""A wall-clock request carries the rows within this fraction of the input box's smallest half-width (1 m/s^2 of the
quadrotor's +-8) of binding at the MCU's last action: of the figure-8's 7 to 8 rows that can bind, 1.6 a tick."""


def _near_rows(a: np.ndarray, b: np.ndarray, spec: QpSpec, last_action: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The rows near binding at the MCU's last action (within :data:`NEAR_ROW_FRACTION` of the box's half-width, each row
    normalised), at least the nearest one: fewer bytes again, a tick's action moving little from the last. The QP's answer
    for the rows sent is the whole QP's when it meets the rows left out (they are then inactive, and the problem convex);
    the wall-clock route's filter takes the MCU's command only when it meets every row of its tick, else solves on the
    host (``host_solves``). All rows while there is no last action."""
    if last_action is None or len(b) <= 1:
        return a, b
    half_width = float(np.min((np.asarray(spec.upper) - np.asarray(spec.lower)) / 2.0))
    distance = (a @ np.asarray(last_action, dtype=float) - b) / (np.sqrt(np.einsum("ij,ij->i", a, a)) + 1e-12)
    near = distance < NEAR_ROW_FRACTION * half_width
    near[int(np.argmin(distance))] = True
    return a[near], b[near]


class McuNoAnswer(McuSessionError, NoActionYet):
    """Pipelined: no answer from the MCU to take at this tick (the policy publishes no nominal; counted)."""


def route_through_mcu(nodes: list[Any], session: PilSession, filter_on_mcu: bool = False, dual: bool = False, one_frame: bool = False,
                      pipeline: Any = None, wall_clock: bool = False) -> McuRoute:
    """Makes the plan's policy node infer on the MCU (its runtime's ``act``: the observation goes as a frame, the action
    comes back) and, with ``filter_on_mcu``, every CBF safety filter solve its QP there (``dual``: the image's float
    active-set solve, else cvxpygen's OSQP). The nodes build the observation and the rows as before; nothing else changes.

    ``one_frame`` (needs ``dual`` and one filter node): once :meth:`McuRoute.bind` gave it the executor, the policy's
    request carries the filter's rows for the same tick (the filter node's :meth:`rows`, from its inputs as the
    executor would hand them now) and the MCU answers the action and the QP's answer with that action as its nominal
    in one frame; the filter's solve at the same tick takes that answer when it solves that very problem (else, as
    for a deadlock escape or a stale nominal, it sends its own QP frame). The filter still checks the answer.

    ``pipeline`` (a :class:`aegis.inference.mcu_pipeline.StepPipeline` on ``session``; needs ``one_frame``): nothing waits
    for the MCU. Each policy tick takes the answer to the request before (its action is this tick's nominal: one period
    of latency) and sends this tick's; the filter's solve takes the MCU's command when its nominal is that action and it
    meets this tick's rows, else solves on the host with its own solver (``host_solves``). A tick with no answer to
    take publishes no nominal (:class:`McuNoAnswer`: the policy's error tick; the filter holds the last nominal up to
    its staleness bound, then filters a hover).

    ``wall_clock`` (needs ``one_frame``; implied by ``pipeline``): a request carries only the rows that can bind and, of
    those, the ones near binding at the MCU's last action (:func:`_near_rows`; fewer bytes: the round trip is the
    UART's), and the filter takes the MCU's command when it meets this tick's rows, as a pipelined route's does, else
    solves on the host (``host_solves``); without it (lockstep, `aegis bench pil`) the rows go as the host would keep
    them and the answer is taken for that very problem only.
    """
    wall_clock = wall_clock or pipeline is not None
    if pipeline is not None and not one_frame:
        raise ValueError("a pipelined route needs one frame a tick")
    route = McuRoute(one_frame=one_frame, pipeline=pipeline)
    policy = next((n for n in nodes if hasattr(getattr(n, "runtime", None), "act")), None)
    if policy is None:
        raise ValueError("no policy node among the nodes: nothing to put on the MCU (use a config whose controller is a policy)")
    filters = [node for node in nodes if hasattr(getattr(node, "filter", None), "solver") and hasattr(node.filter, "spec")]
    if one_frame and not (filter_on_mcu and dual and len(filters) == 1 and hasattr(filters[0], "rows")):
        raise ValueError("one frame a tick needs the float active-set QP on the MCU (dual) and exactly one safety filter node")

    def rows_to_send() -> tuple[np.ndarray, np.ndarray] | None:
        """The filter's rows for this tick as a one-frame request carries them (float32; at wall clock only those that
        can bind, near binding at the last action), or None: no executor bound yet, a tick that will not solve the QP with
        the nominal as it comes, or more rows than a request holds."""
        if route.peek is None or route.now is None:
            return None
        node = filters[0]
        found = node.rows(route.now, route.peek(node))
        if found is None:
            return None
        a, b = _reachable_rows(found[0], found[1], node.filter.spec, binding_only=wall_clock)
        if wall_clock:
            a, b = _near_rows(a, b, node.filter.spec, route.last_action)
        return (a.astype("<f4"), b.astype("<f4")) if len(b) <= STEP_MAX_ROWS else None

    def ahead(x: np.ndarray) -> np.ndarray | None:
        """The one-frame tick: the action (and the QP's answer parked for the filter), or None to ask for the action alone."""
        rows = rows_to_send()
        if rows is None:
            return None
        a, b = rows
        started = time.perf_counter()
        answer = session.step(x, a, b)
        route.step_round_trips_s.append(time.perf_counter() - started)
        route.last_action = answer.action
        filters[0].filter.solver.ahead = (a, b, answer)
        route.policy_instructions.append(answer.policy_ticks * INSTRUCTIONS_PER_TICK)
        return answer.action

    def pipelined(x: np.ndarray) -> np.ndarray:
        """The pipelined tick: this tick's request out (with the filter's rows when it will solve them), the answer taken
        at the step's start back (its QP answer parked for the filter); McuNoAnswer when there was none."""
        if pipeline.in_flight:
            pipeline.busy += 1  # the request before is still with the MCU: nothing new this tick
        else:
            rows = rows_to_send()  # wall clock: a pipeline implies it
            pipeline.send(x, *rows) if rows is not None else pipeline.send(x)
        taken, route.taken = route.taken, None
        if taken is None:
            route.no_answer += 1
            raise McuNoAnswer("no answer from the MCU to take at this tick")
        route.policy_instructions.append(taken.policy_ticks * INSTRUCTIONS_PER_TICK)
        route.last_action = taken.action
        if taken.step is not None:
            route.step_round_trips_s.append(taken.round_trip_s)
            filters[0].filter.solver.ahead = (taken.a, taken.b, taken.step)
        else:
            route.policy_round_trips_s.append(taken.round_trip_s)
        return taken.action

    def act(observation: np.ndarray, out: np.ndarray | None = None) -> np.ndarray | None:
        x = np.asarray(observation, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(x)):
            return None  # as the runtime does: no action for a non-finite observation
        started = time.perf_counter()
        try:
            action = pipelined(x) if pipeline is not None else ahead(x) if one_frame else None
            if action is None:
                action, count = session.act(x)
                route.policy_round_trips_s.append(time.perf_counter() - started)
                route.policy_instructions.append(count)
        except McuSessionError as exc:
            route.unanswered += not isinstance(exc, McuNoAnswer)  # a pipelined tick's missing answer is counted as no_answer
            raise
        if not np.all(np.isfinite(action)):
            return None
        if out is None:
            return action.astype(np.float64)
        out[:] = action
        return out

    policy.runtime.act = act
    if one_frame:
        policy_step = policy.step

        def step(now: float, inputs: Any) -> Any:
            route.now = now
            for solver in route.qp_solvers:
                solver.ahead = None  # an answer is for its own tick only
            if pipeline is not None:
                route.taken = pipeline.take()  # every tick, so that the answers' ages count the policy's ticks
            return policy_step(now, inputs)

        policy.step = step
    if filter_on_mcu:
        for cbf in (node.filter for node in filters):
            host = cbf.solver if wall_clock else None
            cbf.solver = McuQp(session, cbf.spec, dual, host=host, tolerance=getattr(cbf, "check_tolerance", 1e-4))
            route.qp_solvers.append(cbf.solver)
    return route
