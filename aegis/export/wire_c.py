"""The wire frame in C for firmware (c_templates/aegis_wire.c, .h): written out, and built into a host tool the tests compare with Python.

``aegis_wire.c`` is the C counterpart of :mod:`aegis.transport.framing`: COBS, CRC-32, the header
check and a byte-at-a-time receiver, C99 with no malloc and nothing from the C library but memcpy and
memset, built with the same strict warnings as the exported policies. The host tool
(c_templates/wire_host_main.c) feeds a byte stream through the receiver and prints what it accepted,
re-encoded, and what it rejected by reason, so a test can hold it against the Python decoder.
"""

from __future__ import annotations

from pathlib import Path

from aegis.export import templates
from aegis.export.errors import ToolchainError
from aegis.export.toolchain import STRICT_C_FLAGS, host_cc, run

SOURCES = ("aegis_wire.c", "aegis_wire.h")


def write_wire_sources(directory: str | Path) -> tuple[Path, Path]:
    """aegis_wire.c and aegis_wire.h written into ``directory``; (the .c, the .h)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    c, h = (templates.write(name, "aegis", directory) for name in SOURCES)
    return c, h


def build_wire_host_tool(directory: str | Path, max_payload: int = 256, cc: str | None = None) -> Path:
    """The host tool (stdin bytes -> accepted frames and rejection counts) built with the host compiler; its path."""
    compiler = cc or host_cc()
    if compiler is None:
        raise ToolchainError("no host C compiler: set CC or install cc, gcc or clang")
    directory = Path(directory)
    source, _ = write_wire_sources(directory)
    main = templates.write("wire_host_main.c", "aegis", directory)
    tool = (directory / "aegis_wire_host").resolve()
    run([compiler, *STRICT_C_FLAGS, f"-DAEGIS_WIRE_MAX_PAYLOAD={max_payload}u", f"-I{directory.resolve()}", str(source.resolve()),
         str(main.resolve()), "-o", str(tool)])
    return tool
