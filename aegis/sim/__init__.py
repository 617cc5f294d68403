"""PyBullet simulation: the worlds (quadrotor, ground robot), scenario obstacles and sensors the sim bridges drive.

Worlds open their PyBullet client through :func:`connect`, which sends PyBullet's C-level
banner ("pybullet build time: ...", printed to file descriptor 1 at the first connect and
flushed at exit) to /dev/null, so `aegis sim`, `aegis eval` workers and JSON on stdout stay clean.
"""

from __future__ import annotations

import ctypes
import os
import sys
from contextlib import contextmanager
from collections.abc import Iterator


@contextmanager
def _stdout_to_devnull() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            try:
                yield
            finally:
                ctypes.CDLL(None).fflush(None)  # C's buffered banner goes to /dev/null, not to the real stdout later
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def connect(gui: bool = False) -> int:
    """Open a PyBullet client (DIRECT, or GUI) quietly; returns its id, raising RuntimeError if PyBullet refuses."""
    with _stdout_to_devnull():
        import pybullet

        client = pybullet.connect(pybullet.GUI if gui else pybullet.DIRECT)
    if client < 0:
        raise RuntimeError("PyBullet could not open a GUI (one per process, and it needs a display); run without gui")
    return client


if "pybullet" not in sys.modules:  # the banner may also be printed at import: import it here, quietly
    with _stdout_to_devnull():
        import pybullet  # noqa: F401
