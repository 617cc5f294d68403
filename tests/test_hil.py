"""`aegis hil`: the shipped quadrotor as two real processes (plant, stack) over a real pty pair or UDP, with link faults.

Each run starts the real command (``python -m aegis.cli hil``). Nothing is timed: the checks are on
what the run did (the drone flew, the link carried frames both ways, the CRC rejected what the proxy
corrupted, the supervisor went degraded during a partition and came back) with bounds loose enough
for a loaded machine. The refusals are fast; the runs are slow-marked (about 10 s each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aegis.runs.bag import read_bag

REPO = Path(__file__).resolve().parent.parent
CONFIG = "hw_configs/quadrotor_oracle_sim.yaml"
SUMMARY_KEYS = {
    "collisions", "crashes", "tracking_rmse_m", "outcome", "deadline_misses", "timing", "sim_steps", "duration_s", "link", "bag",
}  # fmt: skip
ROW_KEYS = {
    "fault", "runs", "detection_ms", "safe_state_ms", "collisions", "crashes", "recovered", "recovered_runs", "detected",
    "each_detection_ms", "each_safe_state_ms",
}  # fmt: skip


def _hil(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])), COLUMNS="120")
    return subprocess.run(
        [sys.executable, "-m", "aegis.cli", "hil", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout
    )


def _said(stderr: str) -> list[str]:
    """What the command said on stderr (pybullet's import banner left out)."""
    return [line for line in stderr.splitlines() if not line.startswith("pybullet build time")]


def _states(bag: Path) -> list[tuple[float, str]]:
    """The supervisor's state changes: (s, state)."""
    changes: list[tuple[float, str]] = []
    for t_ns, _, msg in read_bag(bag, ["/supervisor/status"]):
        if not changes or changes[-1][1] != msg.state:
            changes.append((t_ns / 1e9, msg.state))
    return changes


def test_a_config_without_a_plant_group_is_refused_in_one_line(tmp_path: Path) -> None:
    result = _hil(CONFIG, "--set", "nodes.sim.process=world", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert len(_said(result.stderr)) == 1 and "no process group named plant" in result.stderr and "Traceback" not in result.stderr


def test_a_timeline_that_kills_the_plant_is_refused_saying_why(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  - {kind: kill, process: plant, at_s: 1.0, restart_after_s: 1.0}\n")
    result = _hil(CONFIG, "--faults", str(faults), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and len(_said(result.stderr)) == 1
    assert "killing the plant is not supported" in result.stderr and "kill the stack" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("link", ["udp", "serial"])
def test_the_quadrotor_flies_with_plant_and_stack_over_the_link(tmp_path: Path, link: str) -> None:
    out = tmp_path / "out"
    result = _hil(CONFIG, "--link", link, "--duration", "3", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["crashes"] == 0 and summary["collisions"] == 0
    assert summary["sim_steps"] > 100  # the plant stepped on the wall clock
    assert summary["final_states"]["/sim/ground_truth"]["position_m"][2] > 0.5  # took off and holds its altitude
    assert set(summary["processes"]) == {"plant", "stack"}
    for direction in ("plant_to_stack", "stack_to_plant"):
        row = summary["link"][direction]
        assert row["sent"] > 50 and row["received"] > 50 and row["rejected"] == 0
    assert summary["link"]["kind"] == link and "proxy" not in summary["link"]["plant_to_stack"]
    assert "running" in [state for _, state in _states(Path(summary["bag"]))]
    assert summary["supervisor_watched_nodes"] == 5  # every node's heartbeat reached the supervisor, the plant's over the link


@pytest.mark.slow
def test_corrupted_frames_are_caught_by_the_crc_and_a_partition_degrades_the_supervisor_and_it_recovers(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text(
        "seed: 3\nfaults:\n"
        "  - {kind: corrupt, probability: 0.3, bits: 1, at_s: 1.0, duration_s: 0.8}\n"
        "  - {kind: partition, at_s: 2.2, duration_s: 0.15}\n"
    )
    out = tmp_path / "out"
    result = _hil(CONFIG, "--link", "udp", "--duration", "4", "--faults", str(faults), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    link = summary["link"]
    for direction in ("plant_to_stack", "stack_to_plant"):
        proxy = link[direction]["proxy"]
        assert proxy["corrupt"] > 0 and proxy["partition"] > 0
        assert link[direction]["rejected"] > 0  # the receiver's CRC (or COBS) check dropped the corrupted frames
        # nothing else was rejected: a flipped bit that makes a zero byte (a frame boundary) splits one frame in two
        assert link[direction]["rejected"] <= 2 * proxy["corrupt"]
        assert set(link[direction]["rejected_by"]) <= {"crc", "cobs", "short", "truncated", "oversize"}
        assert link[direction]["rejected_by"].get("crc", 0) > 0
    assert summary["crashes"] == 0
    statuses = [(t_ns / 1e9, msg.state) for t_ns, _, msg in read_bag(Path(summary["bag"]), ["/supervisor/status"])]
    during = [state for t, state in statuses if 2.2 <= t < 2.2 + 0.15 + 0.2]
    assert "degraded" in during, statuses  # the partition degraded it (odometry stale) ...
    assert any(state == "running" for t, state in statuses if t > 2.35 + 0.5), statuses  # ... and it came back after


@pytest.mark.slow
def test_a_killed_stack_is_restarted_into_the_running_run_and_its_supervisor_runs_again(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  - {kind: kill, process: stack, at_s: 1.0, restart_after_s: 0.5}\n")
    out = tmp_path / "out"
    # the Husky: a drive without commands stops (a quadrotor's plant cuts its motors and falls: docs/hil.md)
    result = _hil("husky_oracle_sim", "--link", "serial", "--duration", "6", "--faults", str(faults), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    (kill,) = summary["link"]["kills"]
    assert kill["process"] == "stack" and kill["at_s"] >= 1.0 and kill["restarted_at_s"] >= 1.5
    assert set(summary["processes"]) == {"plant", "stack-2"}  # the killed life left no result: a crash writes nothing
    assert summary["crashes"] == 0 and summary["collisions"] == 0
    assert summary["link"]["stack_to_plant"]["late"] == 0  # the plant followed the restarted sender's sequence from its frame 0
    changes = _states(Path(summary["bag"]))
    assert changes[0][0] >= kill["restarted_at_s"] - 0.1, changes  # only the new life's supervisor, on the run's clock ...
    assert "running" in [state for _, state in changes], changes  # ... which runs


@pytest.mark.slow
def test_the_campaign_writes_one_row_per_fault_class(tmp_path: Path) -> None:
    rows_file = tmp_path / "rows.json"
    result = _hil(CONFIG, "--campaign", "faults", "--fault", "duplicate", "--runs", "1", "--link", "udp", "--json", str(rows_file),
                  "--out", str(tmp_path / "out"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(rows_file.read_text())
    assert [row["fault"] for row in rows] == ["duplicate"]
    row = rows[0]
    assert ROW_KEYS <= set(row) and row["runs"] == 1 and len(row["each_detection_ms"]) == 1
    # the receivers drop the copies as late frames (their sequence numbers): no input goes stale for them (a loaded machine
    # may still stall a delivery past the 50 ms bound: then the times are there, the safe command in the detecting step)
    if row["detection_ms"] is not None:
        assert row["detection_ms"] >= 0 and row["safe_state_ms"] >= row["detection_ms"]
    assert isinstance(row["collisions"], int) and isinstance(row["crashes"], int) and isinstance(row["recovered"], bool)
    assert row["crashes"] == 0 and row["collisions"] == 0
    summary = json.loads((tmp_path / "out" / "duplicate-0" / "summary.json").read_text())
    assert summary["link"]["plant_to_stack"]["proxy"]["duplicate"] > 0 and summary["link"]["plant_to_stack"]["late"] > 0


def test_campaign_options_go_together(tmp_path: Path) -> None:
    result = _hil(CONFIG, "--runs", "2", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and "go with --campaign faults" in result.stderr
    result = _hil(CONFIG, "--campaign", "faults", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and "--json FILE" in result.stderr


@pytest.mark.slow
def test_a_killed_stack_leaves_the_quadrotor_to_its_firmware_failsafe_which_levels_it_within_a_tick_of_the_bound(
    tmp_path: Path,
) -> None:
    # the campaign's kill class on the quadrotor, one run: the plant's link-loss failsafe (aegis.sim.link_loss) takes over
    # when the last command outlives its 0.1 s bound; the stack comes back within the failsafe's 2 s on a machine not
    # starved (else the motors stop, the drone falls and the crash is counted: that is what the row would then say)
    rows_file = tmp_path / "rows.json"
    result = _hil(CONFIG, "--campaign", "faults", "--fault", "kill", "--runs", "1", "--link", "udp", "--json", str(rows_file),
                  "--out", str(tmp_path / "out"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(rows_file.read_text())
    summary = json.loads((tmp_path / "out" / "kill-0" / "summary.json").read_text())
    assert summary["failsafe_takeovers"] >= 1, summary.get("failsafe_takeover_s")
    # detected when the last command (sent before the kill) went stale: 0.1 s after it, plus a plant tick, plus what load adds
    assert row["detected"] == 1 and 50.0 <= row["detection_ms"] <= 300.0 and row["safe_state_ms"] == row["detection_ms"]
    assert row["each_restart_s"][0] is not None and row["each_restart_s"][0] >= 1.0
    if row["each_restart_s"][0] < 1.9:  # back before the shutdown: it never fell
        assert row["crashes"] == 0 and summary["command_timeouts"] == 0


def test_a_class_row_reports_the_worst_run_and_each_one() -> None:
    from aegis.runs.hil_campaign import _row

    measures = [
        {"detection_ms": 42.3, "safe_state_ms": 42.3, "recovered": True, "stale_age_ms": 62.0},
        {"detection_ms": None, "safe_state_ms": None, "recovered": True, "stale_age_ms": None},
        {"detection_ms": 63.1, "safe_state_ms": 63.1, "recovered": False, "stale_age_ms": 70.0},
    ]
    row = _row("partition", measures, 0, 1)
    assert (row["detection_ms"], row["safe_state_ms"], row["detected"], row["recovered_runs"]) == (63.1, 63.1, 2, 2)
    assert row["recovered"] is False and row["crashes"] == 1 and row["each_detection_ms"] == [42.3, None, 63.1]
    assert row["each_stale_age_ms"] == [62.0, None, 70.0]


def test_a_kill_run_is_timed_from_the_kill_to_the_plants_failsafe_taking_over() -> None:
    from aegis.runs.hil_campaign import kill_measures

    summary = {"link": {"kills": [{"at_s": 2.512, "restarted_at_s": 4.1}]}, "failsafe_takeover_s": [0.05, 2.6104]}
    assert kill_measures(summary, True) == {"detection_ms": 98.4, "safe_state_ms": 98.4, "recovered": True, "restart_s": 1.59}
    husky = {"link": {"kills": [{"at_s": 1.0, "restarted_at_s": 2.5}]}}  # a drive has no such failsafe: no times
    assert kill_measures(husky, False)["detection_ms"] is None
