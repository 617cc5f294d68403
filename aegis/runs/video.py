"""A video of a recorded run (`aegis sim --video FILE`): a chase view and a top view side by side, rendered offscreen after the run.

Both panels are drawn with matplotlib (Agg, no display, no GPU) from the run's logged series, the
same arrays as plot.png: the robot's TRUE path so far (/sim/ground_truth), the reference path, the
obstacles the plant had (in their kind's colour, aegis.runs.plot), and what the safety filter said it
did. The chase view is a perspective 3-D view from behind and above the robot, turning with its
direction of travel; the top view shows the whole scene. The robot's marker is ringed in gold while
the filter changes the command and in red while a fallback layer (not "qp"/"relaxed_qp") produces
it; the frame's border takes the same colour and a text line names the layer, the clearance and h.

The files are written by aegis.runs.video_files (.gif with Pillow, .mp4 with imageio-ffmpeg).
A swarm run is rendered too: the chase view follows the first robot, the top view shows them all.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import to_rgb

from aegis.runs.episode import QP_LAYERS, EpisodeSeries
from aegis.runs.plot import (
    FALLBACK_COLOUR,
    INTERVENED_COLOUR,
    OBSTACLE_COLOURS,
    draw_obstacle,
    flight_bands,
    in_bands,
)
from aegis.runs.video_files import FrameProgress, check_video_path, write_gif, write_mp4

DEFAULT_FPS = 20
"""Frames per simulated second (a GIF stores frame times in hundredths of a second: 20 fps is exact)."""
FRAME_SIZE_PX = (1120, 480)
"""Width and height of a frame (both multiples of 16, as H.264 encoders want)."""
_DPI = 80
_HEADER_PX = 64
_BORDER_PX = 6
_CHASE_ELEVATION_DEG = 24.0
_CHASE_HEIGHT = 0.85
_GROUND_CHASE_HEIGHT = 0.4
"""The chase box's height over its width for a robot that never rose above _GROUND_ROBOT_M (less sky to look at)."""
_GROUND_ROBOT_M = 0.5
_HEADING_WINDOW_S = 0.5
"""The direction of travel is the true displacement over this long (a hovering robot keeps its last heading)."""
_ROBOT_COLOURS = ("tab:green", "tab:purple", "tab:cyan", "tab:pink", "tab:olive", "tab:brown")
_QUIET_RING = "white"


def _clip_to_box() -> dict[str, bool]:
    """``axlim_clip=True`` where matplotlib has it (3.10+): the chase view hides what lies outside its moving box.
    Older versions draw everything, outside the box too."""
    import inspect

    from mpl_toolkits.mplot3d import Axes3D

    return {"axlim_clip": True} if "axlim_clip" in inspect.signature(Axes3D.plot_surface).parameters else {}


_CLIP = _clip_to_box()


def frame_times(duration_s: float, fps: int = DEFAULT_FPS) -> np.ndarray:
    """The simulated time (s) of every frame: 0, 1/fps, ... up to ``duration_s`` (the run's end included)."""
    return np.arange(math.floor(duration_s * fps + 1e-9) + 1) / fps


@dataclass(frozen=True)
class VideoResult:
    """What was written: the file, its frame count and size, how long rendering took (s of wall time)."""

    path: Path
    frames: int
    width_px: int
    height_px: int
    fps: int
    render_s: float
    bytes: int


def video_summary(result: VideoResult) -> dict[str, Any]:
    """The summary.json entry of a rendered video."""
    return {
        "path": str(result.path), "frames": result.frames, "fps": result.fps, "size_px": [result.width_px, result.height_px],
        "render_s": round(result.render_s, 2), "bytes": result.bytes,
    }


def _index_at(times: np.ndarray, t: float) -> int:
    """The last sample at or before ``t`` (the first one before the series starts; -1 for an empty series)."""
    if not times.size:
        return -1
    return max(int(np.searchsorted(times, t, side="right")) - 1, 0)


def filter_state(series: EpisodeSeries, t: float) -> tuple[str, str | None]:
    """("quiet" | "intervened" | "fallback", the layer) of the filter's last report at or before ``t``; ("off", None) without one."""
    if not series.filter_times.size or t < series.filter_times[0]:
        return ("off", None)
    k = _index_at(series.filter_times, t)
    layer = series.filter_layers[k]
    if layer not in QP_LAYERS:
        return ("fallback", layer)
    return ("intervened" if series.filter_intervened[k] else "quiet", layer)


_STATE_COLOUR = {"off": _QUIET_RING, "quiet": _QUIET_RING, "intervened": INTERVENED_COLOUR, "fallback": FALLBACK_COLOUR}
_STATE_RANK = {"off": 0, "quiet": 0, "intervened": 1, "fallback": 2}


def _heading(series: EpisodeSeries, t: float, previous: float) -> float:
    """The direction of travel (rad) at ``t``: the true displacement over the last _HEADING_WINDOW_S, else ``previous``."""
    k = _index_at(series.times, t)
    if k < 0:
        return previous
    j = _index_at(series.times, t - _HEADING_WINDOW_S)
    step = series.positions[k, :2] - series.positions[j, :2]
    if float(np.hypot(*step)) < 0.05:
        return previous
    return math.atan2(step[1], step[0])


def _scene_span(robots: dict[str, EpisodeSeries], obstacles: list[Any]) -> float:
    points = [one.positions[:, :2] for one in robots.values() if one.positions.size]
    points += [np.asarray(o.position, dtype=float)[None, :2] for o in obstacles]
    if not points:
        return 2.0
    stacked = np.concatenate(points)
    return float(np.max(stacked.max(axis=0) - stacked.min(axis=0)))


def _draw_obstacle_3d(ax: Any, obstacle: Any) -> None:
    """The obstacle as small shaded quads: the chase view hides a quad with a corner outside its box, so a big face
    would vanish whole as soon as it pokes out of view."""
    colour = OBSTACLE_COLOURS[obstacle.shape]
    (x, y, z), (sx, sy, sz) = (np.asarray(v, dtype=float) for v in (obstacle.position, obstacle.size))
    style = {"color": colour, "alpha": 0.65, "linewidth": 0, **_CLIP}
    if obstacle.shape == "sphere":
        u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 17), np.linspace(0, np.pi, 9))
        r = sx / 2
        ax.plot_surface(x + r * np.cos(u) * np.sin(v), y + r * np.sin(u) * np.sin(v), z + r * np.cos(v), **style)
    elif obstacle.shape == "cylinder":
        u, h = np.meshgrid(np.linspace(0, 2 * np.pi, 13), np.linspace(z - sz / 2, z + sz / 2, max(2, int(sz / 0.2) + 1)))
        r = sx / 2
        ax.plot_surface(x + r * np.cos(u), y + r * np.sin(u), h, **style)
    else:
        c, s = math.cos(obstacle.yaw_rad), math.sin(obstacle.yaw_rad)
        turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        half = np.array([sx, sy, sz]) / 2
        for axis in range(3):  # two faces per axis, each a grid of quads about 0.2 m across
            a, b = [k for k in range(3) if k != axis]
            ga, gb = np.meshgrid(np.linspace(-1, 1, max(2, int(2 * half[a] / 0.2) + 1)), np.linspace(-1, 1, max(2, int(2 * half[b] / 0.2) + 1)))
            for side in (-1.0, 1.0):
                local = np.zeros(ga.shape + (3,))
                local[..., axis], local[..., a], local[..., b] = side * half[axis], ga * half[a], gb * half[b]
                world = local @ turn.T + [x, y, z]
                ax.plot_surface(world[..., 0], world[..., 1], world[..., 2], **style)


def _canvas_rgb(fig: Any) -> np.ndarray:
    return np.asarray(fig.canvas.buffer_rgba())[:, :, :3]


class _Frames:
    """The frame painter: a header (title, status line), the chase view and the top view, each its own matplotlib figure
    (Agg), composed side by side; the top view's static part is drawn once and only the robots are redrawn (blitting)."""

    def __init__(self, robots: dict[str, EpisodeSeries], obstacles: list[Any], title: str, goals: dict[str, Any]) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Circle

        self.robots = robots
        self.names = list(robots)
        self.lead = robots[self.names[0]]
        width, height = FRAME_SIZE_PX
        header_px, half_px = _HEADER_PX, width // 2
        radius = next((one.body_radius_m for one in robots.values() if one.body_radius_m), None) or 0.1
        self.half_m = max(1.2, 3.5 * radius, 0.25 * _scene_span(robots, obstacles))
        """Half the width of the chase view's box (m)."""
        highest = max((float(one.positions[:, 2].max()) for one in robots.values() if one.positions.size), default=0.0)
        self.box_height = _GROUND_CHASE_HEIGHT if highest < _GROUND_ROBOT_M else _CHASE_HEIGHT
        """The chase box's height over its width."""
        colours = [_ROBOT_COLOURS[k % len(_ROBOT_COLOURS)] for k in range(len(robots))]
        flown = [one.positions for one in robots.values() if one.positions.size]

        self.header = header = plt.figure(figsize=(width / _DPI, header_px / _DPI), dpi=_DPI)
        header.text(0.012, 0.86, title, fontsize=10, va="top")
        header.text(0.988, 0.86, "robot ringed gold: the filter changed the command; red: a fallback layer produced it",
                    fontsize=8, va="top", ha="right", color="dimgray")
        chased = f" ({self.names[0]})" if len(robots) > 1 else ""
        header.text(0.25, 0.06, f"chase view{chased}: from behind, turning with the travel", fontsize=9, ha="center", va="bottom", color="dimgray")
        header.text(0.75, 0.06, "top view", fontsize=9, ha="center", va="bottom", color="dimgray")
        self.status = header.text(0.012, 0.5, "", fontsize=10, va="center", family="monospace", animated=True)
        header.canvas.draw()
        self.header_background = header.canvas.copy_from_bbox(header.bbox)

        self.chase_fig = plt.figure(figsize=(half_px / _DPI, (height - header_px) / _DPI), dpi=_DPI)
        self.chase = chase = self.chase_fig.add_axes((0.0, 0.0, 1.0, 1.0), projection="3d")
        chase.set_proj_type("persp", focal_length=0.6)
        chase.set_box_aspect((1.0, 1.0, self.box_height), zoom=1.45)
        chase.set_axis_off()  # no panes or ticks: the ground grid and each robot's drop line give the depth
        self._ground_grid(flown, obstacles)
        for obstacle in obstacles:
            _draw_obstacle_3d(chase, obstacle)

        self.top_fig = plt.figure(figsize=(half_px / _DPI, (height - header_px) / _DPI), dpi=_DPI)
        self.top = top = self.top_fig.add_axes((0.13, 0.1, 0.84, 0.88))
        bands = flight_bands(np.concatenate(flown) if flown else np.empty((0, 3)), radius)
        for obstacle in obstacles:
            draw_obstacle(top, obstacle, "top", in_bands(obstacle, bands)[0])
        for name, colour in zip(self.names, colours):
            one, goal = robots[name], goals.get(name)
            if one.reference_positions.size:
                ref = one.reference_positions
                chase.plot(ref[:, 0], ref[:, 1], ref[:, 2], "k--", lw=0.8, alpha=0.6, **_CLIP)
                top.plot(ref[:, 0], ref[:, 1], "k--", lw=0.8, alpha=0.6)
            if goal is not None:
                top.plot(goal.position[0], goal.position[1], "*", color="tab:red", markersize=12)
                chase.plot(*(np.array([v]) for v in goal.position), "*", color="tab:red", markersize=12, **_CLIP)
        if flown:  # the whole flight in view from the first frame (the path lines start empty)
            top.update_datalim(np.concatenate(flown)[:, :2])
        top.set_aspect("equal", adjustable="datalim")
        top.autoscale_view()
        top.set(xlabel="x (m)", ylabel="y (m)")
        top.grid(alpha=0.3)
        top.apply_aspect()
        top.set_autoscale_on(False)  # the moving artists below must not move the limits under the saved background
        self.paths3d, self.drops3d, self.markers3d, self.paths2d, self.markers2d = [], [], [], [], []
        nothing = (np.empty(0), np.empty(0), np.empty(0))  # arrays, not lists: clipping to the box needs them
        for colour in colours:
            self.paths3d.append(chase.plot(*nothing, color=colour, lw=2.0, **_CLIP)[0])
            self.drops3d.append(chase.plot(*nothing, color=colour, lw=0.8, alpha=0.5, **_CLIP)[0])
            self.markers3d.append(chase.plot(*nothing, "o", markersize=11, markerfacecolor=colour, markeredgewidth=3)[0])
            self.paths2d.append(top.plot([], [], color=colour, lw=1.8, animated=True)[0])
            marker = Circle((0, 0), max(radius, 0.04), facecolor=colour, edgecolor="black", lw=2.5, zorder=5, animated=True)
            top.add_patch(marker)
            self.markers2d.append(marker)
        self.top_fig.canvas.draw()  # everything but the animated robots, once
        self.top_background = self.top_fig.canvas.copy_from_bbox(self.top_fig.bbox)
        self.heading = 0.0 if not self.lead.positions.size else _heading(self.lead, 1.0, 0.0)

    def _ground_grid(self, flown: list[np.ndarray], obstacles: list[Any]) -> None:
        """Grid lines every 0.5 m on the ground (z = 0) over the scene and a margin: one line artist, NaN-separated."""
        points = [p[:, :2] for p in flown] + [np.asarray(o.position, dtype=float)[None, :2] for o in obstacles]
        low, high = (np.concatenate(points).min(axis=0), np.concatenate(points).max(axis=0)) if points else (np.zeros(2), np.zeros(2))
        low, high = np.floor((low - 2 * self.half_m) / 0.5) * 0.5, np.ceil((high + 2 * self.half_m) / 0.5) * 0.5
        segments = []
        for x in np.arange(low[0], high[0] + 1e-9, 0.5):  # each line in 0.5 m pieces, so clipping keeps what is in view
            ys = np.arange(low[1], high[1] + 1e-9, 0.5)
            segments.append(np.column_stack([np.full(ys.size, x), ys, np.zeros(ys.size)]))
        for y in np.arange(low[1], high[1] + 1e-9, 0.5):
            xs = np.arange(low[0], high[0] + 1e-9, 0.5)
            segments.append(np.column_stack([xs, np.full(xs.size, y), np.zeros(xs.size)]))
        lines = np.concatenate([np.vstack([seg, [np.nan] * 3]) for seg in segments])
        self.chase.plot(lines[:, 0], lines[:, 1], lines[:, 2], color="0.75", lw=0.6, **_CLIP)

    def render(self, t: float) -> np.ndarray:
        canvas = self.top_fig.canvas
        canvas.restore_region(self.top_background)
        states = []
        for index, one in enumerate(self.robots.values()):
            k = _index_at(one.times, t)
            if k < 0:
                continue
            past, (x, y, z) = one.positions[: k + 1], one.positions[k]
            state, layer = filter_state(one, t)
            ring = _STATE_COLOUR[state] if state in ("intervened", "fallback") else "black"
            self.paths3d[index].set_data_3d(past[:, 0], past[:, 1], past[:, 2])
            self.drops3d[index].set_data_3d(np.array([x, x]), np.array([y, y]), np.array([0.0, z]))
            self.markers3d[index].set_data_3d(np.array([x]), np.array([y]), np.array([z]))
            self.markers3d[index].set_markeredgecolor(ring)
            self.paths2d[index].set_data(past[:, 0], past[:, 1])
            self.markers2d[index].center = (x, y)
            self.markers2d[index].set_edgecolor(ring)
            self.top.draw_artist(self.paths2d[index])
            self.top.draw_artist(self.markers2d[index])
            states.append((state, layer, one, k))
        canvas.blit(self.top_fig.bbox)
        worst = max((s[0] for s in states), key=_STATE_RANK.get, default="off")
        self.status.set_text(self._status_line(t, states))
        self.status.set_color("darkred" if worst == "fallback" else "black")
        k = _index_at(self.lead.times, t)
        if k >= 0:
            self.heading = _smooth_angle(self.heading, _heading(self.lead, t, self.heading), 0.25)
            self._aim_chase(self.lead.positions[k])
        self.header.canvas.restore_region(self.header_background)
        self.header.draw_artist(self.status)
        self.header.canvas.blit(self.header.bbox)
        self.chase_fig.canvas.draw()
        frame = np.vstack([_canvas_rgb(self.header), np.hstack([_canvas_rgb(self.chase_fig), _canvas_rgb(self.top_fig)])])
        if worst in ("intervened", "fallback"):  # the frame's border in the filter's colour
            rgb = np.round(255 * np.array(to_rgb(_STATE_COLOUR[worst]))).astype(np.uint8)
            b = _BORDER_PX
            frame[:b], frame[-b:], frame[:, :b], frame[:, -b:] = rgb, rgb, rgb, rgb
        return frame

    def _aim_chase(self, position: np.ndarray) -> None:
        ahead = 0.25 * self.half_m * np.array([math.cos(self.heading), math.sin(self.heading)])
        cx, cy = position[0] + ahead[0], position[1] + ahead[1]
        half = self.half_m
        height = 2 * half * self.box_height
        z_low = max(position[2] - 0.6 * height, min(0.0, position[2]) - 0.05)  # the ground in view, unless far below
        self.chase.set(xlim=(cx - half, cx + half), ylim=(cy - half, cy + half), zlim=(z_low, z_low + height))
        self.chase.view_init(elev=_CHASE_ELEVATION_DEG, azim=math.degrees(self.heading) + 180.0)

    def _status_line(self, t: float, states: list[tuple[str, str | None, EpisodeSeries, int]]) -> str:
        """Time, then the filter's layer and what it did, clearance and h: for one robot always, for a swarm the robots whose
        filter acts (at most three, then how many more)."""
        parts = [f"t = {t:5.2f} s"]
        swarm = len(self.robots) > 1
        for (state, layer, one, k), name in zip(states, self.names):
            if swarm and state not in ("intervened", "fallback"):
                continue
            what = {"off": "no filter report", "quiet": f"filter {layer}: passes", "intervened": f"filter {layer}: CHANGED the command",
                    "fallback": f"filter FALLBACK: {layer}"}[state]
            if swarm:
                what = f"{name}: " + ("changed" if state == "intervened" else f"FALLBACK {layer}")
            if one.clearance is not None and one.clearance.size and not swarm:
                what += f", clearance {one.clearance[k]:.2f} m"
            if one.barrier.size and t >= one.barrier_times[0]:
                what += f", h {one.barrier[_index_at(one.barrier_times, t)]:.2f}"
            parts.append(what)
        if len(parts) > 5:
            parts[4:] = [f"(+{len(parts) - 4} more)"]
        return "   ".join(parts)

    def close(self) -> None:
        import matplotlib.pyplot as plt

        for fig in (self.header, self.chase_fig, self.top_fig):
            plt.close(fig)


def _smooth_angle(current: float, target: float, weight: float) -> float:
    """``current`` moved ``weight`` of the way to ``target`` along the shorter way round (rad)."""
    return current + weight * math.remainder(target - current, 2.0 * math.pi)


def render_video(
    robots: dict[str, EpisodeSeries],
    obstacles: Any,
    path: Path,
    title: str,
    goals: dict[str, Any] | None = None,
    duration_s: float | None = None,
    fps: int = DEFAULT_FPS,
    show_progress: bool = False,
) -> VideoResult:
    """Render the run (each robot's series, by name; the first is chased) to ``path`` (.mp4 or .gif) at ``fps`` frames
    per simulated second, over ``duration_s`` (default: to the last true sample)."""
    suffix = check_video_path(path)
    obstacles = list(obstacles or ())
    if duration_s is None:
        duration_s = max((float(one.times[-1]) for one in robots.values() if one.times.size), default=0.0)
    times = frame_times(duration_s, fps)
    started = time.perf_counter()
    frames = _Frames(robots, obstacles, title, goals or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FrameProgress(show_progress, len(times)) as progress:
            pixels = (progress.after(frames.render(float(t))) for t in times)
            if suffix == ".gif":
                keys = [INTERVENED_COLOUR, FALLBACK_COLOUR, "darkred", "black", "white", *_ROBOT_COLOURS, *OBSTACLE_COLOURS.values()]
                write_gif(path, pixels, fps, [to_rgb(key) for key in keys])
            else:
                write_mp4(path, pixels, fps, FRAME_SIZE_PX)
    finally:
        frames.close()
    width, height = FRAME_SIZE_PX
    return VideoResult(path, len(times), width, height, fps, time.perf_counter() - started, path.stat().st_size)


