"""The run's picture (aegis.runs.plot) and the filter trace behind it (aegis.runs.episode): legend, bands, intervention spans."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest

from aegis.msgs import RobotState, SafetyFilterReport
from aegis.runs.episode import EpisodeLog, episode_series, flag_spans
from aegis.runs.plot import episode_figure, flight_bands, in_bands, obstacle_bounds
from aegis.scenario.schema import ObstacleSpec

KINDS = {"sphere", "cylinder", "box"}


def obstacle(shape: str, position, size, yaw_rad: float = 0.0) -> ObstacleSpec:
    return ObstacleSpec(shape=shape, position=position, size=size, yaw_rad=yaw_rad)


# what EpisodeLog reads of a plan: the plant (first) and the nodes that publish a reference
PLAN = SimpleNamespace(nodes=[
    SimpleNamespace(outputs={"truth": "/sim/ground_truth", "state": "/odom"}),
    SimpleNamespace(outputs={"reference": "/reference"}),
])


def _log(reports: list[tuple[float, str, bool, list[float]]], altitude_m: float = 1.0) -> EpisodeLog:
    """An EpisodeLog fed a straight flight along x at ``altitude_m`` (ground truth, 100 Hz over 2 s) and ``reports``
    (time s, layer, intervened, h)."""
    log = EpisodeLog(PLAN)
    for k in range(201):
        t = k * 0.01
        state = RobotState(stamp=t, position=np.array([t, 0.0, altitude_m]), linear_velocity=np.array([1.0, 0.0, 0.0]))
        log("/sim/ground_truth", state, round(t * 1e9))
        log("/reference", state, round(t * 1e9))
    for t, layer, intervened, h in reports:
        log("/safety_filter/report", SafetyFilterReport(stamp=t, layer=layer, intervened=intervened, h=np.array(h)), round(t * 1e9))
    return log


def _legend_texts(fig) -> list[str]:
    return [text.get_text() for legend in fig.legends for text in legend.get_texts()]


@pytest.mark.parametrize(
    "kinds",
    [("sphere",), ("cylinder", "box"), ("sphere", "cylinder", "box"), ()],
)
def test_the_legend_holds_exactly_the_obstacle_kinds_present(kinds) -> None:
    shapes = {
        "sphere": obstacle("sphere", [1.0, 1.0, 1.0], [0.3, 0.3, 0.3]),
        "cylinder": obstacle("cylinder", [0.5, -1.0, 1.0], [0.2, 0.2, 2.0]),
        "box": obstacle("box", [1.5, 1.5, 0.5], [0.3, 0.6, 1.0], yaw_rad=0.4),
    }
    obstacles = [shapes[kind] for kind in kinds] + ([shapes[kinds[0]]] if kinds else [])  # one kind twice
    fig = episode_figure(episode_series(_log([]), obstacles, 0.05), obstacles, "test")
    try:
        texts = _legend_texts(fig)
        listed = {text.split(" (")[0] for text in texts} & KINDS
        assert listed == set(kinds)
        if kinds:
            assert f"{kinds[0]} (2)" in texts  # with its count
    finally:
        plt.close(fig)


def test_an_obstacle_far_above_the_flown_band_is_out_of_band_in_the_top_view() -> None:
    series = episode_series(_log([], altitude_m=1.0), (), 0.05)
    bands = flight_bands(series.positions, series.body_radius_m)
    assert bands.altitude_m == pytest.approx((0.95, 1.05))
    above = obstacle("sphere", [1.0, 0.0, 1.65], [0.4, 0.4, 0.4])  # bottom at 1.45 m: 0.4 m above the band
    pillar = obstacle("cylinder", [1.0, 1.05, 1.0], [0.3, 0.3, 2.0])  # at the flown height, 1 m to the side
    grazing = obstacle("sphere", [1.0, 0.0, 1.24], [0.4, 0.4, 0.4])  # bottom at 1.04 m: reaches into the band
    assert in_bands(above, bands) == (False, True)
    assert in_bands(pillar, bands) == (True, False)
    assert in_bands(grazing, bands) == (True, True)


def test_a_turned_box_is_bounded_by_its_turned_footprint() -> None:
    box = obstacle("box", [0.0, 0.0, 0.5], [2.0, 0.2, 1.0], yaw_rad=np.pi / 2)
    assert obstacle_bounds(box) == pytest.approx(np.array([[-0.1, 0.1], [-1.0, 1.0], [0.0, 1.0]]))


def test_intervention_and_fallback_spans_come_from_the_reports() -> None:
    reports = [(0.1 * k, "qp", False, [0.5]) for k in range(10)]
    for k in (2, 3, 4, 7):
        reports[k] = (0.1 * k, "qp", True, [0.2])
    reports[8] = (0.8, "backup", True, [0.1])
    reports[9] = (0.9, "estop", False, [])  # no barrier rows: a report, but no h
    series = episode_series(_log(reports), (), None)
    assert np.array(series.intervention_spans()) == pytest.approx(np.array([[0.2, 0.5], [0.7, 0.9]]))
    assert np.array(series.fallback_spans()) == pytest.approx(np.array([[0.8, 1.0]]))
    assert series.filter_layers[-2:] == ("backup", "estop")
    assert series.barrier_times.size == 9 and series.barrier.min() == pytest.approx(0.1)
    fig = episode_figure(series, (), "test")
    try:
        texts = _legend_texts(fig)
        assert "filter changed the command (4 ticks)" in texts  # by the QP; the backup tick is a fallback
        assert "fallback layer (backup 1, estop 1 ticks)" in texts
    finally:
        plt.close(fig)


def test_flag_spans_of_nothing_and_of_one_tick() -> None:
    times = np.array([0.0, 0.02, 0.04])
    assert flag_spans(times, np.zeros(3, dtype=bool)) == []
    assert np.array(flag_spans(times, np.array([False, False, True]))) == pytest.approx(np.array([[0.04, 0.06]]))
    assert flag_spans(np.array([1.0]), np.array([True])) == [(1.0, 1.0)]
