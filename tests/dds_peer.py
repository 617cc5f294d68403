"""A second process on the DDS domain for the transport's tests: receives, reports what it got and sends it back.

Run as ``python tests/dds_peer.py --domain-id N --namespace NS --topics JSON`` where JSON maps an
aegis topic to an aegis message class name. For every topic it subscribes (best effort, depth 10)
and, on the first payload, records its bytes (hex) and publishes the decoded message again, encoded
in this process, on ``<topic>_back``. It prints ``ready`` once its endpoints exist, then, when every
topic was received or the timeout passed, one JSON line: ``received`` (topic -> hex),
``rejected`` (topic -> reason) and ``discovered`` (the other processes' ROS endpoints as this
process sees them through DDS discovery).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from aegis.msgs import MESSAGE_TYPES  # noqa: E402
from aegis.ros_shell import QosSettings  # noqa: E402
from aegis.transport import DdsTransport  # noqa: E402
from aegis.transport.discovery import discovered_endpoints  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domain-id", type=int, required=True)
    parser.add_argument("--namespace", default="")
    parser.add_argument("--topics", required=True)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    topics = json.loads(args.topics)
    received: dict[str, str] = {}
    rejected: dict[str, str] = {}
    with DdsTransport(domain_id=args.domain_id, namespace=args.namespace) as transport:
        endpoints = {}
        for topic, class_name in topics.items():
            cls = MESSAGE_TYPES[class_name]
            sub = transport.subscription(topic, cls, QosSettings(depth=10, reliability="best_effort"))
            back = transport.publisher(topic + "_back", cls, QosSettings(depth=10, reliability="reliable"))
            endpoints[topic] = (sub, back)
        print("ready", flush=True)
        deadline = time.monotonic() + args.timeout
        while len(received) < len(topics) and time.monotonic() < deadline:
            for topic, (sub, back) in endpoints.items():
                for payload in sub.take_cdr():
                    if topic not in received:
                        received[topic] = payload.hex()
                        try:
                            back.publish(sub.codec.decode(payload))
                        except Exception as exc:  # reported, not raised: the test names it
                            rejected[topic] = f"{type(exc).__name__}: {exc}"
            time.sleep(0.005)
        # keep answering a little while: the first _back sample may go out before the reader has matched
        until = time.monotonic() + 1.0
        while time.monotonic() < until:
            for topic, (sub, back) in endpoints.items():
                if topic in received and topic not in rejected:
                    back.publish(sub.codec.decode(bytes.fromhex(received[topic])))
            time.sleep(0.1)
        mine = str(transport.participant.guid)
        discovered = [
            {"kind": e.kind, "topic": e.dds_topic, "type": e.dds_type, "reliability": e.reliability, "depth": e.depth,
             "user_data": e.user_data.decode(errors="replace")}
            for e in discovered_endpoints(transport.participant)
            if e.is_ros and e.participant != mine
        ]
    print(json.dumps({"received": received, "rejected": rejected, "discovered": discovered}), flush=True)


if __name__ == "__main__":
    main()
