"""One process of an `aegis run` or `aegis hil`: its groups' nodes under the realtime executor, joined to the others by DDS or a wire link.

``python -m aegis.runs.wall_group SPEC.json`` is what :mod:`aegis.runs.wall_run` starts, once per
``process`` group of the plan. The spec (:class:`GroupSpec`, JSON) names the hw_config and its
overrides (the child builds the same plan as the parent), the group, the DDS domain, the duration,
the seed and where to leave the result; for `aegis hil` also the groups it composes and its end of
the wire link (then a :class:`~aegis.transport.wire_bridge.WireBridge` over it takes the place of
the DdsBridge, and the link's hello exchange that of DDS matching), and whether it restarts into a
running run (``resume``: no handshake, the run's start time, from its next tick). The protocol
with the parent, on stdin and stdout:

1. the child builds its nodes and its :class:`~aegis.transport.DdsBridge`, waits until every
   topic it exchanges with another group of the plan has its peer (DDS discovery is
   asynchronous: a message sent before the match is lost), then prints ``ready``;
2. the parent, once every child is ready, writes ``start <ns>``: a ``time.perf_counter_ns()``
   reading (CLOCK_MONOTONIC, one clock for every process of the machine) a little ahead, so
   every group's tick 0 is the same instant;
3. the child runs until the duration is over, a node ends the run (EndRun), or it is told to
   stop: SIGINT, SIGTERM, or end of file on stdin (the parent is gone: no orphan outlives it);
4. it writes its result (a pickle: the executor's stats, each node's counters, the plant's
   obstacles and draws, and its :class:`~aegis.runs.episode.EpisodeLog`) and exits 0.

Recording here, not over DDS: each group writes what its own nodes publish to its own bag as it
goes (as `aegis sim` does: a CDR encoding and an MCAP append per message, in the loop), with the
publication time on the common clock, and keeps the EpisodeLog of its own topics (the true
state, the reference, the filter's reports: what the summary is computed from); the parent
merges the bags, copying the bytes, and the logs. Nothing is lost to the wire (subscriptions
are best effort, depth 1, as ROS 2's), a bag's times are the publishers' own, and memory does
not grow with the messages (an earlier version kept them in memory: 92 MB for 20 s of the
quadrotor).
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

READY = "ready"
START = "start"
PEER_TIMEOUT_S = 30.0
"""How long a group waits for its DDS peers before it gives up (and the run fails naming the topics)."""


@dataclass(frozen=True)
class GroupSpec:
    """What one child runs: the plan (config + overrides), its group, the domain, for how long, and where its result goes."""

    config: str
    overrides: list[str]
    process: str
    domain_id: int
    duration_s: float | None
    seed: int
    result: str
    bag: str
    """Where this group's own bag goes (the parent merges them)."""
    publish: str = "boundary"
    """"boundary": only the topics another group reads go on DDS; "all": every topic the group's nodes publish (ROS 2 tools see them)."""
    groups: list[str] | None = None
    """The plan's process groups this child runs, composed (None: ``process`` alone). `aegis hil`: every group but the plant."""
    link: str = ""
    """A wire link end (:meth:`aegis.transport.link_setup.LinkEnd.to_arg`): the other groups are over it, not on DDS."""
    resume: bool = False
    """Restarted into a running run: no peer handshake (the other end is running), the start time is in the past."""
    mcu: str = ""
    """`aegis hil --mcu`: the image.json of ``aegis export pil``; the group's policy and filter QP run on that emulated MCU."""

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def read(cls, path: Path) -> GroupSpec:
        return cls(**json.loads(path.read_text()))


def main(argv: list[str] | None = None) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # first of all: a stop during the imports below is a clean stop too
        signal.signal(sig, lambda *_: stop.set())
    spec = GroupSpec.read(Path((argv or sys.argv[1:])[0]))
    try:
        result = run_group(spec, stop)
    except Exception as exc:  # noqa: BLE001 - any failure ends this group: the traceback to the log, then one line saying why
        import traceback

        traceback.print_exc()
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    tmp = Path(spec.result + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, spec.result)
    for sig in (signal.SIGINT, signal.SIGTERM):  # done: a late stop changes nothing, and must not kill the interpreter's exit
        signal.signal(sig, signal.SIG_IGN)  # (Python puts back the default handler while it finalises, not an ignored one)
    return 0


def run_group(spec: GroupSpec, stop: threading.Event) -> dict[str, Any]:
    """Build the group, meet its peers, wait for the start, run; what the parent merges (see the module doc)."""
    import numpy as np

    from aegis.config import load_config
    from aegis.executors.realtime import RealtimeExecutor
    from aegis.launch_plan import make_plan
    from aegis.msgs.ros_types import warm_codecs
    from aegis.runs.bag import BagRecorder
    from aegis.runs.episode import EpisodeLog
    config = load_config(spec.config, spec.overrides)
    plan = make_plan(config)
    groups = set(spec.groups or [spec.process])
    indices = [i for i, launch in enumerate(plan.nodes) if launch.process in groups]
    nodes = [plan.nodes[i].instantiate() for i in indices]
    seeds = np.random.SeedSequence(spec.seed).spawn(len(plan.nodes))  # each node's seed as lockstep draws it: by plan index
    for index, node in zip(indices, nodes):
        node.reset(int(seeds[index].generate_state(1)[0]))
    log = EpisodeLog(plan)
    mcu = None
    if spec.mcu:
        from aegis.runs.hil_mcu import attach

        mcu = attach(nodes, spec.mcu)  # (session, route): QEMU started, the policy and the filter's QP routed through it
    with (
        _bridge(spec, plan) as bridge,
        BagRecorder(spec.bag, distro=plan.ros_distro) as recorder,
    ):

        def record(topic: str, msg: Any, t_ns: int) -> None:
            if bridge.from_here(topic, msg):  # another group's message: its publisher records it
                recorder.write(topic, msg, t_ns)
                log(topic, msg, t_ns)

        def send(topic: str, msg: Any, t_ns: int) -> None:
            bridge.publish(topic, msg)

        executor = RealtimeExecutor(nodes, listeners=[send, record], settings=config.realtime)
        if mcu is not None:
            mcu[1].bind(executor)  # the one-frame tick: the policy's request carries the filter's rows, read from here
        warm_codecs(plan.ros_distro, _ros_types(nodes))  # not on the first tick: that cost up to 90 ms (aegis.msgs.ros_types)
        if not spec.resume:
            _meet_peers(spec, plan, bridge, stop)
        elif spec.link:
            bridge.say_hello()  # frame 0 of this life: the other end follows the restarted sequence from here
        start_ns = _wait_for_start(stop)
        try:
            stats = (
                executor.run(spec.duration_s, stop=stop, inbox=bridge, start_ns=start_ns, resume=spec.resume) if start_ns is not None else None
            )
        finally:
            executor.close()
            if mcu is not None:
                from aegis.runs.hil_mcu import numbers

                mcu = numbers(*mcu)
        rejected = bridge.rejected()
        link = _link_numbers(bridge) if spec.link else None
    first = plan.nodes[0].name
    plant = nodes[0] if nodes and nodes[0].name == first else None
    return {
        "process": spec.process,
        "stats": stats,
        "node_metrics": {node.name: node.metrics() if hasattr(node, "metrics") else {} for node in nodes},
        "obstacles": getattr(plant, "obstacles", None),
        "randomization": dict(getattr(plant, "randomization", {}) or {}),
        "dynamics": dict(getattr(plant, "dynamics_drawn", {}) or {}),
        "log": log,
        "messages": recorder.count,
        "rejected": rejected,
        "link": link,
        "mcu": mcu,
    }


def _bridge(spec: GroupSpec, plan: Any) -> Any:
    """The group's way to the others: a WireBridge over its link end (`aegis hil`), else a DdsBridge (`aegis run`)."""
    if spec.link:
        from aegis.transport.link_setup import LinkEnd
        from aegis.transport.wire_bridge import WireBridge

        end = LinkEnd.from_arg(spec.link)
        return WireBridge(plan, spec.groups or [spec.process], end.open(pace=end.kind != "udp"))
    from aegis.transport import DdsBridge

    return DdsBridge(plan, spec.process, domain_id=spec.domain_id, outputs=spec.publish)  # type: ignore[arg-type]


def _ros_types(nodes: list[Any]) -> set[str]:
    """The ROS types of every port of ``nodes`` and of the executor's LoopDiagnostics: what the group's run serialises
    (its publications, to DDS or the link and the bag) and deserialises (what comes to its inputs)."""
    from aegis.msgs import LoopDiagnostics

    classes = {port.msg_type for node in nodes for port in (*node.inputs, *node.outputs)} | {LoopDiagnostics}
    return {cls.ROS_TYPE for cls in classes if isinstance(getattr(cls, "ROS_TYPE", None), str)}


def _meet_peers(spec: GroupSpec, plan: Any, bridge: Any, stop: threading.Event) -> None:
    """Wait until the other groups are there (DDS matching, or the link's hello exchange); SystemExit naming what is missing."""
    if spec.link:
        waited = 0.0
        while not bridge.wait_for_peers(0.5):
            waited += 0.5
            if stop.is_set():
                return
            if waited >= PEER_TIMEOUT_S:
                raise SystemExit(f"process {spec.process}: no hello from the other end of the link {spec.link} within {PEER_TIMEOUT_S:g} s")
        return
    from aegis.transport import wait_for_match

    peers = _plan_peers(plan, bridge)
    if peers and not wait_for_match(peers, timeout_s=PEER_TIMEOUT_S, sleep=lambda s: stop.wait(s)) and not stop.is_set():
        missing = sorted(e.topic for e in peers if e.matched() == 0)
        raise SystemExit(f"process group {spec.process}: no DDS peer within {PEER_TIMEOUT_S:g} s on {', '.join(missing)}")


def _link_numbers(bridge: Any) -> dict[str, Any]:
    """This end's link counters: frames sent / received / lost / late, and the frames its decoder rejected by reason."""
    link = bridge.link
    return {**link.stats.as_dict(), "rejected": link.decoder.rejected.total, "rejected_by": link.decoder.rejected.as_dict()}


def _plan_peers(plan: Any, bridge: Any) -> list[Any]:
    """The bridge's endpoints whose peer is another group of the plan (not those waiting for a ROS 2 graph that may not be there)."""
    published = {t for launch in plan.nodes for topics in launch.outputs.values() for t in _topics(topics)}
    read = {
        t for launch in plan.nodes if launch.process != bridge.process for topics in launch.inputs.values() for t in _topics(topics)
    }
    return [pub for topic, pub in bridge.publishers.items() if topic in read] + [
        sub for topic, sub in bridge.subscriptions.items() if topic in published
    ]


def _topics(topics: Any) -> tuple[str, ...]:
    from aegis.node import port_topics

    return tuple(port_topics(topics))


def _wait_for_start(stop: threading.Event) -> int | None:
    """Say ready, then read ``start <ns>`` from the parent; None when told to stop first. A watcher then stops the run at
    end of file on stdin (the parent died)."""
    print(READY, flush=True)
    started: dict[str, int] = {}
    got = threading.Event()

    def watch() -> None:
        for line in sys.stdin:
            words = line.split()
            if len(words) == 2 and words[0] == START and not got.is_set():
                started["ns"] = int(words[1])
                got.set()
        stop.set()  # end of file: the parent is gone, or closed our stdin to stop us
        got.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    while not got.wait(0.05):
        if stop.is_set():
            return None
    return None if stop.is_set() and "ns" not in started else started.get("ns")


if __name__ == "__main__":
    sys.exit(main())
