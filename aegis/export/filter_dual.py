"""The safety filter's QP as dependency-free single-precision C: a dual active-set solve (Goldfarb-Idnani) for a microcontroller's FPU.

`export_filter_dual(spec, out_dir)` writes ``<name>_dual.h`` (the QP's sizes, penalties and the API) and
``<name>_dual.c`` (c_templates/filter_dual.c with the spec's weights and bounds): the same QP as
aegis.controllers.cbf.qp, solved exactly (to float rounding) by a finite active-set method instead of
cvxpygen's OSQP iterations (aegis.export.filter_qp), in float so that a Cortex-M4F's single-precision FPU runs it
in hardware where OSQP's doubles run in software. Static memory, no malloc, no C library but sqrtf. The host's
closed-form path (aegis.controllers.cbf.closed_form) is its reference: aegis.export.filter_check compares them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from aegis.controllers.cbf.qp import INACTIVE_ROW_B, QpSpec
from aegis.export import templates
from aegis.export.codegen import c_float, check_name, comment_text

DEFAULT_NAME = "filter"
TOLERANCE = 1e-5
"""A constraint counts as violated below ``-TOLERANCE * (1 + |b|)`` (float rounding of a'x is about 1e-7 of its terms)."""
MAX_STEPS = 64
"""Steps (a constraint added, or one dropped) before the solve gives up and reports failure: 15 constraints need far fewer."""


@dataclass(frozen=True)
class FilterDualExport:
    """What export_filter_dual wrote: the folder, the header and the source."""

    spec: QpSpec
    name: str
    out_dir: Path
    header: Path
    source: Path

    @property
    def sources(self) -> tuple[Path, ...]:
        return (self.source,)

    @property
    def include_dirs(self) -> tuple[Path, ...]:
        return (self.out_dir,)

    def lines(self) -> list[str]:
        """The report as printed by `aegis export filter-c --solver active-set`."""
        spec = self.spec
        return [
            f"wrote {self.header} and {self.source}",
            f"  QP          {spec.n_inputs} inputs, {spec.max_rows} barrier rows + input bounds + 1 slack (aegis.controllers.cbf.qp)",
            f"  weights     {_numbers(spec.weights)}; bounds {_numbers(spec.lower)} .. {_numbers(spec.upper)}",
            f"  slack       {spec.slack_quadratic:g} s^2 + {spec.slack_linear:g} s",
            f"  solver      dual active set (Goldfarb-Idnani), float32 (a Cortex-M4F's FPU), static memory; "
            f"violation tolerance {TOLERANCE:g} (1 + |b|), at most {MAX_STEPS} steps",
            f"  API         int {self.name}_dual_solve(const float *nominal, const float *a, const float *b, float *u, float *slack, "
            f"unsigned *steps);  /* a: {spec.max_rows} x {spec.n_inputs} row-major; 1 when solved */",
        ]


def export_filter_dual(spec: QpSpec, out_dir: str | Path, name: str = DEFAULT_NAME) -> FilterDualExport:
    """Writes ``<name>_dual.h`` and ``<name>_dual.c`` for ``spec`` into ``out_dir`` (module doc)."""
    check_name(name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    half_inverse = [0.5 / w for w in spec.weights] + [0.5 / spec.slack_quadratic]
    text = templates.render("filter_dual.c", name)  # ${name} now; the spec's $${...} next
    source = out / f"{name}_dual.c"
    source.write_text(Template(text).substitute(
        half_inverse_weights=", ".join(c_float(v) for v in half_inverse),
        lower=", ".join(c_float(v) for v in spec.lower),
        upper=", ".join(c_float(v) for v in spec.upper),
    ), encoding="ascii", newline="\n")
    header = out / f"{name}_dual.h"
    header.write_text(_header(spec, name), encoding="ascii", newline="\n")
    return FilterDualExport(spec, name, out, header, source)


def _numbers(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _header(spec: QpSpec, name: str) -> str:
    macro = name.upper()
    return f"""/* {name}_dual.h: the aegis safety filter's QP in float, dual active-set solve (`aegis export filter-c --solver active-set`;
 * generated, do not edit).
 *
 *   minimise    (u - u_nom)' W (u - u_nom) + {spec.slack_quadratic:g} s^2 + {spec.slack_linear:g} s
 *   subject to  A u + s 1 >= b   ({spec.max_rows} rows; an unused row: a = 0, b = {INACTIVE_ROW_B:g})
 *               lower <= u <= upper,  s >= 0
 *
 * W = diag{comment_text(_numbers(spec.weights))}, lower = {comment_text(_numbers(spec.lower))}, upper = {comment_text(_numbers(spec.upper))}.
 * Reentrant apart from two static scratch arrays (one caller at a time); no warm start: each solve is exact on its own.
 */
#ifndef {macro}_DUAL_H
#define {macro}_DUAL_H

#define {macro}_DUAL_INPUTS {spec.n_inputs}
#define {macro}_DUAL_ROWS {spec.max_rows}
#define {macro}_DUAL_INACTIVE_ROW_B ({INACTIVE_ROW_B:.1f}f)
#define {macro}_DUAL_SLACK_LINEAR {c_float(spec.slack_linear)}
#define {macro}_DUAL_TOLERANCE {c_float(TOLERANCE)}
#define {macro}_DUAL_DEPENDENT {c_float(1e-5)}
#define {macro}_DUAL_PIVOT {c_float(1e-6)}
#define {macro}_DUAL_MAX_STEPS {MAX_STEPS}

/* Solves for nominal ({macro}_DUAL_INPUTS), a ({macro}_DUAL_ROWS x {macro}_DUAL_INPUTS, row-major) and b ({macro}_DUAL_ROWS):
 * writes u ({macro}_DUAL_INPUTS), the slack and the steps taken; returns 1 when solved, 0 when it gave up
 * (a singular active set or more than {macro}_DUAL_MAX_STEPS steps: the caller falls back). */
int {name}_dual_solve(const float *nominal, const float *a, const float *b, float *u, float *slack, unsigned *steps);

#endif /* {macro}_DUAL_H */
"""
