"""Runs one process group of a hw_config's plan for the bridge's tests: its nodes on the wall clock, joined to the others by DdsBridge.

``python tests/dds_group.py --hw-config FILE --process NAME --domain-id N --duration S`` steps each
node of the group at its rate on CLOCK_MONOTONIC, which is also the ``now`` its nodes get (so a
message's stamp, made by the other process, is on the same clock as its reader's: an input's age
counts from its stamp, aegis.node.input_age_ns) (rate-driven nodes only: this is a test harness,
not the real-time executor), delivers what the bridge takes into input latches, and hands every
output to the bridge. It prints ``ready`` once its endpoints exist, then one JSON line: how many
messages it published and received per topic, and the last message of each output and input
(position, velocity, acceleration fields where the message has them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from aegis.config import load_config  # noqa: E402
from aegis.launch_plan import make_plan  # noqa: E402
from aegis.ros_shell import InputLatch  # noqa: E402
from aegis.transport import DdsBridge  # noqa: E402


def summary(msg: Any) -> dict[str, Any]:
    return {k: [float(x) for x in getattr(msg, k)] for k in ("position", "linear_velocity", "linear") if hasattr(msg, k)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hw-config", required=True)
    parser.add_argument("--process", required=True)
    parser.add_argument("--domain-id", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args()
    plan = make_plan(load_config(args.hw_config))
    launches = plan.processes[args.process]
    nodes = [launch.instantiate() for launch in launches]
    latches = {(node.name, port.name): InputLatch(port, node.max_ages[port.name]) for node in nodes for port in node.inputs}
    published: dict[str, int] = {}
    received: dict[str, int] = {}
    last: dict[str, Any] = {}
    with DdsBridge(plan, args.process, domain_id=args.domain_id) as bridge:
        print("ready", flush=True)
        bridge.wait_for_peers(10.0)
        for node in nodes:
            node.reset(seed=0)
        start = time.monotonic_ns()
        next_tick = {node.name: start for node in nodes}
        end = start + int(args.duration * 1e9)
        while (now := time.monotonic_ns()) < end:
            for topic, msg in bridge.take():
                received[topic] = received.get(topic, 0) + 1
                last[topic] = summary(msg)
                boundary = next(b for b in bridge.topics if b.topic == topic)
                for node_name, port_name, _ in boundary.readers:
                    latches[node_name, port_name].put(msg, now)
            for node in nodes:
                if now < next_tick[node.name]:
                    continue
                next_tick[node.name] += int(1e9 / node.rate_hz)
                inputs = {port.name: latches[node.name, port.name].get(now) for port in node.inputs}
                outputs = node.step(now / 1e9, inputs)  # CLOCK_MONOTONIC, one clock for both processes: stamps compare
                for port_name, msg in outputs.items():
                    topic = node.topics[port_name]
                    if bridge.publish(topic, msg):
                        published[topic] = published.get(topic, 0) + 1
                        last[topic] = summary(msg)
            wake = min(next_tick.values())
            bridge.wait(max(0.0, (wake - time.monotonic_ns()) / 1e9))
    print(json.dumps({"published": published, "received": received, "last": last, "rejected": bridge.rejected()}), flush=True)


if __name__ == "__main__":
    main()
