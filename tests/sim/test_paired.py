"""python -m aegis.runs.paired: campaigns of the same seeds compared seed by seed, from real `aegis eval --json` files."""

from __future__ import annotations

import json

import pytest

from aegis.cli import main
from aegis.runs import paired


@pytest.fixture(scope="module")
def two_campaigns(tmp_path_factory) -> tuple:
    """The default config, 2 episodes of 3 s: once with the filter, once without (same seeds, other flights)."""
    folder = tmp_path_factory.mktemp("paired")
    filtered, unfiltered = folder / "filtered.json", folder / "unfiltered.json"
    common = ["eval", "--episodes", "2", "--duration", "3", "--workers", "1", "--seed", "4"]
    assert main([*common, "--json", str(filtered)]) == 0
    assert main([*common, "--no-filter", "--json", str(unfiltered)]) == 0
    return filtered, unfiltered


def test_paired_difference_is_the_mean_of_the_per_seed_differences(two_campaigns, capsys) -> None:
    filtered, unfiltered = two_campaigns
    episodes = {name: json.loads(path.read_text())["episodes"] for name, path in (("a", filtered), ("b", unfiltered))}
    differences = [b["tracking_rmse_m"] - a["tracking_rmse_m"] for a, b in zip(episodes["a"], episodes["b"])]
    assert [e["seed"] for e in episodes["a"]] == [e["seed"] for e in episodes["b"]] == [4, 5]

    rows = paired.comparison_rows([paired.load_campaign(filtered), paired.load_campaign(unfiltered)])
    assert "vs_first_cm" not in rows[0]
    mean, error = rows[1]["vs_first_cm"]
    assert mean == pytest.approx(100 * sum(differences) / 2)
    assert error == pytest.approx(100 * abs(differences[0] - differences[1]) / 2)  # s.e. of two values: |d0 - d1| / 2
    assert rows[0]["episodes"] == 2 and rows[0]["collisions"] == sum(e["collisions"] for e in episodes["a"])
    assert rows[0]["rmse_worst_cm"] == pytest.approx(100 * max(e["tracking_rmse_m"] for e in episodes["a"]))

    assert paired.main([str(filtered), str(filtered)]) == 0  # a campaign against itself: exactly 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and printed[1].endswith("minus filtered.json, paired: +0.00 ± 0.00 cm")


def test_campaigns_of_other_seeds_or_other_files_are_refused_by_name(two_campaigns, tmp_path, capsys) -> None:
    filtered, _ = two_campaigns
    shifted = json.loads(filtered.read_text())
    for episode in shifted["episodes"]:
        episode["seed"] += 10
    other = tmp_path / "other_seeds.json"
    other.write_text(json.dumps(shifted))
    assert paired.main([str(filtered), str(other)]) == 2
    assert "other_seeds.json and filtered.json are not the same seeds" in capsys.readouterr().err

    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"tracking_rmse_m": 0.05}))  # an `aegis sim` summary, not a campaign
    assert paired.main([str(filtered), str(summary)]) == 2
    assert f"{summary}: not an `aegis eval --json` file (KeyError" in capsys.readouterr().err
