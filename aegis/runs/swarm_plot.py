"""The picture of a swarm run: every robot's path from above, the closest approach between robots, tracking and barriers over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aegis.runs.episode import EpisodeSeries
from aegis.runs.plot import draw_obstacle, flight_bands, in_bands, obstacle_handles, out_of_band_handle


def plot_swarm(
    series: dict[str, EpisodeSeries],
    pair_distance: tuple[np.ndarray, np.ndarray],
    collision_distance_m: float | None,
    obstacles: Any,
    goals: dict[str, Any],
    path: Path,
    title: str,
) -> Path:
    """Write a 2x2 figure to ``path`` (PNG) and return it; matplotlib's Agg backend (no display needed).

    Top view: each robot's path (solid), its reference (dashed), start (dot) and goal (star), the
    obstacles in their kind's colour (dashed outline: above or below every robot's flown altitude band,
    as in aegis.runs.plot). Then the smallest distance between any two robots over time with the collision
    distance (two bounding radii), each robot's tracking error, and each filter's lowest barrier h.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 9), constrained_layout=True)
    top, distance_ax, error_ax, barrier_ax = axes.flat
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    obstacles = list(obstacles or ())
    flown = [one.positions for one in series.values() if one.positions.size]
    radius = next((one.body_radius_m for one in series.values() if one.body_radius_m), None)
    bands = flight_bands(np.concatenate(flown) if flown else np.empty((0, 3)), radius)
    out_of_band = 0
    for obstacle in obstacles:
        solid = in_bands(obstacle, bands)[0]
        out_of_band += not solid
        draw_obstacle(top, obstacle, "top", solid)
    for index, (name, one) in enumerate(series.items()):
        colour = colours[index % len(colours)]
        if one.reference_positions.size:
            top.plot(one.reference_positions[:, 0], one.reference_positions[:, 1], "--", color=colour, lw=0.8, alpha=0.6)
        if one.positions.size:
            top.plot(one.positions[:, 0], one.positions[:, 1], color=colour, lw=1.5, label=name)
            top.plot(one.positions[0, 0], one.positions[0, 1], "o", color=colour)
        goal = goals.get(name)
        if goal is not None:
            top.plot(goal.position[0], goal.position[1], "*", color=colour, markersize=12)
        if one.tracking_error.size:
            error_ax.plot(one.reference_times, one.tracking_error * 100.0, color=colour, lw=1, label=name)
        if one.barrier.size:
            barrier_ax.plot(one.barrier_times, one.barrier, color=colour, lw=1, label=name)
    top.set(title="top view (solid: flown, dashed: reference, o start, * goal)", xlabel="x (m)", ylabel="y (m)")
    top.set_aspect("equal", adjustable="datalim")
    handles = top.get_legend_handles_labels()[0] + obstacle_handles(obstacles)
    if out_of_band:
        low, high = bands.altitude_m
        handles.append(out_of_band_handle(f"dashed: above/below the flown band (z {low:.2f} to {high:.2f} m)"))
    top.legend(handles=handles, loc="upper right", fontsize=8)
    times, distances = pair_distance
    if distances.size:
        distance_ax.plot(times, distances, color="tab:purple", label="closest pair, centre to centre")
    if collision_distance_m is not None:
        distance_ax.axhline(collision_distance_m, color="tab:red", lw=1, label=f"collision: < {collision_distance_m:.3f} m (2 bounding radii)")
    distance_ax.set(title="distance between robots", xlabel="t (s)", ylabel="m")
    distance_ax.legend(loc="upper right", fontsize=8)
    error_ax.set(title="tracking error", xlabel="t (s)", ylabel="|position - reference| (cm)")
    if not any(one.barrier.size for one in series.values()):
        barrier_ax.text(0.5, 0.5, "no safety filter", ha="center", va="center", transform=barrier_ax.transAxes)
    else:
        barrier_ax.axhline(0.0, color="k", lw=0.8)
        barrier_ax.legend(loc="upper right", fontsize=8)
    barrier_ax.set(title="safety filters: lowest barrier value h (>= 0 is safe)", xlabel="t (s)", ylabel="h (barrier value)")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    if any(one.tracking_error.size for one in series.values()):
        error_ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(title)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
