"""Builds an exported policy with the host C compiler into a shared library and runs it through ctypes.

A shared library with a small C harness (c_templates/host_harness.c) rather than a test executable: the
inputs and outputs cross as float32 arrays (no text round trip), a batch of inferences is one ctypes call,
and the timing loop runs in C, so ctypes' per-call overhead (about a microsecond) is not in the numbers.
"""

from __future__ import annotations

import ctypes
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aegis.export import templates
from aegis.export.errors import ToolchainError
from aegis.export.exporter import ExportReport
from aegis.export.toolchain import STRICT_C_FLAGS, host_cc, run

_FLOATS = ctypes.POINTER(ctypes.c_float)


class HostPolicy:
    """An exported policy compiled for this machine: infer() on batches, seconds_per_inference() in C."""

    def __init__(self, library: Path, input_size: int, output_size: int) -> None:
        self.library = library
        self.input_size = input_size
        self.output_size = output_size
        self._lib = ctypes.CDLL(str(library))
        self._lib.aegis_host_run.argtypes = [_FLOATS, _FLOATS, ctypes.c_long]
        self._lib.aegis_host_run.restype = None
        self._lib.aegis_host_seconds.argtypes = [_FLOATS, _FLOATS, ctypes.c_long, ctypes.c_long]
        self._lib.aegis_host_seconds.restype = ctypes.c_double
        self._lib.aegis_host_time_each.argtypes = [_FLOATS, _FLOATS, ctypes.c_long, ctypes.POINTER(ctypes.c_longlong)]
        self._lib.aegis_host_time_each.restype = None

    def _batch(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(inputs, dtype=np.float32).reshape(-1, self.input_size)
        return x, np.empty((x.shape[0], self.output_size), dtype=np.float32)

    def infer(self, inputs: np.ndarray) -> np.ndarray:
        """[n, input_size] float32 -> [n, output_size] float32, one C inference per row."""
        x, y = self._batch(inputs)
        self._lib.aegis_host_run(x.ctypes.data_as(_FLOATS), y.ctypes.data_as(_FLOATS), x.shape[0])
        return y

    def call_times_ns(self, inputs: np.ndarray) -> np.ndarray:
        """One inference per row of ``inputs``, each timed in C around the call alone (no Python, no ctypes): ns, int64."""
        x, y = self._batch(inputs)
        times = np.empty(x.shape[0], dtype=np.int64)
        self._lib.aegis_host_time_each(x.ctypes.data_as(_FLOATS), y.ctypes.data_as(_FLOATS), x.shape[0],
                                       times.ctypes.data_as(ctypes.POINTER(ctypes.c_longlong)))
        return times

    def single_call(self, input_row: np.ndarray) -> tuple[Callable[[], None], np.ndarray]:
        """(a no-argument callable running one inference on ``input_row`` through ctypes, its output buffer):
        what a Python caller pays per inference, ctypes' argument conversion included."""
        x, y = self._batch(input_row)
        if x.shape[0] != 1:
            raise ValueError(f"single_call takes one input row, got {x.shape[0]}")
        run, x_pointer, y_pointer = self._lib.aegis_host_run, x.ctypes.data_as(_FLOATS), y.ctypes.data_as(_FLOATS)

        def call() -> None:  # the pointers keep their arrays alive (numpy's data_as holds a reference)
            run(x_pointer, y_pointer, 1)

        return call, y

    def seconds_per_inference(self, inputs: np.ndarray, runs: int = 7, min_seconds: float = 0.05) -> float:
        """Median over `runs` timed passes (each >= min_seconds, cycling through the inputs) of seconds per call."""
        x, y = self._batch(inputs)
        count = x.shape[0]
        args = (x.ctypes.data_as(_FLOATS), y.ctypes.data_as(_FLOATS), count)
        repeats = 1
        while self._lib.aegis_host_seconds(*args, repeats) < min_seconds:  # also the warm-up
            repeats *= 2
        return statistics.median(self._lib.aegis_host_seconds(*args, repeats) / (repeats * count) for _ in range(runs))


def build_host(report: ExportReport, build_dir: str | Path | None = None, cc: str | None = None) -> HostPolicy:
    """Compiles the exported C (-O2 -std=c99 -Wall -Wextra -Werror -pedantic) with the harness into a shared library."""
    compiler = cc or host_cc()
    if compiler is None:
        raise ToolchainError("no host C compiler: set CC or install cc, gcc or clang")
    directory = Path(build_dir) if build_dir is not None else report.source.parent / "host_build"
    directory.mkdir(parents=True, exist_ok=True)
    harness = templates.write("host_harness.c", report.name, directory)
    library = (directory / f"lib{report.name}.so").resolve()
    run([compiler, *STRICT_C_FLAGS, "-fPIC", "-shared", f"-I{report.source.parent.resolve()}",
         str(report.source.resolve()), str(harness.resolve()), "-o", str(library), "-lm"])
    return HostPolicy(library, report.input_size, report.output_size)
