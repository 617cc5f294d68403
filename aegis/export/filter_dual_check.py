"""Proves the float active-set filter QP (aegis.export.filter_dual) on a Cortex-M4F: sample problems under QEMU against the host's Python paths.

The same harness (c_templates/filter_dual_main.c) and problems (aegis.export.filter_samples, written by
aegis.export.filter_check) are built with arm-none-eabi-gcc for the M4F (hard float, fpv4-sp-d16) and run under
``qemu-system-arm -icount shift=0`` (1 ns of virtual time per instruction, so the SysTick count the harness prints
around each solve gives its instructions, to within 40), and with the host C compiler. Each prints every answer's
float bits. The M4F's answers are compared with the host's closed-form path (exact, in double), with OSQP called
directly (osqp-direct) and with the host build of the same C (host-c). A footprint image (one solve, no I/O) gives
the solver's flash and RAM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aegis.export import templates
from aegis.export.errors import ToolchainError
from aegis.export.filter_check import AGREEMENT, PROBLEMS_HEADER, run_host_program, write_problems_header
from aegis.export.filter_dual import FilterDualExport
from aegis.export.filter_samples import QpProblems, solve_on_host
from aegis.export.mcu import (
    FOOTPRINT_FLAGS,
    SEMIHOSTING_FLAGS,
    McuImage,
    compile_objects,
    external_symbols,
    link_image,
    run_qemu,
    startup_source,
)
from aegis.export.toolchain import STRICT_C_FLAGS, host_cc, run

INSTRUCTIONS_PER_TICK = 40
"""SysTick runs on mps2-an386's 25 MHz core clock; under -icount shift=0 an instruction takes 1 ns: 40 per tick."""
MCU_CLOCK_HZ = 168e6
"""The clock of the Cortex-M4F parts the issue names (STM32F4): the time an instruction count means, at one a cycle."""
ICOUNT = ("-icount", "shift=0")


@dataclass(frozen=True)
class DualAnswers:
    """What a harness printed: ``u`` (n, m), ``slack`` (n,), ``solved`` (n,), ``steps`` (n,), ``instructions`` (n,; 0 on the host)."""

    u: np.ndarray
    slack: np.ndarray
    solved: np.ndarray
    steps: np.ndarray
    instructions: np.ndarray


_LINE = re.compile(r"^qp (\d+) ([01]) (\d+) (\d+)((?: [0-9a-f]{8})+) (\w+)$")


def parse_answers(stdout: str, count: int, n_inputs: int) -> DualAnswers:
    """The answers from the harness' 'qp K solved steps ticks <hex float bits>... status' lines, in order."""
    bits = np.zeros((count, n_inputs + 1), dtype=np.uint32)
    solved = np.zeros(count, dtype=bool)
    steps, ticks = np.zeros(count, dtype=int), np.zeros(count, dtype=int)
    seen = np.zeros(count, dtype=bool)
    for line in stdout.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        k, words = int(match.group(1)), match.group(5).split()
        if k >= count or len(words) != n_inputs + 1:
            raise ToolchainError(f"unexpected line from the QP harness: {line!r}")
        bits[k] = [int(word, 16) for word in words]
        solved[k], steps[k], ticks[k], seen[k] = match.group(2) == "1", int(match.group(3)), int(match.group(4)), True
    if not seen.all():
        raise ToolchainError(f"the QP harness printed {int(seen.sum())} of {count} answers\n{stdout[-2000:]}")
    values = bits.view(np.float32).astype(np.float64)
    return DualAnswers(values[:, :n_inputs].copy(), values[:, n_inputs].copy(), solved, steps, ticks * INSTRUCTIONS_PER_TICK)


def _harness(export: FilterDualExport, directory: Path, io: bool) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ("filter_dual_main.c" if io else "filter_dual_main_no_io.c")
    path.write_text(templates.render("filter_dual_main.c", export.name), encoding="ascii", newline="\n")
    return path


def run_on_host(export: FilterDualExport, problems: QpProblems, build_dir: Path, cc: str) -> DualAnswers:
    """The same harness and problems built with the host C compiler (strict flags) and run here."""
    build_dir.mkdir(parents=True, exist_ok=True)
    write_problems_header(problems, build_dir / PROBLEMS_HEADER)
    program = (build_dir / f"{export.name}_dual_test").resolve()
    run([cc, *STRICT_C_FLAGS, f"-I{build_dir.resolve()}", f"-I{export.out_dir.resolve()}",
         str(_harness(export, build_dir, io=True).resolve()), str(export.source.resolve()), "-o", str(program), "-lm"])
    return parse_answers(run_host_program(program), len(problems), export.spec.n_inputs)


@dataclass(frozen=True)
class FilterDualCheck:
    """The M4F's answers against the host's, with the images' sizes and the instructions per solve."""

    problems: QpProblems
    mcu: DualAnswers
    host_c: DualAnswers | None
    references: dict[str, tuple[np.ndarray, np.ndarray]]  # "closed-form", "osqp-direct", "host-c" -> (u, slack)
    test_image: McuImage
    footprint_image: McuImage
    external_symbols: tuple[str, ...]

    def deviation(self, path: str) -> float:
        """Largest |difference| of an input or the slack between the M4F and the host path's answers."""
        u, slack = self.references[path]
        return float(max(np.max(np.abs(self.mcu.u - u)), np.max(np.abs(self.mcu.slack - slack))))

    def agrees(self, tolerance: float = AGREEMENT) -> bool:
        """Every problem solved on the M4F, and within ``tolerance`` of every host path."""
        return bool(self.mcu.solved.all()) and all(self.deviation(path) <= tolerance for path in self.references)

    def lines(self, tolerance: float = AGREEMENT) -> list[str]:
        """The report as printed by `aegis export filter-c --solver active-set --mcu`."""
        n = len(self.problems)
        corrected = int(np.sum(np.any(np.abs(self.references["closed-form"][0] - self.problems.nominal) > 1e-6, axis=1)))
        test, footprint = self.test_image.sizes, self.footprint_image.sizes
        instructions = self.mcu.instructions
        lines = [
            f"Cortex-M4F (QEMU mps2-an386, -icount shift=0): {n} sample problems (filter rows from random states and obstacles; "
            f"{corrected} changed by the filter, up to {int(self.problems.candidates.max())} candidate rows), "
            f"{int(self.mcu.solved.sum())} solved, active-set steps median {np.median(self.mcu.steps):g}, max {self.mcu.steps.max()}",
            f"  instructions per solve: median {np.median(instructions):.0f}, max {instructions.max()} (to within 40) = "
            f"{np.median(instructions) / MCU_CLOCK_HZ * 1e6:.1f} / {instructions.max() / MCU_CLOCK_HZ * 1e6:.1f} µs at 168 MHz "
            "at one instruction a cycle",
        ]
        for path in self.references:
            deviation = self.deviation(path)
            verdict = "ok" if deviation <= tolerance else "EXCEEDED"
            extra = ""
            if path == "host-c" and self.host_c is not None:
                identical = float(np.mean(np.all(np.c_[self.mcu.u, self.mcu.slack] == np.c_[self.host_c.u, self.host_c.slack], axis=1)))
                extra = f"; {identical:.1%} of answers bit-identical"
            lines.append(f"  vs {path + ':':<12} max |difference| {deviation:.2e} (tolerance {tolerance:g}: {verdict}){extra}")
        lines += [
            f"  footprint image (startup + solver + one solve): flash {footprint.flash} B (text {footprint.text} + data {footprint.data}), "
            f"RAM {footprint.ram} B (data {footprint.data} + bss {footprint.bss}) + stack",
            f"  test image ({n} problems, printf): flash {test.flash} B, RAM {test.ram} B + stack",
            f"  the solver needs from the C library: {', '.join(self.external_symbols) or 'nothing'}",
            f"  images in {self.test_image.elf.parent.parent}",
        ]
        return lines


def check_filter_dual(export: FilterDualExport, problems: QpProblems, build_dir: str | Path, timeout: float = 300.0) -> FilterDualCheck:
    """Builds the M4F images, runs the problems under QEMU (-icount), solves them on the host (closed form, osqp-direct, host C)."""
    directory = Path(build_dir) / "mcu"
    test_dir = directory / "test"
    test_dir.mkdir(parents=True, exist_ok=True)
    write_problems_header(problems, test_dir / PROBLEMS_HEADER)
    includes = [test_dir, export.out_dir]
    test_image = link_image(test_dir / f"{export.name}_dual_test.elf", [startup_source(test_dir), _harness(export, test_dir, io=True),
                                                                         export.source], includes, SEMIHOSTING_FLAGS)
    mcu = parse_answers(run_qemu(test_image.elf, timeout, ICOUNT), len(problems), export.spec.n_inputs)
    footprint_dir = directory / "footprint"
    footprint_dir.mkdir(parents=True, exist_ok=True)
    footprint = link_image(footprint_dir / f"{export.name}_dual_footprint.elf",
                           [startup_source(footprint_dir, io=False), _harness(export, footprint_dir, io=False), export.source],
                           [export.out_dir], FOOTPRINT_FLAGS)
    run_qemu(footprint.elf, timeout=60)  # one solve; exits 1 when its answer is wrong
    symbols = external_symbols(compile_objects([export.source], [export.out_dir], directory / "obj", STRICT_C_FLAGS))
    references = {}
    for path in ("closed-form", "osqp-direct"):
        u, slack, _ = solve_on_host(problems, export.spec, path)
        references[path] = (u, slack)
    cc = host_cc()
    host_c = run_on_host(export, problems, Path(build_dir) / "host", cc) if cc is not None else None
    if host_c is not None:
        references["host-c"] = (host_c.u, host_c.slack)
    return FilterDualCheck(problems, mcu, host_c, references, test_image, footprint, tuple(symbols))
