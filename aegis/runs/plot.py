"""The picture of one run: top and side views with obstacles, path and reference; tracking error and clearance over time."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from aegis.runs.episode import EpisodeSeries


def plot_episode(series: EpisodeSeries, obstacles: Any, path: Path, title: str, goal: Any = None) -> Path:
    """Write a 2x2 figure to ``path`` (PNG) and return it. Uses matplotlib's Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle
    from matplotlib.transforms import Affine2D

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), constrained_layout=True)
    top, side, error_ax, clearance_ax = axes.flat
    for obstacle in obstacles:
        (x, y, z), (sx, sy, sz) = obstacle.position, obstacle.size
        colour = {"sphere": "tab:orange", "cylinder": "tab:blue", "box": "tab:gray"}[obstacle.shape]
        if obstacle.shape == "box":
            rect = Rectangle((x - sx / 2, y - sy / 2), sx, sy, color=colour, alpha=0.5)
            rect.set_transform(Affine2D().rotate_around(x, y, obstacle.yaw_rad) + top.transData)
            top.add_patch(rect)
            width = abs(math.cos(obstacle.yaw_rad)) * sx + abs(math.sin(obstacle.yaw_rad)) * sy
            side.add_patch(Rectangle((x - width / 2, z - sz / 2), width, sz, color=colour, alpha=0.5))
        else:
            top.add_patch(Circle((x, y), sx / 2, color=colour, alpha=0.5))
            if obstacle.shape == "sphere":
                side.add_patch(Circle((x, z), sx / 2, color=colour, alpha=0.5))
            else:
                side.add_patch(Rectangle((x - sx / 2, z - sz / 2), sx, sz, color=colour, alpha=0.5))
    for ax, (i, j), labels in ((top, (0, 1), ("x (m)", "y (m)")), (side, (0, 2), ("x (m)", "z (m)"))):
        if series.reference_positions.size:
            ax.plot(series.reference_positions[:, i], series.reference_positions[:, j], "k--", lw=1, label="reference")
        ax.plot(series.positions[:, i], series.positions[:, j], color="tab:green", lw=1.5, label="robot")
        if series.positions.size:
            ax.plot(series.positions[0, i], series.positions[0, j], "go", label="start")
        if goal is not None:
            ax.plot(goal.position[i], goal.position[j], "r*", markersize=12, label="goal")
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    top.set_title("top view")
    side.set_title("side view")
    top.legend(loc="upper right", fontsize=8)
    if series.tracking_error.size:
        error_ax.plot(series.reference_times, series.tracking_error * 100.0, color="tab:red")
    error_ax.set_title("tracking error")
    error_ax.set_xlabel("t (s)")
    error_ax.set_ylabel("|position - reference| (cm)")
    error_ax.grid(alpha=0.3)
    if series.clearance is not None:
        clearance_ax.plot(series.times, series.clearance, color="tab:purple", label="clearance, bounding sphere (m)")
    if series.barrier.size:
        clearance_ax.plot(series.barrier_times, series.barrier, color="tab:olive", lw=1, label="safety filter: lowest barrier h")
    if series.clearance is None and not series.barrier.size:
        clearance_ax.text(0.5, 0.5, "no obstacles, no filter", ha="center", va="center", transform=clearance_ax.transAxes)
    else:
        clearance_ax.axhline(0.0, color="k", lw=0.8)
        clearance_ax.legend(loc="upper right", fontsize=8)
    clearance_ax.set_title("safety: clearance and barrier (>= 0 is safe)")
    clearance_ax.set_xlabel("t (s)")
    clearance_ax.set_ylabel("m")
    clearance_ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
