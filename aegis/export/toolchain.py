"""Runs the C tools the export is checked with (host cc, arm-none-eabi-*, qemu-system-arm) and reports failures."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from aegis.export.errors import ToolchainError

HOST_CC_CANDIDATES = ("cc", "gcc", "clang")
# Warnings the generated C must pass, on the host and on the Cortex-M4F; -std=c99 also turns off FMA contraction.
STRICT_C_FLAGS = ("-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wdouble-promotion")
# Generated third-party C (cvxpygen and its embedded OSQP) is not aegis' to fix: unused static functions,
# missing field initialisers. It is built optimised in ISO C99 (no FMA contraction either), without -Werror.
GENERATED_C_FLAGS = ("-O2", "-std=c99")


def host_cc() -> str | None:
    """The host C compiler: $CC if set and found, else the first of cc, gcc, clang on PATH; None if none."""
    configured = os.environ.get("CC")
    if configured and shutil.which(configured):
        return configured
    return next((cc for cc in HOST_CC_CANDIDATES if shutil.which(cc)), None)


def missing(*tools: str) -> list[str]:
    """The tools of the list that are not on PATH."""
    return [tool for tool in tools if shutil.which(tool) is None]


def run(command: list[str], cwd: Path | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Runs a tool; a non-zero exit or a timeout raises ToolchainError with the command and its output."""
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError as exc:
        raise ToolchainError(f"{command[0]}: not found on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(f"{' '.join(command)}: timed out after {timeout:g} s\n{_text(exc.stdout)}{_text(exc.stderr)}") from exc
    if done.returncode != 0:
        raise ToolchainError(f"{' '.join(command)}: exit status {done.returncode}\n{done.stdout}{done.stderr}")
    return done


def _text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output
