"""Processor in the loop: an exported policy (and the safety filter's QP) in a Cortex-M4F image under QEMU mps2-an386, fed and answered in wire frames on its UART.

:func:`build_pil_image` links the policy's C, optionally the filter QP's C (``aegis export filter-c``),
the wire frame's C (c_templates/aegis_wire.c) and a main (c_templates/mcu_wire_main.c) that reads frames
from UART0 and answers each observation with the policy's action and each QP problem with its
solution. :class:`McuQp` is a filter solve path (aegis.controllers.cbf.qp.QpSolver) that solves on the MCU. :class:`PilSession` runs the image under ``qemu-system-arm -M mps2-an386`` with its UART on a host
pseudo-terminal (``-serial pty``) and talks to it through :class:`aegis.transport.links.SerialLink`: the
same frames and link a HIL run uses. ``-icount shift=0`` makes QEMU's virtual clock advance 1 ns per
instruction, so the SysTick count the firmware returns (25 MHz core clock: one tick every 40 instructions)
gives the instructions each answer took, to within 40.
"""

from __future__ import annotations

import re
import struct
import subprocess
import time
from pathlib import Path

import numpy as np

from aegis.export import templates
from aegis.export.errors import ToolchainError
from aegis.export.exporter import ExportReport
from aegis.controllers.cbf.qp import QpSolution, QpSpec
from aegis.export.filter_check import solver_objects
from aegis.export.filter_qp import FilterQpExport
from aegis.export.mcu import FOOTPRINT_FLAGS, QEMU, McuImage, link_image, startup_source
from aegis.export.wire_c import write_wire_sources

OBSERVATION_ID = 1
ACTION_ID = 2
QP_PROBLEM_ID = 3
QP_ANSWER_ID = 4
STOP_ID = 0xFF01
CORE_CLOCK_HZ = 25_000_000
"""mps2-an386's SYSCLK, which drives SysTick (CLKSOURCE = core clock) in QEMU."""
INSTRUCTIONS_PER_TICK = 1e9 / CORE_CLOCK_HZ
"""Under ``-icount shift=0`` (1 ns of virtual time per instruction): instructions per SysTick tick."""
QEMU_PIL_ARGS = ("-M", "mps2-an386", "-display", "none", "-monitor", "none", "-serial", "pty",
                 "-semihosting-config", "enable=on,target=native", "-icount", "shift=0")
_PTY = re.compile(r"char device redirected to (/dev/pts/\d+)")


def build_pil_image(report: ExportReport, build_dir: str | Path, qp: FilterQpExport | None = None) -> McuImage:
    """The PIL image of ``report``'s policy (and of ``qp``, the filter's exported QP): startup, policy, QP, wire frame, UART main."""
    directory = Path(build_dir)
    directory.mkdir(parents=True, exist_ok=True)
    wire_c, _ = write_wire_sources(directory)
    main = templates.write("mcu_wire_main.c", report.name, directory, qp=qp.name if qp is not None else "filter")
    max_payload = 64 if qp is None else 8 * (qp.spec.n_inputs * (1 + qp.spec.max_rows) + qp.spec.max_rows)
    extra = (*FOOTPRINT_FLAGS, f"-DAEGIS_WIRE_MAX_PAYLOAD={max(64, max_payload)}u", *(("-DAEGIS_PIL_QP",) if qp is not None else ()))
    objects = solver_objects(qp, directory / "qp") if qp is not None else []
    includes = [report.source.parent, directory, *(qp.include_dirs if qp is not None else ())]
    return link_image(directory / f"{report.name}_pil.elf", [startup_source(directory, io=False), main, wire_c, report.source],
                      includes, extra, objects)


class PilSession:
    """The PIL image running under QEMU; :meth:`act` sends an observation frame and returns (action, instructions)."""

    def __init__(self, image: McuImage, input_size: int, output_size: int, timeout_s: float = 30.0) -> None:
        from aegis.transport.links import SerialLink

        self.input_size, self.output_size = input_size, output_size
        self.timeout_s = timeout_s
        self.process = subprocess.Popen([QEMU, *QEMU_PIL_ARGS, "-kernel", str(image.elf)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = _PTY.search(line)
        if not match:
            self.process.kill()
            raise ToolchainError(f"{QEMU} did not put the UART on a pty: {line.strip()!r}")
        self.link = SerialLink.open(match.group(1))
        self._seq_stamp = 0
        self._answer = struct.Struct(f"<{output_size}fI")

    def _request(self, msg_id: int, payload: bytes, answer_id: int, answer_size: int) -> bytes:
        self._seq_stamp += 1
        self.link.send(msg_id, payload, stamp_ns=self._seq_stamp)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            for frame in self.link.poll(0.1):
                if frame.msg_id == answer_id and frame.stamp_ns == self._seq_stamp and len(frame.payload) == answer_size:
                    return frame.payload
            if self.process.poll() is not None:
                break
        raise ToolchainError(f"no answer from the PIL image within {self.timeout_s:g} s (QEMU exit status {self.process.poll()})")

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

    def __init__(self, session: PilSession, spec: QpSpec) -> None:
        self.session, self.spec = session, spec
        self.instructions: list[float] = []
        self.iterations: list[int] = []
        self._solution = QpSolution(np.zeros(spec.n_inputs), 0.0, "", False)

    def reset(self) -> None:
        """Nothing to clear here (the firmware's solver warm-starts from its last answer)."""

    def solve(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> QpSolution:
        started = time.perf_counter()
        u, slack, solved, iterations, count = self.session.solve_qp(nominal, a, b)
        self.instructions.append(count)
        self.iterations.append(iterations)
        out = self._solution
        out.u[:] = u
        out.slack = slack
        out.solved = solved and bool(np.isfinite(u).all()) and np.isfinite(slack)
        out.status = "solved" if solved else "not solved"
        out.solve_time_s = time.perf_counter() - started
        return out
