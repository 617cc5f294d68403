"""`aegis sim --video FILE` (aegis.runs.video): GIF and MP4 of a short run, bad endings refused before the run, the filter's state on each frame."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aegis.cli import main
from aegis.cli_options import UsageError
from aegis.runs.episode import EpisodeSeries
from aegis.runs.video import FRAME_SIZE_PX, filter_state, frame_times, render_video
from aegis.runs.video_files import check_video_path


@pytest.mark.parametrize("config", ["quadrotor_oracle_sim", "husky_oracle_sim"])
def test_a_gif_of_a_one_second_run_has_a_frame_per_tick_of_its_clock(config: str, tmp_path: Path, capsys) -> None:
    video = tmp_path / "run.gif"
    assert main(["sim", config, "--duration", "1", "--out", str(tmp_path / "out"), "--video", str(video)]) == 0
    expected = frame_times(1.0).size
    assert expected == 21  # 0, 0.05, ..., 1.0 s at 20 fps
    with Image.open(video) as gif:
        assert gif.n_frames == expected
        assert gif.size == FRAME_SIZE_PX
        assert gif.info["duration"] == 50  # ms: 20 fps
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["video"]["frames"] == expected and summary["video"]["path"] == str(video)
    assert "│ video " in capsys.readouterr().out  # the summary table has its row


def test_an_unknown_video_ending_exits_2_before_the_run(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["sim", "--duration", "1", "--out", str(out), "--video", str(tmp_path / "run.avi")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'.avi'" in err and ".mp4 or .gif" in err
    assert not out.exists()  # refused before anything ran


def test_a_missing_encoder_names_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails as if not installed
    with pytest.raises(UsageError, match=r"pip install 'aegis\[video\]'"):
        check_video_path(Path("run.mp4"))
    assert check_video_path(Path("run.GIF")) == ".gif"  # Pillow, always there


def test_an_mp4_of_a_one_second_run(tmp_path: Path) -> None:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    video = tmp_path / "run.mp4"
    assert main(["sim", "--duration", "1", "--out", str(tmp_path / "out"), "--video", str(video)]) == 0
    frames = imageio_ffmpeg.read_frames(str(video))
    meta = next(frames)
    assert tuple(meta["size"]) == FRAME_SIZE_PX
    assert sum(1 for _ in frames) == frame_times(1.0).size


def _series() -> EpisodeSeries:
    """A straight 2 s flight whose filter (50 Hz) changes the command over 0.2-0.5 s and falls back to its backup over 0.8-0.9 s."""
    times = np.arange(201) * 0.01
    positions = np.column_stack([times, np.zeros_like(times), np.ones_like(times)])
    filter_times = np.arange(100) * 0.02
    layers = tuple("backup" if 0.8 <= t < 0.9 else "qp" for t in filter_times)
    intervened = (filter_times >= 0.2) & (filter_times < 0.5) | np.array([layer == "backup" for layer in layers])
    return EpisodeSeries(
        times, positions, times, positions, np.zeros_like(times), None, filter_times, np.full(100, 0.5), np.ones_like(times),
        filter_times, layers, intervened, 0.05,
    )


def test_the_frames_show_what_the_filter_did(tmp_path: Path) -> None:
    series = _series()
    assert [filter_state(series, t)[0] for t in (0.1, 0.3, 0.85, 1.5)] == ["quiet", "intervened", "fallback", "quiet"]
    result = render_video({"robot": series}, (), tmp_path / "run.gif", "test")
    assert result.frames == frame_times(2.0).size
    with Image.open(result.path) as gif:
        def corner(t: float) -> tuple[int, ...]:
            gif.seek(round(t * 20))
            return gif.convert("RGB").getpixel((1, 1))

        quiet, changed, fallback = corner(0.1), corner(0.3), corner(0.85)
    assert min(quiet) > 240  # a white border
    assert changed[0] > 200 and changed[1] > 170 and changed[2] < 60  # gold
    assert fallback[0] > 180 and fallback[1] < 80 and fallback[2] < 80  # red
