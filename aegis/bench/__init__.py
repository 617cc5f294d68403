"""Benchmarks that print numbers (never timed asserts): sim throughput, safety filter, MPC; shared report helpers.

Every benchmark writes the same kind of JSON document: its rows, its targets (met or not, never
asserted) and the machine that measured them (:func:`machine`), through :func:`write_document`.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine(**versions: str) -> dict[str, Any]:
    """What measured the numbers: Python, platform, processor, CPU count, numpy, plus the given library versions."""
    import numpy as np

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        **versions,
    }


def write_document(document: dict[str, Any], path: str | Path) -> Path:
    """Write a benchmark's JSON document to ``path`` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
