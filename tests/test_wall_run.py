"""`aegis run`: a shipped plan on the wall clock as real processes joined by DDS; clean stops on SIGINT/SIGTERM; a dead child fails the run.

Each test starts the real command (``python -m aegis.cli run``), which starts one child process per
``process`` group. Nothing is timed: the checks are on what the run did (the plant advanced, the
loop closed, the summary's keys) with bounds loose enough for a loaded machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aegis.runs.bag import bag_info

pytest.importorskip("cyclonedds")

REPO = Path(__file__).resolve().parent.parent
SIM_KEYS = {
    "robot", "scenario", "seed", "duration_s", "sim_steps", "wall_time_s", "real_time_factor", "loop_time_us", "nodes",
    "messages", "collisions", "crashes", "outcome", "tracking_rmse_m", "min_clearance_m", "final_states", "bag", "timing",
}  # fmt: skip
TIMING_KEYS = {"process", "rate_hz", "steps", "step_p50_us", "step_p99_us", "jitter_p50_us", "jitter_p99_us", "deadline_misses"}
DOMAIN = 1 + (os.getpid() + 37) % 200


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])), COLUMNS="120")


def _start(config: str, duration: float, out: Path, *extra: str, session: bool = False) -> subprocess.Popen:
    command = [sys.executable, "-m", "aegis.cli", "run", config, "--duration", str(duration), "--out", str(out), "--domain-id", str(DOMAIN)]
    return subprocess.Popen(
        [*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=out.parent,
        start_new_session=session,
    )  # fmt: skip


def _until_running(run: subprocess.Popen) -> dict[str, int]:
    """Read the parent's stderr until the run has started; the children's pids by process group."""
    pids = {}
    for line in run.stderr:  # type: ignore[union-attr]
        found = re.match(r"process (\S+) \(pid (\d+)\)", line)
        if found:
            pids[found.group(1)] = int(found.group(2))
        if line.startswith("running on DDS domain"):
            return pids
    raise AssertionError(f"the run never started (exit {run.wait()})")


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie waiting for whoever reaps orphans here has ended too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def test_a_run_closes_the_loop_across_two_processes_and_writes_the_summary(tmp_path: Path) -> None:
    """point_mass_ros: the plant and the controller in two processes, on DDS under /point_mass; the mass moves to its setpoint."""
    run = _start("point_mass_ros", 3.0, tmp_path / "run")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert SIM_KEYS | {"deadline_misses", "processes"} <= summary.keys()
    assert set(summary["processes"]) == {"plant", "control"} and not summary["stopped"]
    assert summary["crashes"] == 0 and summary["collisions"] == 0
    assert summary["dds_domain_id"] == DOMAIN
    for name in ("plant", "controller"):
        assert TIMING_KEYS <= summary["timing"][name].keys()
        assert summary["timing"][name]["jitter_p50_us"] is not None
    assert summary["deadline_misses"] == sum(row["deadline_misses"] for row in summary["timing"].values())
    # the plant ran on the wall clock for (most of) the 3 s: 200 Hz
    assert 0.5 * 3.0 < summary["duration_s"] <= 3.0 + 1e-9
    assert summary["sim_steps"] == summary["timing"]["plant"]["steps"] > 300
    # the loop closed over DDS: the controller drove the mass most of the way to its setpoint (1.0, 0.5, 0.0)
    x, y, _ = summary["final_states"]["/odom"]["position_m"]
    assert x > 0.5 and y > 0.25, summary["final_states"]
    topics = {t["topic"]: t["count"] for t in bag_info(tmp_path / "run" / "bag")["topics"]}
    assert topics["/odom"] > 300 and topics["/cmd_accel"] > 75 and topics["/diagnostics"] >= 2
    assert "per-node timing" in out and "deadline misses" in out


@pytest.mark.slow
def test_the_quadrotor_flies_its_figure8_on_the_wall_clock(tmp_path: Path) -> None:
    """quadrotor_oracle_sim: the simulator in its process, the stack in another; it flies without a crash or a collision."""
    run = _start("quadrotor_oracle_sim", 4.0, tmp_path / "run")
    _, err = run.communicate(timeout=180)
    assert run.returncode == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary["processes"]) == {"plant", "stack"}
    assert summary["crashes"] == 0 and summary["collisions"] == 0 and summary["outcome"] != "crash"
    assert summary["duration_s"] > 2.0 and summary["tracking_rmse_m"] < 0.5
    assert summary["timing"]["attitude"]["process"] == "stack" and summary["timing"]["sim"]["rate_hz"] == 240
    assert summary["supervisor_watched_nodes"] == 5  # /diagnostics crossed over DDS: the simulator's heartbeat reached the stack


@pytest.mark.parametrize(
    ("sig", "everyone"),
    [(signal.SIGTERM, False), pytest.param(signal.SIGINT, False, marks=pytest.mark.slow), (signal.SIGINT, True)],
    ids=["SIGTERM", "SIGINT", "Ctrl-C to the process group"],
)  # fmt: skip
def test_a_signal_stops_every_process_cleanly_with_a_summary(tmp_path: Path, sig: int, everyone: bool) -> None:
    run = _start("point_mass_ros", 120.0, tmp_path / "run", session=everyone)
    try:
        pids = _until_running(run)
        time.sleep(1.0)
        if everyone:  # what a terminal's Ctrl-C does: SIGINT to the parent and every child at once
            os.killpg(run.pid, sig)
        else:
            run.send_signal(sig)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    assert set(pids) == {"plant", "control"} and all(_gone(pid) for pid in pids.values())
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped"] and summary["sim_steps"] > 0
    assert all(p["stopped"] for p in summary["processes"].values())


def test_a_child_that_dies_fails_the_run_naming_it(tmp_path: Path) -> None:
    run = _start("point_mass_ros", 120.0, tmp_path / "run")
    try:
        pids = _until_running(run)
        time.sleep(0.5)
        os.kill(pids["plant"], signal.SIGKILL)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1
    assert "process plant (nodes plant) killed by SIGKILL during the run" in err, err
    assert all(_gone(pid) for pid in pids.values())
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.slow
def test_the_children_stop_when_the_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves the parent no chance to stop anyone: its children see their stdin close and stop by themselves."""
    run = _start("point_mass_ros", 120.0, tmp_path / "run")
    pids: dict[str, int] = {}
    try:
        pids = _until_running(run)
        run.kill()
        run.wait(timeout=30)
        deadline = time.monotonic() + 60
        while not all(_gone(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        for pid in pids.values():
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
    assert all(_gone(pid) for pid in pids.values())


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("DISPLAY")), reason="needs a machine without a display")
def test_a_child_that_fails_to_start_fails_the_run_saying_why(tmp_path: Path) -> None:
    """--gui without a display: the simulator's process fails while building its world; the run says which and why."""
    run = _start("quadrotor_oracle_sim", 2.0, tmp_path / "run", "--gui")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 1
    assert "process plant (nodes sim) exited with status 1 before it was ready: RuntimeError: the PyBullet GUI needs a display" in err, err


@pytest.mark.slow
def test_an_outside_participant_on_the_domain_sees_and_reads_the_run(tmp_path: Path) -> None:
    """What a ROS 2 machine on the run's domain would see: with --publish-all every topic's writer, with ROS 2's names,
    and /odom's messages (as `ros2 topic echo /odom` reads them: a best-effort subscription)."""
    from aegis.msgs import RobotState
    from aegis.transport import DdsTransport
    from aegis.transport.discovery import discovered_endpoints

    with DdsTransport(domain_id=DOMAIN) as outside:
        odom = outside.subscription("/odom", RobotState)
        run = _start("quadrotor_oracle_sim", 3.0, tmp_path / "run", "--publish-all")
        received = []
        seen = set()
        try:
            _until_running(run)
            while run.poll() is None:
                received += odom.take()
                seen |= {(e.dds_topic, e.dds_type) for e in discovered_endpoints(outside.participant, ("publication",))}
                time.sleep(0.05)
        finally:
            if run.poll() is None:
                run.kill()
    assert run.returncode == 0, run.stderr.read()  # type: ignore[union-attr]
    assert ("rt/odom", "nav_msgs::msg::dds_::Odometry_") in seen
    assert ("rt/cmd_accel_nominal", "geometry_msgs::msg::dds_::AccelStamped_") in seen  # inside the stack: there with --publish-all
    assert ("rt/cmd_motors", "sensor_msgs::msg::dds_::JointState_") in seen
    assert len(received) > 10 and all(np.isfinite(m.position).all() for m in received)
