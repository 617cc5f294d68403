"""Processor in the loop: an exported policy in a Cortex-M4F image under QEMU mps2-an386, fed and answered in wire frames on its UART.

:func:`build_pil_image` links the policy's C, the wire frame's C (c_templates/aegis_wire.c) and a main
(c_templates/mcu_wire_main.c) that reads frames from UART0 and answers each observation with the policy's
action. :class:`PilSession` runs the image under ``qemu-system-arm -M mps2-an386`` with its UART on a host
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
from aegis.export.mcu import FOOTPRINT_FLAGS, QEMU, McuImage, link_image, startup_source
from aegis.export.wire_c import write_wire_sources

OBSERVATION_ID = 1
ACTION_ID = 2
STOP_ID = 0xFF01
CORE_CLOCK_HZ = 25_000_000
"""mps2-an386's SYSCLK, which drives SysTick (CLKSOURCE = core clock) in QEMU."""
INSTRUCTIONS_PER_TICK = 1e9 / CORE_CLOCK_HZ
"""Under ``-icount shift=0`` (1 ns of virtual time per instruction): instructions per SysTick tick."""
QEMU_PIL_ARGS = ("-M", "mps2-an386", "-display", "none", "-monitor", "none", "-serial", "pty",
                 "-semihosting-config", "enable=on,target=native", "-icount", "shift=0")
_PTY = re.compile(r"char device redirected to (/dev/pts/\d+)")


def build_pil_image(report: ExportReport, build_dir: str | Path, max_payload: int = 64) -> McuImage:
    """The PIL image of ``report``'s policy: startup, policy, wire frame, UART main; no C library start-up."""
    directory = Path(build_dir)
    directory.mkdir(parents=True, exist_ok=True)
    wire_c, _ = write_wire_sources(directory)
    main = templates.write("mcu_wire_main.c", report.name, directory)
    extra = (*FOOTPRINT_FLAGS, f"-DAEGIS_WIRE_MAX_PAYLOAD={max_payload}u")
    return link_image(directory / f"{report.name}_pil.elf", [startup_source(directory, io=False), main, wire_c, report.source],
                      [report.source.parent, directory], extra)


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

    def act(self, observation: np.ndarray) -> tuple[np.ndarray, float]:
        """The firmware's action for one observation (float32), and the instructions its answer took."""
        x = np.ascontiguousarray(observation, dtype="<f4").reshape(self.input_size)
        self._seq_stamp += 1
        self.link.send(OBSERVATION_ID, x.tobytes(), stamp_ns=self._seq_stamp)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            for frame in self.link.poll(0.1):
                if frame.msg_id == ACTION_ID and frame.stamp_ns == self._seq_stamp and len(frame.payload) == self._answer.size:
                    *action, ticks = self._answer.unpack(frame.payload)
                    return np.array(action, dtype=np.float32), ticks * INSTRUCTIONS_PER_TICK
            if self.process.poll() is not None:
                break
        raise ToolchainError(f"no answer from the PIL image within {self.timeout_s:g} s (QEMU exit status {self.process.poll()})")

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
