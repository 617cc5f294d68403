"""Closed-loop quadrotor sim throughput from the command line: executor vs plain loops, targets, optional JSON.

    python bench/sim_throughput.py [--duration S] [--repeats N] [--config FILE] [--json FILE]

Runs aegis.bench.sim.run_sim_benchmark (see that module for what each row measures) and prints
its table and the issue's targets; the numbers are information, nothing here fails on them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import aegis  # noqa: F401 - installed (pip, colcon) or on PYTHONPATH
except ImportError:  # a bare source checkout: the repository root holds the aegis package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aegis.bench.sim import add_arguments, run_from_args  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sim_throughput", description=__doc__.splitlines()[0])
    add_arguments(parser)
    run_from_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
