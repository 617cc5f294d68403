"""The default quadrotor chain through a window on its own lidar: each plane fitted alone gets it through where the flattened scan deadlocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from aegis.runs.evaluation import Campaign, run_campaign

REPO = Path(__file__).resolve().parents[2]
QUADROTOR = REPO / "hw_configs" / "quadrotor_sim.yaml"


PLANES = ("nodes.sim.params.lidar.point_cloud=true", "nodes.lidar.params.plane_offsets_m=[-0.12,-0.06,0.0,0.06,0.12]")
"""quadrotor_sim's lidar with each plane's returns on /points and the node fitting them one by one (opt-in: docs/campaigns.md)."""


def episode(*overrides: str) -> dict:
    return run_campaign(Campaign(QUADROTOR, ("scenario=quadrotor_gaps", *overrides), episodes=1, seed=902), workers=1)["episodes"][0]


@pytest.mark.slow  # two 12 s episodes: about 10 s of CPU, a minute on a loaded machine
def test_the_drone_passes_a_window_whose_edge_the_flattened_scan_made_a_wall() -> None:
    """quadrotor_gaps seed 902 (campaign seeds 900..): with /points fitted plane by plane it flies through both windows;
    with the planes flattened into one scan (the node without plane_offsets_m: every return stands from the ground) it
    stops at one."""
    planes = episode(*PLANES)
    assert planes["outcome"] == "success" and planes["collisions"] == 0 and planes["crashes"] == 0
    assert planes["perception"]["true_min_h"] >= -1e-3  # safe on the true obstacles
    assert planes["perception_scans_without_points"] == 0
    flat = episode("nodes.sim.params.lidar.point_cloud=true")  # the same sensor stream, the node on the flattened /scan
    assert flat["outcome"] == "deadlock" and flat["collisions"] == 0
