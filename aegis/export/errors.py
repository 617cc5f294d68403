"""The errors of the C export: a model it cannot export, and a C tool-chain that failed."""

from __future__ import annotations


class ExportError(Exception):
    """A model that cannot be exported to C, with the reason in one line."""


class UnsupportedModelError(ExportError):
    """A graph with ONNX ops the C export does not implement; `unsupported` lists (op_type, node name)."""

    def __init__(self, message: str, unsupported: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.unsupported = unsupported


class ToolchainError(Exception):
    """A C compiler, linker or emulator that is missing or failed; the message carries its output."""
