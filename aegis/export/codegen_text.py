"""Text helpers of the generated C: float and string literals, comment-safe text, the precision notes."""

from __future__ import annotations

import numpy as np

from aegis.export.errors import ExportError

PRECISION_NOTES = {
    "float32": "float32 weights and arithmetic",
    "int8": "int8 weights, one float scale per output channel (symmetric, zero point 0); "
    "float activations; products summed in float, scaled once per output",
}
def comment_text(text: str) -> str:
    """Text safe inside a C comment: printable ASCII (others escaped), no comment terminator."""
    safe = "".join(ch if 32 <= ord(ch) < 127 else ascii(ch)[1:-1] for ch in text)
    return safe.replace("*/", "* /")


def c_float(value: float) -> str:
    """A float32 as the shortest C literal that reads back to the same bits, e.g. 0.1f, 1.0f, -2.5e-08f."""
    value32 = np.float32(value)
    if not np.isfinite(value32):
        raise ExportError(f"cannot write {value} as a C float literal")
    text = str(value32)
    if not any(ch in text for ch in ".e"):
        text += ".0"
    return text + "f"


def c_string(text: str) -> str:
    """A C string literal of ``text``: printable ASCII as is (quote and backslash escaped), other bytes of its UTF-8 in octal."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in "\\\"":
            out.append("\\" + ch)
        elif 32 <= byte < 127 and ch != "?":  # no ?? trigraphs
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'
