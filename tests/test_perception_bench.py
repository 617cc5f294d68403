"""`aegis bench perception`: rows named and finite on its fixed scan, the JSON the issue names (rows {name, median_us, p99_us}), targets reported not asserted."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from aegis.cli import main


def test_aegis_bench_perception_writes_the_rows_and_the_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "perception.json"
    assert main(["bench", "perception", "--repeats", "5", "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    rows = {row["name"]: row for row in document["rows"]}
    assert set(rows) == {
        "lidar_360_detect", "lidar_360_node", "lidar_360x5_node", "lidar_1080_detect", "depth_64x48_node", "depth_160x120_node", "depth_200x120_node",
        "depth_cheap", "depth_large", "depth_cascade", "depth_window_sector", "depth_window_3_sectors",
    }
    for row in rows.values():
        assert math.isfinite(row["median_us"]) and row["p99_us"] >= row["median_us"] > 0
    # the fixed scan: two pillars, the near faces of two boxes and the yard's walls cut by their shadows
    assert rows["lidar_360_detect"]["obstacles"] == rows["lidar_360_node"]["obstacles"] >= 6
    # five planes of the same scene: each thing's copies merged into one obstacle over the planes (aegis.perception.lidar_merge),
    # not five (a few stay apart where one plane's fit differs: a corner seen as a circle in one plane, a face in the next)
    planar, planes = rows["lidar_360_node"]["obstacles"], rows["lidar_360x5_node"]["obstacles"]
    assert planar <= planes < 2 * planar and rows["lidar_360x5_node"]["points"] == 1800
    # the rendered image: the first box and the far pillar in view, each found (the 64x48 one may merge or lose a thin edge)
    assert rows["depth_160x120_node"]["obstacles"] >= 2 and rows["depth_200x120_node"]["points"] == 24000
    # the learned rows: 16 sectors per frame, some of them on the scene's obstacles; the cascade's escalations a fraction
    assert rows["depth_cheap"]["obstacles"] > 0 and 0.0 <= rows["depth_cascade"]["escalated"] <= 1.0
    assert 0.0 <= rows["depth_cascade"]["sectors_refined"] <= 1.0 and rows["depth_window_sector"]["points"] == 9 * 48
    assert rows["depth_window_3_sectors"]["points"] == 3 * 9 * 48
    names = [t["name"] for t in document["targets"]]
    assert names[0] == "lidar 360-beam scan -> obstacles p99 <= 1 ms" and names[1].startswith("depth cascade mean <= 50 %")
    assert "lidar_360_detect" in capsys.readouterr().out
