"""Writing rendered frames to a video file: which endings --video takes, GIF with Pillow, MP4 with imageio-ffmpeg, a progress bar.

``.gif`` needs only Pillow (a matplotlib dependency); ``.mp4`` (H.264, yuv420p: what every player
opens) needs imageio-ffmpeg, a wheel that carries its own ffmpeg binary, in the ``video`` extra:
``pip install 'aegis[video]'`` (or ``pip install imageio-ffmpeg``). :func:`check_video_path` says
so before a run starts. The frames come from aegis.runs.video.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aegis.cli_options import UsageError

VIDEO_FORMATS = (".mp4", ".gif")
"""The file endings --video accepts."""


def check_video_path(path: Path) -> str:
    """The video's format (".mp4" or ".gif") for ``path``; UsageError, before any run, for another ending or a missing encoder."""
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_FORMATS:
        raise UsageError(f"--video {path}: unknown video format {suffix or '(no extension)'!r}; use a file ending in .mp4 or .gif")
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise UsageError(
                f"--video {path}: writing .mp4 needs imageio-ffmpeg: pip install 'aegis[video]' "
                "(or pip install imageio-ffmpeg), or write a .gif"
            ) from None
    return suffix


class FrameProgress:
    """A rich progress bar over the frames on stderr (nothing when not shown); :meth:`after` counts one frame."""

    def __init__(self, show: bool, total: int) -> None:
        self.show, self.total, self.progress, self.task = show, total, None, None

    def __enter__(self) -> FrameProgress:
        if self.show:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(TextColumn("rendering video"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                     console=Console(stderr=True), transient=True)
            self.progress.__enter__()
            self.task = self.progress.add_task("video", total=self.total)
        return self

    def after(self, frame: np.ndarray) -> np.ndarray:
        """``frame``, once counted."""
        if self.progress is not None:
            self.progress.update(self.task, advance=1)
        return frame

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)


def write_gif(path: Path, frames: Iterable[np.ndarray], fps: int, key_colours: Sequence[tuple[float, float, float]] = ()) -> None:
    """Pillow's GIF writer (looping), every RGB frame mapped onto one palette: the first frame's colours and
    ``key_colours`` (RGB in 0..1) that may appear only later. A fixed palette is fast and does not flicker."""
    from PIL import Image

    frames = iter(frames)
    first = Image.fromarray(next(frames))
    adaptive = 256 - len(key_colours)
    palette = first.quantize(colors=adaptive, method=Image.Quantize.MEDIANCUT).getpalette()[: 3 * adaptive]
    palette += [round(255 * c) for colour in key_colours for c in colour]
    fixed = Image.new("P", (1, 1))
    fixed.putpalette(palette)

    def mapped() -> Any:
        yield first.quantize(palette=fixed, dither=Image.Dither.NONE)
        for rgb in frames:
            yield Image.fromarray(rgb).quantize(palette=fixed, dither=Image.Dither.NONE)

    images = mapped()
    next(images).save(path, save_all=True, append_images=images, duration=1000.0 / fps, loop=0, optimize=False)


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: int, size_px: tuple[int, int]) -> None:
    """H.264 (yuv420p) through imageio-ffmpeg's own ffmpeg; ``size_px`` (width, height) should be multiples of 16."""
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(str(path), size_px, fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         quality=7, macro_block_size=16, ffmpeg_log_level="error")
    writer.send(None)  # start ffmpeg
    try:
        for rgb in frames:
            writer.send(np.ascontiguousarray(rgb))
    finally:
        writer.close()
