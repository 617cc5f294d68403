"""Writes a Plan as dependency-free C99: a header with the API and a source with const weights and static buffers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from aegis.export.codegen_text import PRECISION_NOTES, c_float, comment_text
from aegis.export.errors import ExportError
from aegis.export.header import header_text, tables_source
from aegis.export.interface import Interface, network_interface
from aegis.export.plan import Dense, Elementwise, Plan
from aegis.export.quantize import quantize_per_output_channel

Precision = Literal["float32", "int8"]
PRECISIONS: tuple[str, ...] = ("float32", "int8")
C_KEYWORDS = frozenset({  # C99 keywords, and main
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
    "_Bool", "_Complex", "_Imaginary", "main",
})
FLOATS_PER_LINE = 8
INTS_PER_LINE = 16


@dataclass(frozen=True)
class GeneratedC:
    """The text of `<name>.h` and `<name>.c`, and what they hold."""

    header: str
    source: str
    weight_bytes: int  # static const data (flash on a microcontroller)
    activation_bytes: int  # static buffers (RAM)
    libm: tuple[str, ...]  # the libm functions the source calls


def check_name(name: str) -> None:
    """Refuses a name that is not a plain C identifier usable as a prefix."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) or name in C_KEYWORDS:
        raise ExportError(f"name {name!r} is not usable as a C identifier prefix (letters, digits, _; not a keyword)")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ExportError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")


def generate(plan: Plan, name: str, precision: Precision, sha256: str, interface: Interface | None = None) -> GeneratedC:
    """The header and source of ``plan``; ``interface`` documents its inputs and outputs (default: the bare network's)."""
    check_name(name)
    check_precision(precision)
    interface = interface or network_interface(plan.input_size, plan.output_size)
    if (len(interface.inputs), len(interface.outputs)) != (plan.input_size, plan.output_size):
        raise ExportError(f"the contract describes {len(interface.inputs)} inputs and {len(interface.outputs)} outputs, "
                          f"the network has {plan.input_size} and {plan.output_size}")
    writer = _SourceWriter(plan, name, precision)
    source = writer.source(sha256) + "\n" + tables_source(name, interface) + "\n"
    return GeneratedC(header_text(plan, name, precision, sha256, interface), source, writer.weight_bytes,
                      writer.activation_bytes, writer.libm)


class _SourceWriter:
    """Lays out the buffers and writes `<name>.c` for one plan."""

    def __init__(self, plan: Plan, name: str, precision: str) -> None:
        self.plan = plan
        self.name = name
        self.precision = precision
        self.weight_bytes = 0
        self.buffer_sizes = [0, 0]
        self.libm: tuple[str, ...] = tuple(
            sorted({"tanhf" for op in plan.ops if isinstance(op, Elementwise) and op.kind == "tanh"}
                   | {"expf" for op in plan.ops if isinstance(op, Elementwise) and op.kind == "sigmoid"})
        )
        self.data: list[str] = []
        self.functions: list[str] = []
        self.body: list[str] = []
        self._lay_out()

    @property
    def activation_bytes(self) -> int:
        return 4 * sum(self.buffer_sizes)

    def _buffer(self, index: int) -> str:
        return f"{self.name}_act{index}"

    def _lay_out(self) -> None:
        """Dense ops alternate between two static buffers; elementwise ops work in place (out of place from input)."""
        where: int | None = None  # None: the vector is still the caller's input
        for k, op in enumerate(self.plan.ops):
            src = "input" if where is None else self._buffer(where)
            if isinstance(op, Dense):
                dst_index = 1 if where == 0 else 0
                self._dense(k, op, dst_index)
                self.body.append(f"    /* op {k}: {op.op_type} {_names(op.nodes)}, {op.n_in} -> {op.n_out} */\n"
                                 f"    {self.name}_dense{k}({src});")
            else:
                dst_index = 0 if where is None else where
                last = k == len(self.plan.ops) - 1
                dst = "output" if last else self._buffer(dst_index)
                self._elementwise(k, op, src, dst)
                if last:
                    return
            self.buffer_sizes[dst_index] = max(self.buffer_sizes[dst_index], _size(op))
            where = dst_index
        src = "input" if where is None else self._buffer(where)
        self.body.append(f"    for (j = 0; j < {self.plan.output_size}; ++j) {{\n        output[j] = {src}[j];\n    }}")

    def _array(self, ctype: str, symbol: str, values: np.ndarray, comment: str) -> None:
        per_line = INTS_PER_LINE if ctype == "int8_t" else FLOATS_PER_LINE
        fmt = (lambda v: str(int(v))) if ctype == "int8_t" else c_float
        self.weight_bytes += int(values.size) * (1 if ctype == "int8_t" else 4)
        if values.ndim == 1:
            dims = f"[{values.shape[0]}]"
            rows = [_wrap([fmt(v) for v in values], per_line, "    ")]
            text = f"static const {ctype} {symbol}{dims} = {{\n" + rows[0] + "\n};"
        else:
            dims = f"[{values.shape[0]}][{values.shape[1]}]"
            rows = ["    {\n" + _wrap([fmt(v) for v in row], per_line, "        ") + "\n    }," for row in values]
            text = f"static const {ctype} {symbol}{dims} = {{\n" + "\n".join(rows) + "\n};"
        self.data.append(f"/* {comment} */\n{text}")

    def _dense(self, k: int, op: Dense, dst_index: int) -> None:
        n, w, b, s = self.name, f"{self.name}_w{k}", f"{self.name}_b{k}", f"{self.name}_s{k}"
        what = f"op {k}: {op.op_type} {_names(op.nodes)}, {op.n_in} -> {op.n_out}"
        if self.precision == "int8":
            quantized = quantize_per_output_channel(op.weight)
            self._array("int8_t", w, quantized.values, f"{what}: weight[i][j] ~= {w}[i][j] * {s}[j] (input i to output j)")
            scale = (quantized.scale * np.float32(op.alpha)).astype(np.float32)
            self._array("float", s, scale, f"{what}: per-output-channel scale" + (" (times alpha)" if op.alpha != 1.0 else ""))
            product = f"xi * (float){w}[i][j]"
        else:
            self._array("float", w, op.weight, f"{what}: {w}[i][j] weighs input i into output j")
            scale = None
            product = f"xi * {w}[i][j]"
        if op.bias is not None:
            self._array("float", b, op.bias, f"{what}: bias")
        y = self._buffer(dst_index)
        formula = "(x q) * s" if scale is not None else ("alpha (x W)" if op.alpha != 1.0 else "x W")
        formula += " + b" if op.bias is not None else ""
        finish = _dense_finish(y, op, b if op.bias is not None else None, s if scale is not None else None)
        lines = [
            f"/* {what}: {y} = {formula}, summed in input order. */",
            f"static void {n}_dense{k}(const float *x)",
            "{",
            "    int i, j;",
            f"    for (j = 0; j < {op.n_out}; ++j) {{",
            f"        {y}[j] = 0.0f;",
            "    }",
            f"    for (i = 0; i < {op.n_in}; ++i) {{",
            "        const float xi = x[i];",
            f"        for (j = 0; j < {op.n_out}; ++j) {{",
            f"            {y}[j] += {product};",
            "        }",
            "    }",
        ]
        if finish:
            lines += [f"    for (j = 0; j < {op.n_out}; ++j) {{", f"        {finish}", "    }"]
        lines.append("}")
        self.functions.append("\n".join(lines))

    def _elementwise(self, k: int, op: Elementwise, src: str, dst: str) -> None:
        constant = None
        if op.constant is not None:
            if op.constant.size == 1:
                constant = c_float(float(op.constant[0]))
            else:
                symbol = f"{self.name}_c{k}"
                self._array("float", symbol, op.constant, f"op {k}: {op.op_type} {_names(op.nodes)}: constant")
                constant = f"{symbol}[j]"
        expression = _expression(op, constant)
        self.body.append(
            f"    /* op {k}: {op.op_type} {_names(op.nodes)} */\n"
            f"    for (j = 0; j < {op.size}; ++j) {{\n"
            f"        const float v = {src}[j];\n"
            f"        {dst}[j] = {expression};\n"
            "    }"
        )

    def source(self, sha256: str) -> str:
        plan, name = self.plan, self.name
        layers = "\n".join(
            f" *   {k:<3} {op.op_type:<10} {f'{op.n_in} -> {op.n_out}' if isinstance(op, Dense) else str(op.size):<12} {_names(op.nodes)}"
            for k, op in enumerate(plan.ops)
        ) or " *   (none: the output is the input)"
        elided = f"\n * No-ops on the vector, left out: {_names(plan.elided)}" if plan.elided else ""
        includes = [f'#include "{name}.h"']
        system = (["#include <math.h> /* " + ", ".join(self.libm) + " */"] if self.libm else []) + (
            ["#include <stdint.h> /* int8_t */"] if self.precision == "int8" else [])
        if system:
            includes += [""] + system
        buffers = [
            f"static float {self._buffer(i)}[{size}];" for i, size in enumerate(self.buffer_sizes) if size > 0
        ]
        graph = f'"{comment_text(plan.graph_name)}"' if plan.graph_name else "(unnamed)"
        producer = f', producer "{comment_text(plan.producer)}"' if plan.producer else ""
        parts = [
            f"""/* {name}.c: an ONNX policy as dependency-free C99, generated by `aegis export c` (do not edit).
 *
 * Model sha256: {sha256}
 * Graph:        {graph}, opset {plan.opset}{producer}
 * Network:      {plan.describe()}
 * Precision:    {self.precision} ({PRECISION_NOTES[self.precision]})
 * Memory:       {self.weight_bytes} bytes of weights (static const: flash), {self.activation_bytes} bytes of activations (static: RAM)
 * libm:         {', '.join(self.libm) or 'none'}; no malloc, no recursion
 *
 * Ops (ONNX nodes):
{layers}{elided}
 *
 * Sums run in input order from 0.0f, so any IEEE-754 single-precision target gives the same bits when
 * compiled without -ffast-math and without FMA contraction (-std=c99, or -ffp-contract=off);
 * tanhf and expf come from the target's libm and may differ in the last bit.
 */""",
            "\n".join(includes),
            "\n\n".join(self.data) if self.data else "",
            "/* Activations: dense ops alternate between these buffers, elementwise ops work in place. */\n"
            + "\n".join(buffers) if buffers else "",
            "\n\n".join(self.functions),
            f"void {name}_infer(const float *input, float *output)\n{{\n    int j;\n"
            + "\n".join(self.body) + "\n}",
        ]
        return "\n\n".join(part for part in parts if part) + "\n"


def _size(op: Dense | Elementwise) -> int:
    return op.n_out if isinstance(op, Dense) else op.size


def _names(nodes: tuple[str, ...]) -> str:
    return comment_text(", ".join(f"'{node}'" for node in nodes))


def _wrap(items: list[str], per_line: int, indent: str) -> str:
    return "\n".join(indent + ", ".join(items[i : i + per_line]) + "," for i in range(0, len(items), per_line))


def _dense_finish(y: str, op: Dense, bias: str | None, scale: str | None) -> str | None:
    value = f"{y}[j]"
    if scale is not None:
        value = f"{value} * {scale}[j]"
    elif op.alpha != 1.0:
        value = f"{c_float(op.alpha)} * {value}"
    if bias is not None:
        value = f"{value} + {bias}[j]"
    return None if value == f"{y}[j]" else f"{y}[j] = {value};"


def _expression(op: Elementwise, constant: str | None) -> str:
    kind = op.kind
    if kind == "relu":
        return "v > 0.0f ? v : 0.0f"
    if kind == "leaky_relu":
        return f"v >= 0.0f ? v : {c_float(op.alpha)} * v"
    if kind == "tanh":
        return "tanhf(v)"
    if kind == "sigmoid":
        return "1.0f / (1.0f + expf(-v))"
    if kind == "clip":
        if op.low is None and op.high is None:
            return "v"
        if op.low is None:
            return f"v > {c_float(op.high)} ? {c_float(op.high)} : v"  # type: ignore[arg-type]
        if op.high is None:
            return f"v < {c_float(op.low)} ? {c_float(op.low)} : v"
        return f"v < {c_float(op.low)} ? {c_float(op.low)} : (v > {c_float(op.high)} ? {c_float(op.high)} : v)"
    operators = {"add": "v + {c}", "sub": "v - {c}", "rsub": "{c} - v", "mul": "v * {c}", "div": "v / {c}",
                 "max": "v < {c} ? {c} : v", "min": "v > {c} ? {c} : v"}  # NaN stays NaN, as onnxruntime's Max and Min
    return operators[kind].format(c=constant)
