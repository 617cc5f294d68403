"""The picture of one run (plot.png): top and side views with obstacles, path and reference; tracking, clearance, barrier and filter activity over time.

Read at a glance: each obstacle kind has its colour and a legend entry. A view draws an obstacle
solidly only where it is in the robot's way in that view: in the top view the obstacles that reach
into the band of altitudes the robot flew (its true z range plus its bounding radius), in the side
view those inside the band of lateral (y) positions it covered; the others are drawn as dashed
outlines ("above/below the flown band", "beside the path"), so a path drawn across a sphere 0.6 m
above it no longer reads as a collision. Clearance (m, from the ground truth) and the filter's lowest
barrier value h (its model's own unit) have an axis each. Every time axis shades the stretches in
which the safety filter changed the command (its report's ``intervened``) and, in red, those in
which a fallback layer (not "qp"/"relaxed_qp") produced it. The same obstacle drawing serves the
swarm plot (aegis.runs.swarm_plot) and the video's top view (aegis.runs.video).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aegis.runs.episode import EpisodeSeries

OBSTACLE_COLOURS = {"sphere": "tab:orange", "cylinder": "tab:blue", "box": "tab:gray"}
"""The colour of each obstacle kind, in every aegis picture."""
INTERVENED_COLOUR = "gold"
FALLBACK_COLOUR = "tab:red"


@dataclass(frozen=True)
class FlightBands:
    """Where the robot went, widened by its bounding radius: the altitudes (z, m) and lateral positions (y, m) it covered.

    None when the run has no true positions (then every obstacle counts as in the way)."""

    altitude_m: tuple[float, float] | None
    lateral_m: tuple[float, float] | None


def flight_bands(positions: np.ndarray, body_radius_m: float | None) -> FlightBands:
    """The z and y ranges of ``positions`` (the true ones), each widened by ``body_radius_m`` on both sides."""
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    if not positions.size:
        return FlightBands(None, None)
    r = float(body_radius_m or 0.0)
    low, high = positions.min(axis=0) - r, positions.max(axis=0) + r
    return FlightBands((float(low[2]), float(high[2])), (float(low[1]), float(high[1])))


def obstacle_bounds(obstacle: Any) -> np.ndarray:
    """The obstacle's axis-aligned bounds, rows x, y, z, columns (low, high), in m (a box's yaw included)."""
    centre = np.asarray(obstacle.position, dtype=float)
    sx, sy, sz = (float(v) for v in obstacle.size)
    if obstacle.shape == "box":
        c, s = abs(math.cos(obstacle.yaw_rad)), abs(math.sin(obstacle.yaw_rad))
        half = np.array([c * sx + s * sy, s * sx + c * sy, sz]) / 2.0
    else:  # sphere (d, d, d), upright cylinder (d, d, height)
        half = np.array([sx, sy, sz]) / 2.0
    return np.stack([centre - half, centre + half], axis=1)


def in_bands(obstacle: Any, bands: FlightBands) -> tuple[bool, bool]:
    """(reaches into the flown altitude band: solid in the top view, reaches into the lateral band: solid in the side view)."""
    bounds = obstacle_bounds(obstacle)

    def overlaps(axis: int, band: tuple[float, float] | None) -> bool:
        return band is None or bool(bounds[axis, 0] <= band[1] and bounds[axis, 1] >= band[0])

    return overlaps(2, bands.altitude_m), overlaps(1, bands.lateral_m)


def draw_obstacle(ax: Any, obstacle: Any, view: str, solid: bool = True) -> None:
    """Draw ``obstacle`` on ``ax`` as seen from above (``view="top"``, x-y) or from the side (``"side"``, x-z).

    Solid: filled in its kind's colour; not solid: a dashed outline of that colour (out of the robot's band)."""
    from matplotlib.patches import Circle, Rectangle
    from matplotlib.transforms import Affine2D

    (x, y, z), (sx, sy, sz) = obstacle.position, obstacle.size
    if view == "top":
        if obstacle.shape == "box":
            patch = Rectangle((x - sx / 2, y - sy / 2), sx, sy)
            patch.set_transform(Affine2D().rotate_around(x, y, obstacle.yaw_rad) + ax.transData)
        else:
            patch = Circle((x, y), sx / 2)
    else:
        bounds = obstacle_bounds(obstacle)
        if obstacle.shape == "sphere":
            patch = Circle((x, z), sx / 2)
        else:
            patch = Rectangle((bounds[0, 0], z - sz / 2), bounds[0, 1] - bounds[0, 0], sz)
    colour = OBSTACLE_COLOURS[obstacle.shape]
    if solid:
        patch.set(facecolor=colour, edgecolor=colour, alpha=0.55, lw=1.0, zorder=1)
    else:
        patch.set(facecolor="none", edgecolor=colour, alpha=0.8, lw=1.0, linestyle=(0, (3, 2)), zorder=1)
    ax.add_patch(patch)


def obstacle_handles(obstacles: Any) -> list[Any]:
    """Legend entries for the obstacle kinds present (and only those), each with its count, in a fixed order."""
    from matplotlib.patches import Patch

    counts = Counter(obstacle.shape for obstacle in obstacles)
    return [
        Patch(facecolor=colour, edgecolor=colour, alpha=0.55, label=f"{kind} ({counts[kind]})")
        for kind, colour in OBSTACLE_COLOURS.items()
        if counts[kind]
    ]


def out_of_band_handle(label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor="none", edgecolor="dimgray", linestyle=(0, (3, 2)), label=label)


def filter_activity_spans(series: EpisodeSeries) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(spans the QP changed the command, spans a fallback layer produced it): the two never overlap, so each has one colour."""
    from aegis.runs.episode import flag_spans

    fallback = series.filter_fallback
    return flag_spans(series.filter_times, series.filter_intervened & ~fallback), series.fallback_spans()


def shade_filter_activity(ax: Any, series: EpisodeSeries) -> list[Any]:
    """Shade where the filter changed the command (gold) and where a fallback layer produced it (red) on a time axis;
    the legend entries for them."""
    from matplotlib.patches import Patch

    handles = []
    intervened, fallback = filter_activity_spans(series)
    for spans, colour in ((intervened, INTERVENED_COLOUR), (fallback, FALLBACK_COLOUR)):
        for start, end in spans:  # the edge keeps a one-tick span visible at any zoom
            ax.axvspan(start, end, facecolor=colour, edgecolor=colour, alpha=0.35, lw=0.6, zorder=0)
    flags = series.filter_fallback
    changed = series.filter_intervened & ~flags
    if changed.any():
        handles.append(Patch(color=INTERVENED_COLOUR, alpha=0.35, label=f"filter changed the command ({int(changed.sum())} ticks)"))
    if flags.any():
        layers = Counter(layer for layer, flag in zip(series.filter_layers, flags) if flag)
        which = ", ".join(f"{layer} {count}" for layer, count in layers.most_common())
        handles.append(Patch(color=FALLBACK_COLOUR, alpha=0.35, label=f"fallback layer ({which} ticks)"))
    return handles


def within_spans(times: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    """Per time: whether it falls in one of ``spans`` ((start, end) pairs, end excluded)."""
    times = np.asarray(times, dtype=float)
    inside = np.zeros(times.shape, dtype=bool)
    for start, end in spans:
        inside |= (times >= start) & (times < end)
    return inside


def _band_text(band: tuple[float, float], axis: str) -> str:
    return f"{axis} {band[0]:.2f} to {band[1]:.2f} m"


def _mark_minimum(ax: Any, times: np.ndarray, values: np.ndarray, unit: str, colour: str) -> None:
    index = int(np.argmin(values))
    ax.plot(times[index], values[index], "v", color=colour, markersize=7)
    ax.annotate(f"min {values[index]:.3f}{unit} at {times[index]:.1f} s", (times[index], values[index]),
                textcoords="offset points", xytext=(6, -12), fontsize=8, color=colour)


def episode_figure(series: EpisodeSeries, obstacles: Any, title: str, goal: Any = None) -> Any:
    """The run's figure (matplotlib, Agg): views on the left, time series sharing one time axis on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obstacles = list(obstacles or ())
    fig = plt.figure(figsize=(14, 9.5), layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=(1.15, 1.0))
    top = fig.add_subplot(grid[0:2, 0])
    side = fig.add_subplot(grid[2, 0])
    error_ax = fig.add_subplot(grid[0, 1])
    clearance_ax = fig.add_subplot(grid[1, 1], sharex=error_ax)
    barrier_ax = fig.add_subplot(grid[2, 1], sharex=error_ax)

    bands = flight_bands(series.positions, series.body_radius_m)
    out_top = out_side = 0
    for obstacle in obstacles:
        solid_top, solid_side = in_bands(obstacle, bands)
        out_top += not solid_top
        out_side += not solid_side
        draw_obstacle(top, obstacle, "top", solid_top)
        draw_obstacle(side, obstacle, "side", solid_side)
    intervened, fallback = (within_spans(series.times, spans) for spans in filter_activity_spans(series))
    closest = None if series.clearance is None or not series.clearance.size else int(np.argmin(series.clearance))
    for ax, (i, j), labels in ((top, (0, 1), ("x (m)", "y (m)")), (side, (0, 2), ("x (m)", "z (m)"))):
        for flags, colour in ((intervened, INTERVENED_COLOUR), (fallback, FALLBACK_COLOUR)):
            if flags.any():  # a wide underlay beneath the path where the filter acted (its legend entry is the shading's)
                ax.plot(np.where(flags, series.positions[:, i], np.nan), np.where(flags, series.positions[:, j], np.nan),
                        color=colour, lw=7, alpha=0.5, solid_capstyle="butt")
        if series.reference_positions.size:
            ax.plot(series.reference_positions[:, i], series.reference_positions[:, j], "k--", lw=1, label="reference")
        if series.positions.size:
            ax.plot(series.positions[:, i], series.positions[:, j], color="tab:green", lw=1.6, label="robot (ground truth)")
            ax.plot(series.positions[0, i], series.positions[0, j], "o", color="tab:green", markersize=7, label="start")
        if goal is not None:
            ax.plot(goal.position[i], goal.position[j], "r*", markersize=13, label="goal")
        if closest is not None:
            ax.plot(series.positions[closest, i], series.positions[closest, j], "v", color="tab:purple", markersize=8,
                    label=f"closest to an obstacle ({series.clearance[closest]:.3f} m at {series.times[closest]:.1f} s)")
        ax.set(xlabel=labels[0], ylabel=labels[1])
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    top.set_title("top view")
    side.set_title("side view (looking along +y)")
    legend = top.get_legend_handles_labels()[0] + obstacle_handles(obstacles)
    if out_top:
        legend.append(out_of_band_handle(f"top view, dashed: above/below the flown band ({_band_text(bands.altitude_m, 'z')})"))
    if out_side:
        legend.append(out_of_band_handle(f"side view, dashed: beside the path ({_band_text(bands.lateral_m, 'y')})"))

    for ax in (error_ax, clearance_ax, barrier_ax):
        filter_handles = shade_filter_activity(ax, series)
        ax.grid(alpha=0.3)
    errors = series.tracking_error
    if errors.size:
        error_ax.plot(series.reference_times, errors * 100.0, color="tab:brown", lw=1.2)
        rmse = float(np.sqrt(np.mean(errors**2)))
        error_ax.set_title(f"tracking error (RMSE {rmse * 100:.1f} cm, max {errors.max() * 100:.1f} cm)")
    else:
        error_ax.set_title("tracking error")
        error_ax.text(0.5, 0.5, "no reference in this run", ha="center", va="center", transform=error_ax.transAxes)
    error_ax.set_ylabel("|position - reference| (cm)")

    clearance = series.clearance
    if clearance is not None and clearance.size:
        clearance_ax.plot(series.times, clearance, color="tab:purple", lw=1.3)
        clearance_ax.axhline(0.0, color="k", lw=0.8)
        _mark_minimum(clearance_ax, series.times, clearance, " m", "tab:purple")
    else:
        clearance_ax.text(0.5, 0.5, "no obstacles", ha="center", va="center", transform=clearance_ax.transAxes)
    clearance_ax.set_title("clearance to the nearest obstacle (ground truth; < 0 is touching)")
    radius = f" - {series.body_radius_m:.2f} m radius" if series.body_radius_m else ""
    clearance_ax.set_ylabel(f"surface distance{radius} (m)")

    if series.barrier.size:
        barrier_ax.plot(series.barrier_times, series.barrier, color="tab:olive", lw=1.2)
        barrier_ax.axhline(0.0, color="k", lw=0.8)
        _mark_minimum(barrier_ax, series.barrier_times, series.barrier, "", "olive")
    elif not series.filter_times.size:
        barrier_ax.text(0.5, 0.5, "no safety filter in this run", ha="center", va="center", transform=barrier_ax.transAxes)
    barrier_ax.set_title("safety filter: its lowest barrier value h (>= 0 is safe)")
    barrier_ax.set_ylabel("h (barrier value)")
    barrier_ax.set_xlabel("t (s)")
    if series.filter_times.size and not filter_handles:
        barrier_ax.text(0.99, 0.97, "the filter never changed the command", ha="right", va="top", fontsize=8,
                        transform=barrier_ax.transAxes)
    plt.setp(error_ax.get_xticklabels(), visible=False)
    plt.setp(clearance_ax.get_xticklabels(), visible=False)
    fig.legend(handles=legend + filter_handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(title)
    return fig


def plot_episode(series: EpisodeSeries, obstacles: Any, path: Path, title: str, goal: Any = None) -> Path:
    """Write :func:`episode_figure` to ``path`` (PNG) and return it. Uses matplotlib's Agg backend (no display needed)."""
    import matplotlib.pyplot as plt

    fig = episode_figure(series, obstacles, title, goal)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
