"""C export for the host and for microcontrollers (Cortex-M4F): ONNX MLP policies, and the safety filter's QP.

`export_c(model, out_dir)` writes `<name>.h` and `<name>.c`; aegis.export.host builds them with the host C
compiler and runs them through ctypes; aegis.export.mcu builds a Cortex-M4F image and runs it under QEMU.
aegis.export.filter_qp writes the filter QP's cvxpygen C, and aegis.export.filter_check proves it on the
M4F against the host's solvers.
"""

from aegis.export.errors import ExportError, ToolchainError, UnsupportedModelError
from aegis.export.exporter import ExportReport, export_c
from aegis.export.graph import SUPPORTED_OPS, load_plan

__all__ = ["SUPPORTED_OPS", "ExportError", "ExportReport", "ToolchainError", "UnsupportedModelError", "export_c", "load_plan"]
