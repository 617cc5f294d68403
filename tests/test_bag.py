"""Recording a lockstep run to a rosbag2 MCAP bag, reading it back with rosbags, and replaying it into a graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import Reader

from aegis.runs.bag import BagRecorder, bag_info, read_bag
from aegis.config import load_config
from aegis.executors.lockstep import LockstepExecutor
from aegis.launch_plan import make_plan
from aegis.msgs import AccelCommand, RobotState, messages_equal, rosbags_types

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "hw_configs" / "point_mass_sim.yaml"


def record(bag_path: Path, distro: str = "jazzy", duration_s: float = 2.0) -> list[tuple[str, object, int]]:
    """Run the point-mass loop, recording to ``bag_path``; returns every publication in order."""
    published: list[tuple[str, object, int]] = []
    nodes = make_plan(load_config(CONFIG)).instantiate()
    with BagRecorder(bag_path, distro=distro) as recorder:
        executor = LockstepExecutor(nodes, listeners=[recorder.write, lambda *event: published.append(event)])
        executor.reset(seed=0)
        executor.run(duration_s)
    return published


@pytest.mark.parametrize("distro", ["humble", "jazzy"])
def test_bag_is_mcap_with_standard_ros2_types_that_rosbags_reads(tmp_path: Path, distro: str) -> None:
    bag = tmp_path / "bag"
    published = record(bag, distro)
    metadata = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["storage_identifier"] == "mcap"
    assert [f["path"] for f in metadata["files"]] == ["bag.mcap"]
    assert (bag / "bag.mcap").read_bytes()[:8] == b"\x89MCAP0\r\n"  # the MCAP magic
    typestore = rosbags_types(distro).typestore
    with Reader(bag) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        assert types == {"/odom": "nav_msgs/msg/Odometry", "/cmd_accel": "geometry_msgs/msg/AccelStamped"}
        counts = {c.topic: c.msgcount for c in reader.connections}
        assert counts == {"/odom": 400, "/cmd_accel": 100}
        first_odom = next(
            typestore.deserialize_cdr(raw, c.msgtype) for c, _, raw in reader.messages() if c.topic == "/odom"
        )
    assert first_odom.header.frame_id == "odom" and first_odom.child_frame_id == "base_link"
    assert len(published) == 500


def test_read_bag_gives_back_exactly_what_was_published(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    published = record(bag)
    read = list(read_bag(bag))
    assert len(read) == len(published)
    expected = sorted(published, key=lambda e: e[2])  # bag order is time order
    for (t_ns, topic, msg), (topic0, msg0, t0) in zip(read, expected):
        assert (t_ns, topic) == (t0, topic0)
        assert messages_equal(msg, msg0), f"{topic} at {t_ns} differs"


def test_replaying_recorded_odometry_into_the_controller_reproduces_its_commands(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    published = record(bag)
    recorded_commands = [(t, msg) for topic, msg, t in published if topic == "/cmd_accel"]

    controller = make_plan(load_config(CONFIG)).instantiate()[1]  # the plant is replaced by the bag
    replayed: list[tuple[int, AccelCommand]] = []
    executor = LockstepExecutor(
        [controller],
        sources=[read_bag(bag, topics=["/odom"])],
        listeners=[lambda topic, msg, t: topic == "/cmd_accel" and replayed.append((t, msg))],
    )
    executor.reset(seed=0)
    executor.run(2.0)
    assert len(replayed) == len(recorded_commands) == 100
    for (t, msg), (t0, msg0) in zip(replayed, recorded_commands):
        assert t == t0
        assert messages_equal(msg, msg0)
    assert np.abs(recorded_commands[0][1].linear).max() > 0  # a loop that did something


def test_bag_info_and_refusals(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    record(bag, duration_s=1.0)
    info = bag_info(bag)
    assert info["messages"] == 250 and info["storage"] == "mcap"
    assert {t["topic"]: t["aegis_type"] for t in info["topics"]} == {"/odom": "RobotState", "/cmd_accel": "AccelCommand"}
    with pytest.raises(KeyError, match="no topic /scan"):
        list(read_bag(bag, topics=["/scan"]))
    with BagRecorder(tmp_path / "mixed") as recorder:
        recorder.write("/x", AccelCommand(stamp=0.0, frame_id="odom"), 0)
        with pytest.raises(TypeError, match="recorded as AccelCommand, now given RobotState"):
            recorder.write("/x", RobotState(stamp=0.0, frame_id="odom"), 1)


def test_foxglove_mcap_reader_decodes_the_bag_from_its_embedded_schemas(tmp_path: Path) -> None:
    """The official MCAP library (what Foxglove uses) decodes every message from the schemas in the file."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    bag = tmp_path / "bag"
    published = record(bag, duration_s=0.5)
    with (bag / "bag.mcap").open("rb") as handle:
        reader = make_reader(handle, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        schemas = {c.topic: (summary.schemas[c.schema_id].name, summary.schemas[c.schema_id].encoding) for c in summary.channels.values()}
        decoded = [(channel.topic, message.log_time, msg) for _, channel, message, msg in reader.iter_decoded_messages()]
    assert schemas == {"/odom": ("nav_msgs/msg/Odometry", "ros2msg"), "/cmd_accel": ("geometry_msgs/msg/AccelStamped", "ros2msg")}
    assert len(decoded) == len(published) == 125
    odometry = {t: msg for topic, t, msg in decoded if topic == "/odom"}
    for topic, msg, t_ns in published:
        if topic == "/odom":
            position = odometry[t_ns].pose.pose.position
            assert (position.x, position.y, position.z) == tuple(msg.position)


def test_bags_of_several_processes_merge_into_one_in_time_order(tmp_path: Path) -> None:
    """What `aegis run` does with its process groups' bags: one bag, every message once, in time order, bytes unchanged."""
    from aegis.runs.bag import merge_bags

    commands = [(f"/cmd_{k}", AccelCommand(stamp=t / 1e9, frame_id="odom", linear=np.full(3, float(t))), t) for k, t in ((0, 3), (0, 10), (1, 5))]
    for k in (0, 1):
        with BagRecorder(tmp_path / f"group{k}") as recorder:
            for topic, msg, t in commands:
                if topic == f"/cmd_{k}":
                    recorder.write(topic, msg, t)
    assert merge_bags([tmp_path / "group0", tmp_path / "group1"], tmp_path / "merged") == 3
    merged = list(read_bag(tmp_path / "merged"))
    assert [(t, topic) for t, topic, _ in merged] == [(3, "/cmd_0"), (5, "/cmd_1"), (10, "/cmd_0")]
    assert all(messages_equal(msg, dict((t, m) for _, m, t in commands)[t]) for t, _, msg in merged)
    assert {row["topic"]: row["aegis_type"] for row in bag_info(tmp_path / "merged")["topics"]} == {
        "/cmd_0": "AccelCommand", "/cmd_1": "AccelCommand",
    }  # fmt: skip
