"""The safety filter's QP (cvxpygen C) on a Cortex-M4F: built with arm-none-eabi-gcc, run under QEMU mps2-an386, equal to the host.

Slow (cross-compiling OSQP and emulating 200 solves: about 10 s). Needs gcc-arm-none-eabi,
libnewlib-arm-none-eabi and qemu-system-arm (Debian packages; .ci/run installs them), and cvxpygen.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from aegis.cli import main
from aegis.export.cli import config_filter
from aegis.export.filter_check import AGREEMENT, check_filter_qp
from aegis.export.filter_samples import sample_problems
from aegis.export.mcu import missing_tools
from aegis.paths import shipped_config

_missing = missing_tools() + (["cvxpygen"] if importlib.util.find_spec("cvxpygen") is None else [])
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(_missing),
        reason=f"needs {', '.join(_missing)} (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm; pip: cvxpygen)",
    ),
]
N_PROBLEMS = 200


def test_the_quadrotor_filters_qp_on_the_cortex_m4f_agrees_with_the_host(tmp_path: Path) -> None:
    from aegis.export.filter_qp import export_filter_qp

    found = config_filter(shipped_config("quadrotor_oracle_sim.yaml"), [])
    safety_filter = found["filter"]
    export = export_filter_qp(safety_filter.spec, tmp_path / "c")
    problems = sample_problems(safety_filter.model, safety_filter.spec, found["walls"], N_PROBLEMS, seed=11, region=found["region"])
    check = check_filter_qp(export, problems, tmp_path / "build")  # the footprint image's one solve must exit 0 too
    print("\n".join(check.lines()))
    assert check.mcu.solved.all() and set(check.mcu.statuses) == {"solved"}
    for path in ("cvxpy-param", "osqp-direct"):
        assert check.deviation(path) <= AGREEMENT, path
    if check.host_c is not None:  # the same C on the host: the last bits of double rounding part, and with the plant
        # model's rows (coefficients up to 1 / tau) that moves OSQP's stopping iteration on about 1 problem in 6, so the
        # answers differ by up to the solver's own tolerance (measured 8.6e-07), not the 1e-11 of the plain rows
        assert check.deviation("host-c") <= 1e-5
    assert check.agrees()
    # the QP's rows do matter: most sample commands are changed, and by more than the tolerance
    reference_u = check.references["cvxpy-param"][0]
    assert np.sum(np.abs(reference_u - problems.nominal).max(axis=1) > 10 * AGREEMENT) > N_PROBLEMS // 2
    # OSQP in embedded mode: no malloc, no stdio; only memset and sqrt from the C library
    library = {s for s in check.external_symbols if not s.startswith("__aeabi_")}
    assert library <= {"memset", "memcpy", "sqrt"}, library
    footprint = check.footprint_image.sizes
    assert footprint.flash < check.test_image.sizes.flash  # no printf, no embedded problems


def test_the_command_checks_on_the_mcu_and_exits_0(tmp_path: Path, capsys) -> None:
    assert main(["export", "filter-c", "quadrotor_oracle_sim", "-o", str(tmp_path / "out"), "--mcu", "--problems", "20"]) == 0
    out = capsys.readouterr().out
    assert "20 solved" in out and "EXCEEDED" not in out
    assert "footprint image" in out and "flash" in out
