"""Serial (pty) and UDP links carrying wire frames, and the fault proxy between them: every fault class on real ptys and sockets.

The proxy's fault clock is a manual one (deterministic windows and holds); the bytes go through
the kernel for real, so a receiver waits for them (bounded) rather than assuming they are there.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aegis.config_files import ConfigError
from aegis.transport.faults import FaultProxy, FaultTimeline, load_timeline
from aegis.transport.framing import Frame, encode_frame, wire_time_s
from aegis.transport.links import Link, SerialLink, UdpLink, open_pty

N = 200
ROOT = Path(__file__).resolve().parent.parent


class ManualClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def collect(link: Link, count: int, wait_s: float = 3.0) -> list[Frame]:
    """Frames from ``link`` until ``count`` arrived or nothing came for ``wait_s`` (a bound, not a timing check)."""
    got: list[Frame] = []
    deadline = time.monotonic() + wait_s
    while len(got) < count and time.monotonic() < deadline:
        got += link.poll(0.02)
    if len(got) >= count:  # let stragglers (duplicates) in too
        got += link.poll(0.05)
    return got


def pump(proxy: FaultProxy, frames_in: int, wait_s: float = 3.0) -> None:
    """Step the proxy until it has read ``frames_in`` frames in all (the kernel may hand them over a little later)."""
    deadline = time.monotonic() + wait_s
    while sum(c.frames_in for c in proxy.counts.values()) < frames_in and time.monotonic() < deadline:
        proxy.step()
        time.sleep(0.001)
    proxy.step()


def _serial_chain() -> tuple[SerialLink, SerialLink, SerialLink, SerialLink]:
    """plant <-pty-> proxy's plant side ... proxy's stack side <-pty-> stack."""
    fd1, path1 = open_pty()
    fd2, path2 = open_pty()
    return SerialLink.open(path1), SerialLink(fd=fd1), SerialLink(fd=fd2), SerialLink.open(path2)


def _udp_chain() -> tuple[UdpLink, UdpLink, UdpLink, UdpLink]:
    proxy_plant, proxy_stack = UdpLink(), UdpLink()
    plant = UdpLink(remote=("127.0.0.1", proxy_plant.port))
    stack = UdpLink(remote=("127.0.0.1", proxy_stack.port))
    proxy_plant.remote, proxy_stack.remote = plant.local, stack.local
    return plant, proxy_plant, proxy_stack, stack


@pytest.fixture(params=["serial", "udp"])
def chain(request: pytest.FixtureRequest) -> Iterator[tuple[Link, Link, Link, Link]]:
    links = _serial_chain() if request.param == "serial" else _udp_chain()
    yield links
    for link in links:
        link.close()


def _proxy(chain: tuple[Link, Link, Link, Link], yaml_faults: list[dict], seed: int = 3) -> tuple[FaultProxy, ManualClock]:
    clock = ManualClock()
    proxy = FaultProxy(chain[1], chain[2], FaultTimeline.model_validate({"seed": seed, "faults": yaml_faults}), clock=clock)
    proxy.start()
    return proxy, clock


def _send(link: Link, count: int, msg_id: int = 5, start: int = 0) -> None:
    for i in range(start, start + count):
        link.send(msg_id, i.to_bytes(4, "little") * 13, stamp_ns=i)


def test_frames_cross_each_link_both_ways(chain: tuple[Link, Link, Link, Link]) -> None:
    plant, proxy_plant, proxy_stack, stack = chain
    proxy, _ = _proxy(chain, [])
    _send(plant, N)
    _send(stack, 10, msg_id=2)
    pump(proxy, N + 10)
    got = collect(stack, N)
    assert [f.stamp_ns for f in got] == list(range(N)) and all(f.msg_id == 5 for f in got)
    assert [f.stamp_ns for f in collect(plant, 10)] == list(range(10))
    assert stack.stats.lost == 0 and stack.stats.late == 0 and stack.decoder.rejected.total == 0


def test_loss_drops_frames_and_the_receiver_counts_the_gaps(chain: tuple[Link, Link, Link, Link]) -> None:
    plant, _, _, stack = chain
    proxy, clock = _proxy(chain, [{"kind": "loss", "probability": 0.3, "duration_s": 1.0}])
    _send(plant, N)
    pump(proxy, N)
    clock.t = 2.0  # the window is over: a last frame passes and closes the last gap
    _send(plant, 1, start=N)
    pump(proxy, N + 1)
    got = collect(stack, N + 1 - proxy.counts["plant_to_stack"].loss)
    dropped = proxy.counts["plant_to_stack"].loss
    assert 30 < dropped < 90  # about 30 % of 200, seeded
    assert len(got) == N + 1 - dropped
    assert stack.stats.lost + got[0].seq == dropped  # frames lost before the first to arrive are not gaps it can see


def test_loss_is_seeded(chain: tuple[Link, Link, Link, Link]) -> None:
    plant, _, _, stack = chain
    runs = []
    for _ in range(2):
        proxy, _ = _proxy(chain, [{"kind": "loss", "probability": 0.5}], seed=11)
        _send(plant, 50)
        pump(proxy, 50)
        runs.append([f.stamp_ns for f in collect(stack, 50 - proxy.counts["plant_to_stack"].loss)])
        stack.stats.late = 0
    assert runs[0] == runs[1] and 0 < len(runs[0]) < 50


def test_burst_loss_drops_runs_of_frames(chain: tuple[Link, Link, Link, Link]) -> None:
    plant, _, _, stack = chain
    proxy, clock = _proxy(chain, [{"kind": "burst_loss", "p_enter": 0.05, "p_exit": 0.2, "duration_s": 1.0}])
    _send(plant, N)
    pump(proxy, N)
    clock.t = 2.0
    _send(plant, 1, start=N)
    pump(proxy, N + 1)
    dropped = proxy.counts["plant_to_stack"].burst_loss
    got = collect(stack, N + 1 - dropped)
    stamps = [f.stamp_ns for f in got]
    gaps = [b - a - 1 for a, b in zip(stamps, stamps[1:]) if b - a > 1]
    assert dropped > 0 and stack.stats.lost + got[0].seq == dropped == sum(gaps) + got[0].seq
    assert max(gaps) >= 3  # bursts, not single losses (mean burst 5 frames)


def test_corruption_is_caught_by_the_receiver_never_delivered(chain: tuple[Link, Link, Link, Link]) -> None:
    plant, _, _, stack = chain
    proxy, _ = _proxy(chain, [{"kind": "corrupt", "probability": 1.0, "bits": 2}])
    _send(plant, N)
    pump(proxy, N)
    got = collect(stack, 1, wait_s=0.5)
    assert got == []
    assert proxy.counts["plant_to_stack"].corrupt == N
    assert stack.decoder.rejected.total >= N  # a flip to a zero byte splits a frame in two rejected pieces
    assert stack.decoder.accepted == 0


def test_duplicates_reach_the_wire_and_the_receiver_drops_them_as_late(chain: tuple[Link, Link, Link, Link]) -> None:
    plant, _, _, stack = chain
    proxy, _ = _proxy(chain, [{"kind": "duplicate", "probability": 1.0, "copies": 2}])
    _send(plant, 50)
    pump(proxy, 50)
    got = collect(stack, 50)
    assert [f.stamp_ns for f in got] == list(range(50))
    assert proxy.counts["plant_to_stack"].forwarded == 150
    assert stack.stats.late == 100


def test_reordering_delivers_out_of_order_and_late_frames_are_dropped(chain: tuple[Link, Link, Link, Link]) -> None:
    plant, _, _, stack = chain
    stack.drop_late = False
    proxy, clock = _proxy(chain, [{"kind": "reorder", "probability": 0.2, "hold_ms": 10}])
    for i in range(N):  # one frame a millisecond: a held frame is overtaken by about ten
        clock.t = i * 1e-3
        _send(plant, 1, start=i)
        pump(proxy, i + 1)
    clock.t = 1.0
    proxy.step()
    got = [f.stamp_ns for f in collect(stack, N)]
    assert sorted(got) == list(range(N)) and got != list(range(N))
    assert proxy.counts["plant_to_stack"].reordered > 10


def test_delay_and_jitter_hold_frames_for_their_time(chain: tuple[Link, Link, Link, Link]) -> None:
    plant, _, _, stack = chain
    stack.drop_late = False  # jitter reorders frames
    proxy, clock = _proxy(chain, [{"kind": "delay", "delay_ms": 20}, {"kind": "jitter", "jitter_ms": 10}])
    _send(plant, 20)
    pump(proxy, 20)
    clock.t = 0.0199
    assert proxy.step() is not None
    assert collect(stack, 1, wait_s=0.2) == []  # nothing is due before 20 ms
    clock.t = 0.0301
    assert proxy.step() is None  # everything was due by 30 ms
    assert sorted(f.stamp_ns for f in collect(stack, 20)) == list(range(20))
    assert proxy.counts["plant_to_stack"].delayed == 20


def test_partition_drops_everything_both_ways_for_its_window(chain: tuple[Link, Link, Link, Link]) -> None:
    plant, _, _, stack = chain
    proxy, clock = _proxy(chain, [{"kind": "partition", "at_s": 1.0, "duration_s": 0.5}])
    clock.t = 1.2
    _send(plant, 10)
    _send(stack, 10)
    pump(proxy, 20)
    assert collect(stack, 1, wait_s=0.2) == [] and collect(plant, 1, wait_s=0.2) == []
    clock.t = 1.5  # healed
    _send(plant, 10, start=10)
    pump(proxy, 30)
    got = collect(stack, 10)
    assert [f.stamp_ns for f in got] == list(range(10, 20)) and stack.stats.lost == 0  # the first frames seen are after the cut
    assert proxy.counts["plant_to_stack"].partition == 10 and proxy.counts["stack_to_plant"].partition == 10


def test_a_direction_limits_a_fault_to_one_way(chain: tuple[Link, Link, Link, Link]) -> None:
    plant, _, _, stack = chain
    proxy, _ = _proxy(chain, [{"kind": "loss", "probability": 1.0, "direction": "stack_to_plant"}])
    _send(plant, 10)
    _send(stack, 10)
    pump(proxy, 20)
    assert len(collect(stack, 10)) == 10
    assert collect(plant, 1, wait_s=0.2) == []


def test_the_proxy_runs_in_a_thread_on_the_wall_clock(chain: tuple[Link, Link, Link, Link]) -> None:
    plant, proxy_plant, proxy_stack, stack = chain
    proxy = FaultProxy(proxy_plant, proxy_stack, FaultTimeline.model_validate({"faults": [{"kind": "delay", "delay_ms": 5}]}))
    thread, stop = proxy.serve()
    try:
        sent = time.monotonic_ns()
        plant.send(1, b"x", stamp_ns=sent)
        got = collect(stack, 1)
        assert len(got) == 1 and time.monotonic_ns() - got[0].stamp_ns >= 5_000_000  # never before its delay
    finally:
        stop.set()
        thread.join(2.0)
    assert not thread.is_alive()


def test_a_pty_link_between_two_processes(tmp_path: Path) -> None:
    """A child process opens the other end of the pty by its path and echoes each frame back with msg_id + 1."""
    fd, path = open_pty()
    here = SerialLink(fd=fd)
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from aegis.transport.links import SerialLink
        link = SerialLink.open({path!r})
        print("ready", flush=True)
        done = 0
        while done < 20:
            for f in link.poll(0.5):
                link.send(f.msg_id + 1, f.payload, f.stamp_ns)
                done += 1
        """)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"  # frames sent before it opened would be lost
        got: list[Frame] = []
        for i in range(20):
            here.send(7, bytes([i]) * 52, stamp_ns=i)
            got += collect(here, 1, wait_s=5.0)
        assert [(f.msg_id, f.stamp_ns, f.payload[:1]) for f in got] == [(8, i, bytes([i])) for i in range(20)]
        assert child.wait(10) == 0
    finally:
        child.kill()
        here.close()


def test_a_paced_serial_link_shows_no_frame_before_its_bytes_could_have_crossed() -> None:
    """Back-to-back frames on a paced pty: each one is read no earlier than its bytes, and all before it, take at the baud rate."""
    fd, path = open_pty()
    sender, receiver = SerialLink(fd=fd, pace=True), SerialLink.open(path)
    payloads = [bytes([i + 1]) * (52 + i % 5) for i in range(40)]
    try:
        wire = [wire_time_s(len(encode_frame(3, i, i, p)), sender.baud) for i, p in enumerate(payloads)]
        start = time.perf_counter()
        for i, payload in enumerate(payloads):
            sender.send(3, payload, stamp_ns=i)
        seen_at: dict[int, float] = {}
        deadline = time.monotonic() + 5.0
        while len(seen_at) < len(payloads) and time.monotonic() < deadline:
            frames = receiver.poll(0.0005)
            read_by = time.perf_counter()  # the frames were on the line by now, and not when the poll before this one read
            seen_at.update((f.stamp_ns, read_by) for f in frames)
        assert sorted(seen_at) == list(range(len(payloads)))
        for i in range(len(payloads)):
            assert seen_at[i] - start >= sum(wire[: i + 1]), f"frame {i} seen before its bytes could have crossed"
    finally:
        sender.close()
        receiver.close()


def test_timeline_files_are_validated_with_keys_named(tmp_path: Path) -> None:
    good = tmp_path / "faults.yaml"
    good.write_text("seed: 4\nfaults:\n  - {kind: loss, probability: 0.1, at_s: 2, duration_s: 1}\n"
                    "  - {kind: kill, process: stack, at_s: 5, restart_after_s: 1}\n")
    timeline = load_timeline(good)
    assert timeline.seed == 4 and [f.kind for f in timeline.link_faults()] == ["loss"] and timeline.kills()[0].process == "stack"
    bad = tmp_path / "bad.yaml"
    bad.write_text("faults:\n  - {kind: loss, probabilty: 0.1}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: .*faults.0.loss.probabilty: unknown key"):
        load_timeline(bad)
    bad.write_text("faults:\n  - {kind: meteor}\n")
    with pytest.raises(ConfigError, match="bad.yaml: faults.0"):
        load_timeline(bad)
    bad.write_text("seed: 1\nfault: []\n")
    with pytest.raises(ConfigError, match="fault: unknown key"):
        load_timeline(bad)


def test_a_sender_restarted_after_a_few_frames_is_followed_from_its_frame_0() -> None:
    receiver = UdpLink()
    first = UdpLink(remote=("127.0.0.1", receiver.port))
    try:
        _send(first, 50)
        assert len(collect(receiver, 50)) == 50
        first.close()
        restarted = UdpLink(remote=("127.0.0.1", receiver.port))  # counts from 0 again, 50 behind: not late, a restart
        _send(restarted, 5)
        assert [f.seq for f in collect(receiver, 5)] == [0, 1, 2, 3, 4] and receiver.stats.resyncs == 1 and receiver.stats.late == 0
        restarted.close()
    finally:
        receiver.close()


def test_a_restarted_sender_is_followed_not_dropped_as_late() -> None:
    receiver = UdpLink()
    first = UdpLink(remote=("127.0.0.1", receiver.port))
    try:
        for i in range(2000):
            first.send(1, b"", stamp_ns=i)
            if i % 200 == 199:
                receiver.poll(0.0)
        assert len(collect(receiver, 1, wait_s=0.5)) + receiver.stats.received >= 1
        first.close()
        restarted = UdpLink(remote=("127.0.0.1", receiver.port))  # counts from 0 again
        _send(restarted, 5)
        got = collect(receiver, 5)
        assert [f.seq for f in got] == [0, 1, 2, 3, 4] and receiver.stats.resyncs == 1
        restarted.close()
    finally:
        receiver.close()
