"""The float active-set filter QP (`aegis export filter-c --solver active-set`) equals the Python filter's answers on sample problems.

On the host (needs a C compiler) and on an emulated Cortex-M4F (needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and
qemu-system-arm; .ci/run installs them): a few seconds each, so not marked slow. A missing tool skips, saying which.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aegis.cli import main
from aegis.export.cli import config_filter
from aegis.export.filter_check import AGREEMENT
from aegis.export.filter_dual import export_filter_dual
from aegis.export.filter_samples import sample_problems, solve_on_host
from aegis.export.mcu import missing_tools
from aegis.export.toolchain import host_cc
from aegis.paths import shipped_config

N_PROBLEMS = 200


def _problems(count: int = N_PROBLEMS, seed: int = 11):
    found = config_filter(shipped_config("quadrotor_sim.yaml"), [])
    safety_filter = found["filter"]
    return safety_filter.spec, sample_problems(safety_filter.model, safety_filter.spec, found["walls"], count, seed=seed, region=found["region"])


@pytest.mark.skipif(host_cc() is None, reason="needs a host C compiler (cc, gcc or clang)")
def test_the_host_build_answers_as_the_closed_form_path(tmp_path: Path) -> None:
    from aegis.export.filter_dual_check import run_on_host

    spec, problems = _problems()
    export = export_filter_dual(spec, tmp_path / "c")
    answers = run_on_host(export, problems, tmp_path / "host", host_cc())
    assert answers.solved.all()
    u, slack, _ = solve_on_host(problems, spec, "closed-form")
    assert np.max(np.abs(answers.u - u)) <= AGREEMENT and np.max(np.abs(answers.slack - slack)) <= AGREEMENT
    # the rows matter: most sample commands are changed by the filter, by more than the tolerance
    assert np.sum(np.abs(u - problems.nominal).max(axis=1) > 10 * AGREEMENT) > N_PROBLEMS // 2
    # and the answers keep the constraints (float rounding only)
    lower, upper = np.asarray(spec.lower), np.asarray(spec.upper)
    assert np.all(answers.u >= lower) and np.all(answers.u <= upper) and np.all(answers.slack >= 0.0)
    surplus = np.einsum("nkm,nm->nk", problems.a, answers.u) + answers.slack[:, None] - problems.b
    assert np.all(surplus >= -1e-4 * (1.0 + np.abs(problems.b)))


_missing = missing_tools()


@pytest.mark.skipif(bool(_missing), reason=f"needs {', '.join(_missing)} (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
def test_the_cortex_m4f_answers_as_python_in_a_few_thousand_instructions(tmp_path: Path) -> None:
    from aegis.export.filter_dual_check import check_filter_dual

    spec, problems = _problems()
    check = check_filter_dual(export_filter_dual(spec, tmp_path / "c"), problems, tmp_path / "build")  # footprint's solve must exit 0 too
    print("\n".join(check.lines()))
    assert check.mcu.solved.all()
    for path in ("closed-form", "osqp-direct"):
        assert check.deviation(path) <= AGREEMENT, path
    assert check.agrees()
    # the per-tick budget at 48 Hz is 20.8 ms = 3.5 M cycles at 168 MHz; the solve takes well under 1 % of it
    assert check.mcu.instructions.max() < 35_000
    assert set(check.external_symbols) <= {"memmove", "memcpy", "memset", "sqrtf"}, check.external_symbols
    assert check.footprint_image.sizes.flash < 8 * 1024


@pytest.mark.skipif(bool(_missing), reason=f"needs {', '.join(_missing)} (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
def test_the_command_checks_the_active_set_solver_and_exits_0(tmp_path: Path, capsys) -> None:
    assert main(["export", "filter-c", "quadrotor_sim", "-o", str(tmp_path / "out"), "--solver", "active-set", "--mcu", "--problems", "20"]) == 0
    out = capsys.readouterr().out
    assert "20 solved" in out and "EXCEEDED" not in out and "instructions per solve" in out
    assert (tmp_path / "out" / "filter_dual.h").is_file() and (tmp_path / "out" / "filter_dual.c").is_file()
