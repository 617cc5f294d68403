"""The link of a two-process run, as a runner sets it up: each end opened from one argument, in another process, with and without the fault proxy."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aegis.transport.faults import FaultTimeline
from aegis.transport.framing import Frame
from aegis.transport.link_setup import LinkEnd, make_link

ROOT = Path(__file__).resolve().parent.parent
ECHO = textwrap.dedent("""
    import sys
    from aegis.transport.link_setup import LinkEnd
    link = LinkEnd.from_arg(sys.argv[1]).open()
    answered = 0
    link.send(0xFF00, b"", 0)  # hello: a UDP peer learns where this end is
    while answered < 10:
        for f in link.poll(0.5):
            if f.msg_id == 5:
                link.send(6, f.payload, f.stamp_ns)
                answered += 1
            elif f.msg_id == 0xFF00:
                link.send(0xFF00, b"", 0)
    """)


@pytest.mark.parametrize("kind", ["serial", "udp"])
@pytest.mark.parametrize("faults", [None, {"faults": [{"kind": "duplicate", "probability": 1.0}]}])
def test_a_child_opens_its_end_from_one_argument(kind: str, faults: dict | None) -> None:
    timeline = None if faults is None else FaultTimeline.model_validate(faults)
    with make_link(kind, timeline) as setup:  # type: ignore[arg-type]
        setup.start()
        plant = setup.plant.open()  # in this process (its descriptor, its device or its port)
        child = subprocess.Popen([sys.executable, "-c", ECHO, setup.stack.to_arg()], cwd=ROOT, pass_fds=setup.pass_fds)
        try:
            deadline = time.monotonic() + 20
            hello = False
            while not hello and time.monotonic() < deadline:
                plant.send(0xFF00, b"", 0)
                hello = any(f.msg_id == 0xFF00 for f in plant.poll(0.2))
            assert hello
            got: list[Frame] = []
            for i in range(10):
                plant.send(5, bytes([i]) * 8, stamp_ns=i)
                end = time.monotonic() + 5
                while len([f for f in got if f.msg_id == 6]) <= i and time.monotonic() < end:
                    got += plant.poll(0.1)
            assert [f.stamp_ns for f in got if f.msg_id == 6] == list(range(10))
            assert child.wait(10) == 0
        finally:
            child.kill()
            plant.close()
        if timeline is not None:
            assert setup.proxy is not None and setup.proxy.counts["plant_to_stack"].duplicate >= 10
            assert plant.stats.late >= 10  # the stack's answers came twice; the second copy of each was dropped


def test_link_end_arguments_round_trip_and_bad_ones_are_named() -> None:
    for end in (LinkEnd("serial", path="/dev/pts/3"), LinkEnd("serial-fd", fd=7), LinkEnd("udp", port=5000, peer_port=5001)):
        assert LinkEnd.from_arg(end.to_arg()) == end
    with pytest.raises(ValueError, match="'tcp:1'"):
        LinkEnd.from_arg("tcp:1")
