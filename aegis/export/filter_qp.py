"""The safety filter's QP as cvxpygen C for a microcontroller: the generated solver and an aegis header, in one folder.

`export_filter_qp(spec, out_dir)` generates C with cvxpygen's OSQP backend from the one cvxpy
formulation of the filter QP (aegis.controllers.cbf.cvxpy_solver.build_problem, the code the host's
``cvxpygen`` path compiles too) and copies the C it needs into ``out_dir``:

- ``include/``, ``src/cpg_solve.c``, ``src/cpg_workspace.c``: cvxpygen's parameter update, solve and result
  code, C symbols ``<name>_cpg_*``;
- ``solver_code/``: OSQP in embedded mode 2 (matrix updates, no malloc; memset and sqrt only);
- ``<name>_qp.h``: aegis' API over them: the sizes, the solver settings the host path uses
  (aegis.controllers.cbf.cvxpygen_solver.solver_settings) and ``<name>_solve(nominal, a, b, u, &slack)``.

cvxpygen writes doubles (``cpg_float``): on a Cortex-M4F, whose FPU is single precision, they run in
software (libgcc). cvxpygen's output is not byte-reproducible: besides its time stamps, the order of
two matrix/vector updates in ``cpg_solve`` follows Python's string hashing, which moves answers by
about 1e-12 between two generations (never beyond the solver's tolerance).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aegis.controllers.cbf.qp import INACTIVE_ROW_B, QpSpec
from aegis.export.codegen import check_name, comment_text
from aegis.export.errors import ExportError

DEFAULT_NAME = "filter"


@dataclass(frozen=True)
class FilterQpExport:
    """What export_filter_qp wrote: the folder, its C sources and include folders, the header and the settings."""

    spec: QpSpec
    name: str
    out_dir: Path
    header: Path
    sources: tuple[Path, ...]
    include_dirs: tuple[Path, ...]
    settings: dict[str, float | int]

    def lines(self) -> list[str]:
        """The report as printed by `aegis export filter-c`."""
        spec = self.spec
        settings = ", ".join(f"{key} {value:g}" for key, value in self.settings.items())
        return [
            f"wrote {self.header} and cvxpygen's C in {self.out_dir} ({len(self.sources)} .c files)",
            f"  QP          {spec.n_inputs} inputs, {spec.max_rows} barrier rows + input bounds + 1 slack (aegis.controllers.cbf.qp)",
            f"  weights     {_numbers(spec.weights)}; bounds {_numbers(spec.lower)} .. {_numbers(spec.upper)}",
            f"  slack       {spec.slack_quadratic:g} s^2 + {spec.slack_linear:g} s",
            f"  solver      OSQP (cvxpygen, embedded mode 2: static memory, no malloc), double precision; {settings}",
            f"  API         int {self.name}_solve(const double *nominal, const double *a, const double *b, double *u, double *slack);"
            f"  /* a: {spec.max_rows} x {spec.n_inputs} row-major; 1 when solved */",
        ]


def export_filter_qp(spec: QpSpec, out_dir: str | Path, name: str = DEFAULT_NAME, tolerance: float = 1e-6,
                     max_iterations: int = 4000) -> FilterQpExport:
    """Generates the filter QP's C for ``spec`` into ``out_dir`` (module doc); ExportError when cvxpygen is missing or fails."""
    from aegis.controllers.cbf.cvxpygen_solver import generate_code, solver_settings

    check_name(name)
    settings = solver_settings(tolerance, max_iterations)
    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="aegis-filter-qp-") as tmp:
        code = Path(tmp) / "code"
        log = Path(tmp) / "cvxpygen.log"
        try:
            generate_code(spec, code, name, log)
        except ImportError as exc:
            raise ExportError(f"cvxpygen is not installed ({exc}): pip install cvxpygen") from None
        except Exception as exc:  # noqa: BLE001 - whatever cvxpygen raised, said in one line with its log
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise ExportError(f"cvxpygen failed: {type(exc).__name__}: {exc}\n{tail}") from None
        c = code / "c"
        out.mkdir(parents=True, exist_ok=True)
        for folder in ("include", "src", "solver_code"):
            shutil.rmtree(out / folder, ignore_errors=True)
        shutil.copytree(c / "include", out / "include")
        (out / "src").mkdir()
        for source in ("cpg_solve.c", "cpg_workspace.c"):  # not cpg_example.c: it has a main()
            shutil.copy(c / "src" / source, out / "src" / source)
        solver = out / "solver_code"
        shutil.copytree(c / "solver_code" / "src", solver / "src")
        shutil.copytree(c / "solver_code" / "inc", solver / "inc")
        for file in ("workspace.c", "workspace.h", "osqp_configure.h", "LICENSE"):
            shutil.copy(c / "solver_code" / file, solver / file)
        shutil.copy(code / "LICENSE", out / "LICENSE.cvxpygen")
    header = out / f"{name}_qp.h"
    header.write_text(_header(spec, name, settings), encoding="ascii", newline="\n")
    sources = (out / "src" / "cpg_solve.c", out / "src" / "cpg_workspace.c", solver / "workspace.c",
               *sorted((solver / "src").glob("*.c")))
    include_dirs = (out, out / "include", solver, solver / "inc" / "public", solver / "inc" / "private")
    return FilterQpExport(spec, name, out, header, sources, include_dirs, settings)


def _numbers(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def c_double(value: float) -> str:
    """A double as an exact C99 hexadecimal literal (the same bits on every compiler), e.g. 0x1.8000000000000p+1."""
    value = float(value)
    if not np.isfinite(value):
        raise ExportError(f"cannot write {value} as a C double literal")
    return value.hex()


def _header(spec: QpSpec, name: str, settings: dict[str, float | int]) -> str:
    macro = name.upper()
    scale = ", ".join(c_double(np.sqrt(w)) for w in spec.weights)
    setters = "\n".join(
        f"    {name}_cpg_set_solver_{key}({c_double(value) if isinstance(value, float) else value});  /* {value:g} */"
        for key, value in settings.items()
    )
    return f"""/* {name}_qp.h: the aegis safety filter's QP as C (`aegis export filter-c`; generated, do not edit).
 *
 *   minimise    (u - u_nom)' W (u - u_nom) + {spec.slack_quadratic:g} s^2 + {spec.slack_linear:g} s
 *   subject to  A u + s 1 >= b   ({spec.max_rows} rows; an unused row: a = 0, b = {INACTIVE_ROW_B:g})
 *               lower <= u <= upper,  s >= 0
 *
 * W = diag{comment_text(_numbers(spec.weights))}, lower = {comment_text(_numbers(spec.lower))}, upper = {comment_text(_numbers(spec.upper))}.
 * cvxpygen solves it over v = sqrt(W) u (aegis.controllers.cbf.cvxpy_solver); {name}_solve() converts.
 * OSQP settings as aegis' host path: {comment_text(", ".join(f"{k} {v:g}" for k, v in settings.items()))}.
 * Not reentrant: the solver's workspace is static (one caller at a time); it warm-starts from the last answer.
 */
#ifndef {macro}_QP_H
#define {macro}_QP_H

#include <string.h>

#include "cpg_solve.h"
#include "cpg_workspace.h"

#define {macro}_QP_INPUTS {spec.n_inputs}
#define {macro}_QP_ROWS {spec.max_rows}
#define {macro}_QP_INACTIVE_ROW_B ({INACTIVE_ROW_B:.1f})

/* The OSQP settings of aegis' host path; {name}_solve() applies them on its first call. */
static inline void {name}_configure(void)
{{
{setters}
}}

/* Solves for nominal ({macro}_QP_INPUTS), a ({macro}_QP_ROWS x {macro}_QP_INPUTS, row-major) and b ({macro}_QP_ROWS):
 * writes u ({macro}_QP_INPUTS) and the slack; returns 1 when OSQP reports solved (or solved inaccurate), else 0. */
static inline int {name}_solve(const double *nominal, const double *a, const double *b, double *u, double *slack)
{{
    static const double scale[{macro}_QP_INPUTS] = {{{scale}}}; /* sqrt(W): u = v / scale */
    static int configured = 0;
    const char *status;
    int i, j;
    if (!configured) {{
        {name}_configure();
        configured = 1;
    }}
    for (i = 0; i < {macro}_QP_INPUTS; ++i) {{
        {name}_cpg_update_u_nom(i, nominal[i]);
    }}
    for (j = 0; j < {macro}_QP_INPUTS; ++j) {{ /* cvxpygen takes A column by column */
        for (i = 0; i < {macro}_QP_ROWS; ++i) {{
            {name}_cpg_update_A(j * {macro}_QP_ROWS + i, a[i * {macro}_QP_INPUTS + j]);
        }}
    }}
    for (i = 0; i < {macro}_QP_ROWS; ++i) {{
        {name}_cpg_update_b(i, b[i]);
    }}
    {name}_cpg_solve();
    for (i = 0; i < {macro}_QP_INPUTS; ++i) {{
        u[i] = {name}_CPG_Result.prim->v[i] / scale[i];
    }}
    *slack = {name}_CPG_Result.prim->s;
    status = {name}_CPG_Result.info->status;
    return strcmp(status, "solved") == 0 || strcmp(status, "solved inaccurate") == 0;
}}

#endif /* {macro}_QP_H */
"""
