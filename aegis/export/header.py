"""The text of an exported policy's ``<name>.h`` (its API, and every input and output float documented from the contract) and the
matching tables in ``<name>.c`` (names, units, output limits, and an input check)."""

from __future__ import annotations

from aegis.export.codegen_text import PRECISION_NOTES, c_float, c_string, comment_text
from aegis.export.errors import ExportError
from aegis.export.interface import Element, Field, Interface, macro_name
from aegis.export.plan import Plan


def header_text(plan: Plan, name: str, precision: str, sha256: str, interface: Interface) -> str:
    macro = name.upper()
    units = _units_paragraph(interface, name)
    fields = _field_macros(macro, "IN", interface.input_fields) + _field_macros(macro, "OUT", interface.output_fields)
    frame = (
        f"#define {macro}_FRAME_SIZE {interface.frame_size}\n#define {macro}_HISTORY {interface.history}\n" if interface.physical else ""
    )
    tables = ""
    if interface.physical:
        tables = f"""
/* Per element: names ("position_error[0]"), units ("m"), and the limits each output is clipped to (none: -+3.4e38). */
extern const char *const {name}_input_names[{macro}_INPUT_SIZE];
extern const char *const {name}_input_units[{macro}_INPUT_SIZE];
extern const char *const {name}_output_names[{macro}_OUTPUT_SIZE];
extern const char *const {name}_output_units[{macro}_OUTPUT_SIZE];
extern const float {name}_output_low[{macro}_OUTPUT_SIZE];
extern const float {name}_output_high[{macro}_OUTPUT_SIZE];
"""
    return f"""/* {name}.h: API of an ONNX policy exported to C99 by `aegis export c` (generated; do not edit).
 *
 * Model sha256: {sha256}
 * Network:      {comment_text(plan.describe())}
 * Precision:    {precision} ({PRECISION_NOTES[precision]})
{units}
 *
 * Input: {macro}_INPUT_SIZE floats{', physical units' if interface.physical else ''}
{_element_lines(interface.inputs)}
 *
 * Output: {macro}_OUTPUT_SIZE floats{', physical units' if interface.physical else ''}
{_element_lines(interface.outputs)}
 */
#ifndef {macro}_H
#define {macro}_H

#define {macro}_INPUT_SIZE {plan.input_size}
#define {macro}_OUTPUT_SIZE {plan.output_size}
#define {macro}_PARAMETER_COUNT {plan.parameter_count}
#define {macro}_MODEL_SHA256 "{sha256}"
#define {macro}_PHYSICAL_UNITS {1 if interface.physical else 0} /* 1: the C applies the contract: physical values in and out */
{frame}{fields}
#ifdef __cplusplus
extern "C" {{
#endif

/* One inference: reads {macro}_INPUT_SIZE floats from input, writes {macro}_OUTPUT_SIZE floats to output.
 * input and output must not overlap. Not reentrant: activations live in static buffers (one caller at a time). */
void {name}_infer(const float *input, float *output);

/* 1 when every input element is finite, else 0: {name}_infer() does not check (a NaN may come out as a finite
 * command), so call this first and fall back when it says 0. Needs IEEE floats without -ffast-math. */
int {name}_input_is_finite(const float *input);
{tables}
#ifdef __cplusplus
}}
#endif

#endif /* {macro}_H */
"""


def tables_source(name: str, interface: Interface) -> str:
    """The definitions the header declares: the input check, and (for a physical export) the names, units and limits."""
    macro = name.upper()
    check = (
        f"int {name}_input_is_finite(const float *input)\n{{\n    int i;\n"
        f"    for (i = 0; i < {macro}_INPUT_SIZE; ++i) {{\n"
        "        const float v = input[i];\n"
        "        if (!(v - v == 0.0f)) { /* NaN - NaN and inf - inf are NaN */\n"
        "            return 0;\n"
        "        }\n"
        "    }\n    return 1;\n}"
    )
    parts = [check]
    if interface.physical:
        for role, elements in (("input", interface.inputs), ("output", interface.outputs)):
            size = f"{macro}_{role.upper()}_SIZE"
            parts.append(_strings(f"{name}_{role}_names[{size}]", [e.name for e in elements]))
            parts.append(_strings(f"{name}_{role}_units[{size}]", [e.unit for e in elements]))
        for which, values in (("low", interface.output_low), ("high", interface.output_high)):
            bounded = [max(min(v, 3.4028234663852886e38), -3.4028234663852886e38) for v in values]
            values_text = ", ".join(c_float(v) for v in bounded)
            parts.append(f"const float {name}_output_{which}[{macro}_OUTPUT_SIZE] = {{\n    {values_text}\n}};")
    return "/* The interface the header declares. */\n" + "\n\n".join(parts)


def _units_paragraph(interface: Interface, name: str) -> str:
    if not interface.physical:
        return (" * Units:        the network's own: " + comment_text(interface.applied) + ".\n"
                " *               Normalise the input and scale the output yourself, as the network was trained.")
    return "\n".join([
        f" * Units:        PHYSICAL. The policy's contract (its ONNX metadata) is applied inside {name}_infer():",
        " *               feed sensor values in the units listed below and use the output as the command;",
        " *               do not normalise, scale or clip again. In the C: " + comment_text(interface.applied) + ".",
        " * Contract:     " + comment_text(interface.context) + ".",
    ])


def _element_lines(elements: tuple[Element, ...]) -> str:
    width = max((len(e.name) for e in elements), default=0)
    unit_width = max((len(e.unit) for e in elements), default=0)
    return "\n".join(
        f" *   [{i:>2}] {comment_text(e.name):<{width}}  {comment_text(e.unit):<{unit_width}}  {comment_text(e.note)}".rstrip()
        for i, e in enumerate(elements)
    )


def _field_macros(macro: str, role: str, fields: tuple[Field, ...]) -> str:
    lines, seen = [], {}
    for field in fields:
        key = macro_name(field.name)
        if key in seen:
            raise ExportError(f"fields {seen[key]!r} and {field.name!r} both become the C macro {macro}_{role}_{key}")
        seen[key] = field.name
        lines.append(f"#define {macro}_{role}_{key} {field.offset} /* {field.size} x {comment_text(field.unit)} */")
        lines.append(f"#define {macro}_{role}_{key}_SIZE {field.size}")
    return "\n".join(lines) + ("\n" if lines else "")


def _strings(declaration: str, values: list[str]) -> str:
    return f"const char *const {declaration} = {{\n" + "\n".join(f"    {c_string(v)}," for v in values) + "\n};"
