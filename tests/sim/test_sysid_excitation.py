"""The excitation designer (aegis.sysid.excitation): seeded candidate tours, scored by flying and identifying them, the best written as a scenario."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aegis.scenario import load_scenario
from aegis.sysid.excitation import TOUR_BOX_M, draw_candidates, main, score, scenario_of, shipped_candidate
from aegis.sysid.recovery import RELATIVE_KEYS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_candidates_are_the_shipped_tour_then_seeded_tours_inside_the_box() -> None:
    first, again, other = draw_candidates(6, seed=3), draw_candidates(6, seed=3), draw_candidates(6, seed=4)
    assert first == again and first != other
    assert first[0] == shipped_candidate() == other[0]
    for candidate in first[1:]:
        points = np.array(candidate.points)
        for axis, (low, high) in enumerate(TOUR_BOX_M):
            assert np.all((points[:, axis] >= low) & (points[:, axis] <= high))
        assert tuple(points[0]) == (0.0, 0.0, 1.0)


def test_a_candidate_is_a_scenario_the_loader_accepts(tmp_path: Path) -> None:
    candidate = draw_candidates(2, seed=0)[1]
    path = tmp_path / "excitation.yaml"
    path.write_text(scenario_of(candidate, 7.5, "# header\n"))
    scenario = load_scenario(path)
    assert scenario.duration_s == 7.5
    assert np.allclose(scenario.reference.points, candidate.points)
    assert scenario.start.yaw_rad == candidate.yaw_rad


def test_the_shipped_tour_flown_briefly_identifies_every_parameter_and_is_scored(tmp_path: Path) -> None:
    result = score(shipped_candidate(), 6.0, tmp_path)
    assert result.usable, result
    assert result.identified == len(RELATIVE_KEYS)
    assert 0.0 < result.information <= result.worst_relative_ci < 0.05
    assert result.worst_key in RELATIVE_KEYS


@pytest.mark.slow
def test_the_designer_writes_the_best_candidate_as_a_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "designed.yaml"
    assert main(["--candidates", "3", "--duration", "6", "--seed", "0", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.count("candidate ") >= 3 and "best: candidate" in text
    scenario = load_scenario(out)
    assert scenario.duration_s == 6.0
    assert out.read_text().startswith("# Excitation for aegis sysid, designed (ASID)")
