"""C export of ONNX MLP policies: dependency-free C99 for the host and for microcontrollers (Cortex-M4F).

`export_c(model, out_dir)` writes `<name>.h` and `<name>.c`; aegis.export.host builds them with the host C
compiler and runs them through ctypes; aegis.export.mcu builds a Cortex-M4F image and runs it under QEMU.
"""

from aegis.export.errors import ExportError, ToolchainError, UnsupportedModelError
from aegis.export.exporter import ExportReport, export_c
from aegis.export.graph import SUPPORTED_OPS, load_plan

__all__ = ["SUPPORTED_OPS", "ExportError", "ExportReport", "ToolchainError", "UnsupportedModelError", "export_c", "load_plan"]
