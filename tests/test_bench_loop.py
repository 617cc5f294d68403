"""`aegis bench loop`: the rows and keys it writes, the breakdown, the floor, the steps replayed warm, the targets (reported, never
asserted), and the recorded plant."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from aegis.bench.loop import ROW_KEYS, ROW_NAMES
from aegis.bench.recorded_plant import recorded_plant_type
from aegis.executors.lockstep import LockstepExecutor
from aegis.msgs import AccelCommand
from aegis.node import Node, Port

pytest.importorskip("pybullet")


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    from aegis.cli import main

    path = tmp_path_factory.mktemp("bench") / "loop.json"
    capsys_free = main(["bench", "loop", "--duration", "1", "--json", str(path)])
    assert capsys_free == 0
    return json.loads(path.read_text()), str(path)


def test_the_json_has_one_row_per_scheduler_with_the_documented_keys(document) -> None:
    doc, _ = document
    assert [row["name"] for row in doc["rows"]] == list(ROW_NAMES)
    for row in doc["rows"]:
        assert set(row) == set(ROW_KEYS)
        if row["median_us"] is None:  # SCHED_FIFO refused here: the row says why and has no numbers
            assert row["name"] == "tick_fifo" and row["refused"].startswith("priority")
            continue
        assert 0 < row["median_us"] <= row["p99_us"] <= row["max_us"]
        assert 0 < row["cpu_median_us"] <= row["median_us"] + 1.0 and row["cpu_median_us"] <= row["cpu_p99_us"]
        assert 0.0 <= row["deadline_miss_rate"] <= 1.0
        assert row["ticks"] == 1000  # 1 s at 1 kHz, whether run or skipped
        assert sum(count for _, _, count in row["histogram_us"]) >= 1000 - row["skipped_ticks"]
        assert math.isfinite(row["jitter_p50_us"]) and row["jitter_p50_us"] <= row["jitter_p99_us"]
    assert doc["rows"][0]["scheduler"] == "SCHED_OTHER"
    assert doc["rows"][1]["scheduler"] in ("SCHED_FIFO 50", "SCHED_FIFO (refused)")
    assert doc["rate_hz"] == 1000.0 and doc["duration_s"] == 1.0 and doc["plant"].startswith("recorded")


def test_the_breakdown_splits_the_tick_into_the_executor_the_math_and_the_node_layer(document) -> None:
    doc, _ = document
    breakdown = doc["breakdown"]
    parts = {(p["node"], p["part"]) for p in breakdown["parts"]}
    assert ("executor", "inputs, delivery, timing (tick minus steps)") in parts
    assert {("controller", "inference"), ("controller", "observation"), ("filter", "CBF QP"), ("attitude", "cascade")} <= parts
    assert ("filter", "plant model (lag, dead time, bias)") in parts  # the shipped filter models its plant's lag
    assert ("sim", "step") in parts  # the recorded plant stands where the simulator was, under its name
    assert sum(p["mean_us"] for p in breakdown["parts"]) == pytest.approx(breakdown["tick_mean_us"])


def test_the_floor_times_the_chain_s_own_inference_and_qp_calls_alone_warm_and_at_the_rate(document) -> None:
    doc, _ = document
    floor = doc["floor"]
    assert floor["rate_hz"] == 1000.0 and floor["duration_s"] == 1.0
    assert [part["part"] for part in floor["parts"]] == [
        "inference (bare onnxruntime call)", "CBF QP (bare solve)", "both in a row: the floor of a tick",
    ]  # fmt: skip
    for part in floor["parts"]:
        assert 0 < part["warm_median_us"] and 0 < part["at_rate_median_us"] <= part["at_rate_p99_us"]


def test_a_chain_without_a_policy_or_a_filter_has_no_floor() -> None:
    from aegis.bench.loop_floor import measure_floor

    plant = recorded_plant_type([Port("a", AccelCommand, "/a")])("plant", {"/a": ([0], [AccelCommand()])}, 1_000_000, rate_hz=1000.0)
    ran: list[float] = []
    assert measure_floor([plant], ran.append, 1000.0, 0.01, 0.0) is None
    assert ran == []  # nothing to catch: the chain is not even run


def test_each_node_s_steps_replay_warm_and_give_the_run_s_outputs(document) -> None:
    doc, _ = document
    steps = doc["steps"]
    assert steps["duration_s"] == 1.0 and steps["passes"] == 3
    assert [row["node"] for row in steps["nodes"]] == ["controller", "filter", "supervisor", "attitude"]  # the plant is not timed
    assert len({row["steps"] for row in steps["nodes"]}) == 1 and steps["nodes"][0]["steps"] > 0
    assert all(0 < row["median_us"] for row in steps["nodes"])
    assert steps["same_outputs"] and steps["first_difference"] is None  # the chain's nodes are functions of their inputs and reset


class Counting(Node):
    """Publishes how many times it stepped; ``forgetful`` nodes restart from 0 at reset, the others do not (state the replay misses)."""

    type_name = "test_counting"
    outputs = (Port("command", AccelCommand, "/count"),)
    default_rate_hz = 1000.0
    forgetful = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.count = 0

    def reset(self, seed: int | None = None) -> None:
        if self.forgetful:
            self.count = 0

    def step(self, now: float, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        self.count += 1
        return {"command": AccelCommand(stamp=now, frame_id="odom", linear=np.array([float(self.count), 0.0, 0.0]))}


class Remembering(Counting):
    type_name = "test_remembering"
    forgetful = False


@pytest.mark.parametrize(("node_type", "same"), [(Counting, True), (Remembering, False)])
def test_a_step_that_replays_otherwise_than_it_ran_is_reported(node_type: type[Counting], same: bool) -> None:
    from aegis.bench.loop_steps import measure_steps

    plant = recorded_plant_type([Port("a", AccelCommand, "/a")])("plant", {"/a": ([0], [AccelCommand()])}, 1_000_000, rate_hz=1000.0)
    node = node_type("counter")
    nodes = [plant, node]

    def run_chain(duration_s: float, warmed: Any) -> None:  # as the bench's run: reset, a warm-up, warmed(), reset, the run
        for node_ in nodes:
            node_.reset(0)
        node.step(0.0, {})
        warmed()
        for node_ in nodes:
            node_.reset(0)
        for tick in range(round(duration_s * 1000)):
            node.step(tick / 1000.0, {})

    steps = measure_steps(nodes, run_chain, 0.005, passes=2)
    assert [row["node"] for row in steps["nodes"]] == ["counter"] and steps["nodes"][0]["steps"] == 10
    assert steps["same_outputs"] is same
    assert (steps["first_difference"] is None) is same
    if not same:
        assert steps["first_difference"] == "counter at 0.000000 s: command.linear"
    assert "step" not in vars(node)  # the recording wrapper is gone


def test_the_targets_are_reported_for_every_measured_row_not_asserted(document) -> None:
    doc, _ = document
    measured = [row["name"] for row in doc["rows"] if row["median_us"] is not None]
    assert [(t["row"], t["target"]) for t in doc["targets"]] == [(r, t) for r in measured for t in ("median", "p99", "deadline misses")]
    assert all(isinstance(t["met"], bool) for t in doc["targets"])
    assert {"python", "cpus"} <= set(doc["machine"])


def test_the_recorded_plant_publishes_each_message_once_at_its_time_and_restamps_later_laps() -> None:
    recording = {"/a": ([0, 2_500_000, 6_000_000], [AccelCommand(stamp=t, linear=np.full(3, t)) for t in (0.0, 0.0025, 0.006)])}
    plant = recorded_plant_type([Port("a", AccelCommand, "/a")])("plant", recording, 8_000_000, rate_hz=1000.0)
    seen: list[tuple[int, float]] = []
    executor = LockstepExecutor([plant], listeners=[lambda topic, msg, t: seen.append((t, msg.stamp))])
    executor.reset()
    executor.run(0.02)
    # laps of 8 ms: each message at the first 1 ms tick at or after its time, later laps stamped 8 ms later per lap
    assert seen == [
        (0, 0.0), (3_000_000, 0.0025), (6_000_000, 0.006),
        (8_000_000, 0.008), (11_000_000, 0.0105), (14_000_000, 0.014),
        (16_000_000, 0.016), (19_000_000, 0.0185),
    ]  # fmt: skip


def test_aegis_bench_loop_prints_the_table_and_the_targets(capsys: pytest.CaptureFixture[str]) -> None:
    from aegis.bench.loop import print_report

    doc = {
        "rate_hz": 1000.0, "duration_s": 1.0, "plant": "recorded", "breakdown": None,
        "rows": [
            {**dict.fromkeys(ROW_KEYS), "name": "tick", "scheduler": "SCHED_OTHER", "median_us": 50.0, "p99_us": 140.0, "max_us": 300.0, "cpu_median_us": 45.0, "cpu_p99_us": 100.0,
             "deadline_miss_rate": 0.0, "deadline_misses": 0, "jitter_p50_us": 5.0, "jitter_p99_us": 40.0, "ticks": 1000},
            {**dict.fromkeys(ROW_KEYS), "name": "tick_fifo", "scheduler": "SCHED_FIFO (refused)", "refused": "priority Operation not permitted"},
        ],
    }  # fmt: skip
    from aegis.bench.loop import targets

    doc["targets"] = targets(doc["rows"])
    print_report(doc)
    out = capsys.readouterr().out
    assert "refused: priority Operation not permitted" in out
    assert "target tick median <= 60 µs: 50.0 µs — met" in out and "target tick p99 <= 150 µs: 140.0 µs — met" in out
    assert "tick_fifo median" not in out
