"""Round trip of a sensor frame and its command frame between two processes over the wire-frame links (serial pty, UDP).

What one exchange is: the plant process builds an Odometry (:class:`aegis.msgs.RobotState`), encodes
it with the link's message table, frames and writes it; the controller process (a second process)
polls, checks and decodes it, builds a MotorSpeeds command, encodes, frames and writes it back; the
plant polls, checks and decodes the command. The round trip is timed by the plant alone
(``perf_counter_ns``), ``--exchanges`` times at up to ``--rate`` exchanges a second.

Rows, per link and payload encoding:

``serial`` / ``serial, paced``
    a raw pty pair at 921600 baud. A pty moves bytes at once, whatever its baud rate, so the
    unpaced row is the software's cost alone; in the paced row each sender holds a frame for the
    time its bytes take on a 921600-baud UART (8N1) before writing it, so that row is what a real
    line at that rate would give. ``wire_us`` is that time for both frames, computed.
``udp``
    datagrams on loopback.

``fixed`` is the fixed float32 layout (Odometry in 52 bytes); ``cdr`` the ROS 2 CDR (724 bytes),
for comparison: it alone needs 7.9 ms a frame at 921600 baud. Target (issue 14, printed, never
asserted): serial at 921600 baud, paced, fixed layout: round trip p99 <= 2 ms.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from aegis.bench import machine, write_document

TARGET_P99_US = 2000.0
WARMUP = 50
HELLO_ID = 0xFF00
"""The controller's first frame: it is up (reserved link-control id)."""
STOP_ID = 0xFF01
ODOM, COMMAND = "/odom", "/cmd_motors"


def _table(encoding: str) -> Any:
    from aegis.msgs import MotorSpeeds, RobotState
    from aegis.transport.wire_messages import MessageTable

    topics = [(ODOM, RobotState), (COMMAND, MotorSpeeds)]
    return MessageTable.for_topics(topics, cdr=[ODOM, COMMAND] if encoding == "cdr" else [])


def _open(kind: str, where: str, pace: bool) -> Any:
    from aegis.transport.links import SerialLink, UdpLink

    if kind == "serial":
        return SerialLink.open(where, pace=pace)
    return UdpLink(remote=("127.0.0.1", int(where)))


def controller_main(argv: list[str] | None = None) -> None:
    """The controller process: answer each Odometry frame with a MotorSpeeds frame until the stop frame or the timeout."""
    from aegis.msgs import MotorSpeeds

    parser = argparse.ArgumentParser()
    parser.add_argument("--link", choices=("serial", "udp"), required=True)
    parser.add_argument("--where", required=True, help="the pty device path, or the plant's UDP port")
    parser.add_argument("--encoding", choices=("fixed", "cdr"), required=True)
    parser.add_argument("--pace", action="store_true")
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)
    table = _table(args.encoding)
    command = MotorSpeeds(velocities=[2000.0, 2100.0, 2200.0, 2300.0])
    with _open(args.link, args.where, args.pace) as link:
        link.send(HELLO_ID, b"", 0)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            for frame in link.poll(0.2):
                if frame.msg_id == STOP_ID:
                    return
                topic, odom = table.decode(frame)
                command.stamp = odom.stamp
                command.velocities[0] = odom.position[0]
                link.send(*_framed(table, COMMAND, command))


def _framed(table: Any, topic: str, msg: Any) -> tuple[int, bytes, int, int]:
    msg_id, stamp_ns, payload, flags = table.encode(topic, msg)
    return msg_id, payload, stamp_ns, flags


def _wire_bytes(table: Any, topic: str, msg: Any) -> int:
    """Bytes of ``msg``'s frame on the wire (COBS and delimiter included)."""
    from aegis.transport.framing import encode_frame

    msg_id, payload, stamp_ns, flags = _framed(table, topic, msg)
    return len(encode_frame(msg_id, 0, stamp_ns, payload, flags))


@contextmanager
def controller_process(link: Any, module: str, args: list[str], what: str) -> Iterator[subprocess.Popen[bytes]]:
    """The peer process running ``module``'s ``controller_main(args)``, up once its hello frame came over ``link``.

    When the block ends it is told to stop (and killed if it has not); the link is closed either way.
    ``what`` names it in the error when it does not come up."""
    import aegis

    root = str(Path(aegis.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    code = f"import sys; from {module} import controller_main; controller_main(sys.argv[1:])"
    peer = subprocess.Popen([sys.executable, "-c", code, *args], env=env)
    try:
        deadline = time.monotonic() + 30.0
        while not any(f.msg_id == HELLO_ID for f in link.poll(0.2)):
            if time.monotonic() > deadline or peer.poll() is not None:
                raise SystemExit(f"{what} did not come up")
        yield peer
        link.send(STOP_ID, b"", 0)
        peer.wait(10)
    finally:
        if peer.poll() is None:
            peer.kill()
        link.close()


def sleep_until(when: float) -> None:
    """Sleep until ``time.perf_counter()`` reaches ``when``, in steps of at most 0.5 ms."""
    while time.perf_counter() < when:
        time.sleep(min(0.0005, max(0.0, when - time.perf_counter())))


def exchange_row(kind: str, encoding: str, pace: bool, exchanges: int, rate_hz: float, baud: int = 921600) -> dict[str, Any]:
    """Time ``exchanges`` round trips over one link kind with one payload encoding; the row."""
    from aegis.msgs import MotorSpeeds, RobotState
    from aegis.transport.framing import wire_time_s
    from aegis.transport.links import SerialLink, UdpLink, open_pty

    table = _table(encoding)
    if kind == "serial":
        fd, path = open_pty(baud)
        link: Any = SerialLink(fd=fd, baud=baud, pace=pace)
        where = path
    else:
        link = UdpLink()
        where = str(link.port)
    args = ["--link", kind, "--where", where, "--encoding", encoding, "--timeout", str(60.0 + exchanges * 0.05), *(["--pace"] if pace else [])]
    odom = RobotState(position=[1.0, 2.0, 1.0], orientation=[0.0, 0.0, 0.0, 1.0], linear_velocity=[0.5, 0.0, 0.0])
    round_trips: list[int] = []
    missing = 0
    with controller_process(link, "aegis.bench.link", args, f"aegis bench link: the {kind} controller process"):
        period = 1.0 / rate_hz
        next_start = time.perf_counter()
        for index in range(exchanges + WARMUP):
            sleep_until(next_start)
            next_start += period
            start = time.perf_counter_ns()
            odom.stamp = index * 1e-3
            odom.position[0] = float(index)
            link.send(*_framed(table, ODOM, odom))
            answered = False
            wait_until = time.perf_counter() + 0.5
            while not answered and time.perf_counter() < wait_until:
                for frame in link.poll(0.1):
                    topic, command = table.decode(frame)
                    if topic == COMMAND and command.velocities[0] == float(index):
                        answered = True
            end = time.perf_counter_ns()
            if index < WARMUP:
                continue
            if answered:
                round_trips.append(end - start)
            else:
                missing += 1
            next_start = max(next_start, time.perf_counter())
    sensor_bytes = _wire_bytes(table, ODOM, odom)
    command_bytes = _wire_bytes(table, COMMAND, MotorSpeeds())
    values = np.asarray(round_trips, dtype=float) / 1e3
    name = f"{kind}{', paced' if pace else ''}, {encoding}"
    return {
        "name": name,
        "link": kind,
        "encoding": encoding,
        "paced": pace,
        "median_us": float(np.median(values)) if values.size else None,
        "p99_us": float(np.percentile(values, 99)) if values.size else None,
        "max_us": float(values.max()) if values.size else None,
        "exchanges": int(values.size),
        "unanswered": missing,
        "sensor_frame_bytes": sensor_bytes,
        "command_frame_bytes": command_bytes,
        "wire_us": (wire_time_s(sensor_bytes + command_bytes, baud) * 1e6) if kind == "serial" else None,
    }


def run_link_benchmark(links: list[str], exchanges: int = 3000, rate_hz: float = 500.0) -> list[dict[str, Any]]:
    """The rows: per link, fixed layout (serial unpaced and paced), and CDR for comparison."""
    rows = []
    for kind in links:
        paces = (False, True) if kind == "serial" else (False,)
        for pace in paces:
            rows.append(exchange_row(kind, "fixed", pace, exchanges, rate_hz))
        rows.append(exchange_row(kind, "cdr", kind == "serial", max(50, exchanges // 10), min(rate_hz, 50.0)))
    return rows


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    row = next((r for r in rows if r["link"] == "serial" and r["paced"] and r["encoding"] == "fixed"), None)
    if row is None:
        return []
    value = row["p99_us"]
    return [{"target": "serial 921600 baud (paced), fixed layout: round trip p99", "goal": f"<= {TARGET_P99_US:g} µs",
             "value": value, "met": value is not None and value <= TARGET_P99_US}]


def print_report(rows: list[dict[str, Any]], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title="Odometry frame out, MotorSpeeds frame back, two processes: round trip")
    for column in ("link, payload", "median µs", "p99 µs", "max µs", "answered", "bytes", "wire µs"):
        table.add_column(column, justify="left" if column == "link, payload" else "right")
    for row in rows:
        shown = [("—" if row[key] is None else f"{row[key]:.0f}") for key in ("median_us", "p99_us", "max_us")]
        wire = "—" if row["wire_us"] is None else f"{row['wire_us']:.0f}"
        answered = f"{row['exchanges']}/{row['exchanges'] + row['unanswered']}"
        table.add_row(row["name"], *shown, answered, f"{row['sensor_frame_bytes']}+{row['command_frame_bytes']}", wire)
    console.print(table)
    console.print("bytes: sensor + command frame on the wire; wire µs: the time those bytes take at 921600 baud (8N1)")
    for target in targets(rows):
        value = "—" if target["value"] is None else f"{target['value']:.0f} µs"
        verdict = "[green]met[/green]" if target["met"] else "[red]not met[/red]"
        console.print(f"target {target['target']} {target['goal']}: {value} — {verdict}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--link", choices=("serial", "udp", "both"), default="both", help="which link (default both)")
    parser.add_argument("--exchanges", type=_positive_int, default=3000, metavar="N", help="timed round trips per row (default 3000)")
    parser.add_argument("--rate", type=_positive_float, default=500.0, metavar="HZ", help="exchanges a second at most (default 500)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the rows, target and machine as JSON")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def run_from_args(args: argparse.Namespace, console: Any = None) -> list[dict[str, Any]]:
    links = ["serial", "udp"] if args.link == "both" else [args.link]
    rows = run_link_benchmark(links, args.exchanges, args.rate)
    print_report(rows, console)
    if args.json is not None:
        from importlib.metadata import version

        write_document({"benchmark": "link", "rows": rows, "targets": targets(rows), "exchanges": args.exchanges,
                        "rate_hz": args.rate, "machine": machine(cobs=version("cobs"))}, args.json)
    return rows
