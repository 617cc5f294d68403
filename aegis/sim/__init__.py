"""PyBullet simulation: the worlds (quadrotor, ground robot), scenario obstacles and sensors the sim bridges drive.

Worlds open their PyBullet client through :func:`connect`. PyBullet's C code writes to the
process's file descriptors directly: its start-up banner goes to stderr (harmless), but some
warnings (a URDF link without inertia, per link) go to stdout, where they would mix with a
command's output; :func:`stdout_to_devnull` silences such a call.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Send file descriptor 1 (C's stdout too, flushed on the way out) to /dev/null for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            try:
                yield
            finally:
                ctypes.CDLL(None).fflush(None)  # what C buffered meanwhile goes to /dev/null too
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def connect(gui: bool = False) -> int:
    """Open a PyBullet client (DIRECT, or GUI); returns its id, raising RuntimeError if PyBullet refuses."""
    import pybullet

    client = pybullet.connect(pybullet.GUI if gui else pybullet.DIRECT)
    if client < 0:
        raise RuntimeError("PyBullet could not open a GUI (one per process, and it needs a display); run without gui")
    return client

