"""Where the paced serial round trip's time goes: `aegis bench link-stages`, the exchange of aegis.bench.link cut into stages.

The same exchange as the ``serial, paced, fixed`` row (an Odometry frame out, a MotorSpeeds frame back,
two processes, a pty paced at 921600 baud), with both ends stamping its steps on the one monotonic
clock the two processes share (``time.perf_counter``, CLOCK_MONOTONIC on Linux). Per exchange, in order:

==========================  ==========================================================================
plant encode                the plant encodes and frames the odometry, until the link queues it
sensor frame on the wire    the bytes' time at the baud rate (the pacing: due = queued + this)
transmitter late            the plant's transmitter thread wrote the frame this long after it was due
pty hand-over               from that write until the controller's wait on the pty returned
controller read + check     reading the bytes, splitting, COBS, CRC, header checks
controller decode           the payload into a RobotState
controller encode           the MotorSpeeds command built, encoded and framed, until queued
command frame on the wire   the command's bytes at the baud rate
transmitter late            the controller's transmitter thread, as above
pty hand-over               until the plant's wait on the pty returned
plant read + decode         the plant reads, checks and decodes the command: the round trip ends
==========================  ==========================================================================

The stages add up to the round trip. "transmitter late" and "pty hand-over" are never negative: a frame is
written no earlier than its last byte would have left a UART, and read after that.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from aegis.bench.link import COMMAND, HELLO_ID, ODOM, STOP_ID, WARMUP, _framed, _table, _wire_bytes, controller_process, sleep_until

STAGES = ("plant encode", "sensor frame on the wire", "transmitter late (sensor)", "pty hand-over (sensor)",
          "controller read + check", "controller decode", "controller encode", "command frame on the wire",
          "transmitter late (command)", "pty hand-over (command)", "plant read + decode")


def _traced_link(fd: int, pace: bool = True) -> Any:
    """A paced SerialLink that keeps each queued frame's due time, when its transmitter wrote it and when a wait returned."""
    from aegis.transport.links import SerialLink

    class TracedSerialLink(SerialLink):
        def __post_init__(self) -> None:
            super().__post_init__()
            self.dues: list[float] = []
            self.written_at: list[float] = []
            self.readable_at = 0.0

        def write_raw(self, data: bytes) -> bool:
            done = super().write_raw(data)
            self.dues.append(self._line_free_at)
            return done

        def _write_now(self, data: bytes) -> bool:
            self.written_at.append(time.perf_counter())
            return super()._write_now(data)

        def read_raw(self, timeout_s: float = 0.0) -> list[bytes]:
            if timeout_s > 0 and not select.select([self.fd], [], [], timeout_s)[0]:
                return []
            self.readable_at = time.perf_counter()
            return super().read_raw(0.0)

    return TracedSerialLink(fd=fd, pace=pace)


def controller_main(argv: list[str] | None = None) -> None:
    """The controller process: answer each Odometry frame as aegis.bench.link's does, stamping its steps; write them at the stop frame."""
    from aegis.msgs import MotorSpeeds
    from aegis.transport.links import configure_serial

    parser = argparse.ArgumentParser()
    parser.add_argument("--where", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)
    table = _table("fixed")
    command = MotorSpeeds(velocities=[2000.0, 2100.0, 2200.0, 2300.0])
    fd = os.open(args.where, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    configure_serial(fd)
    steps: list[tuple[float, ...]] = []
    with _traced_link(fd) as link:
        link.send(HELLO_ID, b"", 0)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            frames = link.poll(0.2)
            read_at = time.perf_counter()
            for frame in frames:
                if frame.msg_id == STOP_ID:
                    link.close()
                    args.out.write_text(json.dumps({"steps": steps, "dues": link.dues, "written_at": link.written_at}))
                    return
                _, odom = table.decode(frame)
                decoded_at = time.perf_counter()
                command.stamp = odom.stamp
                command.velocities[0] = odom.position[0]
                link.send(*_framed(table, COMMAND, command))
                steps.append((odom.position[0], link.readable_at, read_at, decoded_at))


def stage_times(exchanges: int, rate_hz: float = 500.0, baud: int = 921600) -> dict[str, np.ndarray]:
    """Each stage's time (µs) per answered exchange, and ``round trip``; the stages sum to it (a frame is queued at due - its wire time:
    the line is free, exchanges being further apart than both frames' bytes take)."""
    from aegis.msgs import MotorSpeeds, RobotState
    from aegis.transport.framing import wire_time_s
    from aegis.transport.links import open_pty

    table = _table("fixed")
    fd, path = open_pty(baud)
    link = _traced_link(fd)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "controller.json"
        args = ["--where", path, "--out", str(out), "--timeout", str(60.0 + exchanges * 0.05)]
        odom = RobotState(position=[1.0, 2.0, 1.0], orientation=[0.0, 0.0, 0.0, 1.0], linear_velocity=[0.5, 0.0, 0.0])
        plant: list[tuple[int, float, float, float, int]] = []
        with controller_process(link, "aegis.bench.link_stages", args, "aegis bench link-stages: the controller process"):
            next_start = time.perf_counter()
            for index in range(exchanges + WARMUP):
                sleep_until(next_start)
                next_start += 1.0 / rate_hz
                start = time.perf_counter()
                odom.stamp = index * 1e-3
                odom.position[0] = float(index)
                link.send(*_framed(table, ODOM, odom))
                sent = len(link.dues) - 1
                answered, wait_until = False, time.perf_counter() + 0.5
                while not answered and time.perf_counter() < wait_until:
                    for frame in link.poll(0.1):
                        topic, command = table.decode(frame)
                        answered = answered or (topic == COMMAND and command.velocities[0] == float(index))
                if answered and index >= WARMUP:
                    plant.append((index, start, link.readable_at, time.perf_counter(), sent))
                next_start = max(next_start, time.perf_counter())
        controller = json.loads(out.read_text())
    sensor_wire, command_wire = (wire_time_s(_wire_bytes(table, topic, msg), baud) for topic, msg in ((ODOM, odom), (COMMAND, MotorSpeeds())))
    by_index = {int(step[0]): (i, step) for i, step in enumerate(controller["steps"])}
    rows = []
    for index, start, readable_at, end, sent in plant:
        i, (_, c_readable, c_read, c_decoded) = by_index[index]
        due1, wrote1 = link.dues[sent], link.written_at[sent]
        due2, wrote2 = controller["dues"][i + 1], controller["written_at"][i + 1]  # its first frame is the hello
        queued1, queued2 = due1 - sensor_wire, due2 - command_wire
        rows.append((queued1 - start, sensor_wire, wrote1 - due1, c_readable - wrote1, c_read - c_readable, c_decoded - c_read,
                     queued2 - c_decoded, command_wire, wrote2 - due2, readable_at - wrote2, end - readable_at, end - start))
    values = np.asarray(rows, dtype=float).reshape(-1, len(STAGES) + 1) * 1e6
    return {name: values[:, k] for k, name in enumerate((*STAGES, "round trip"))}


def summarise(times: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per stage: median, p90, p99 and max in µs (the stages' tails do not add up to the round trip's: they fall on different exchanges)."""
    return [{"stage": name, "median_us": float(np.median(v)), "p90_us": float(np.percentile(v, 90)), "p99_us": float(np.percentile(v, 99)),
             "max_us": float(v.max())} for name, v in times.items()]


def print_stages(rows: list[dict[str, Any]], console: Any) -> None:
    from rich.table import Table

    table = Table(title="serial, paced, fixed: the round trip by stage (µs)")
    for column in ("stage", "median", "p90", "p99", "max"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in rows:
        table.add_row(row["stage"], *(f"{row[key]:.0f}" for key in ("median_us", "p90_us", "p99_us", "max_us")))
    console.print(table)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from aegis.bench.link import _positive_float, _positive_int

    parser.add_argument("--exchanges", type=_positive_int, default=1000, metavar="N", help="timed round trips (default 1000)")
    parser.add_argument("--rate", type=_positive_float, default=500.0, metavar="HZ", help="exchanges a second at most (default 500)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the stages and machine as JSON")


def run_from_args(args: argparse.Namespace, console: Any = None) -> list[dict[str, Any]]:
    from rich.console import Console

    from aegis.bench import machine, write_document

    console = console or Console()
    load = [_load_average()]
    rows = summarise(stage_times(args.exchanges, args.rate))
    load.append(_load_average())
    print_stages(rows, console)
    if None not in load:
        console.print(f"load average (1 min, /proc/loadavg) {load[0]:.2f} before -> {load[1]:.2f} after: the tails are the machine's")
    if args.json is not None:
        write_document({"benchmark": "link-stages", "stages": rows, "exchanges": args.exchanges, "rate_hz": args.rate,
                        "load_average": load, "machine": machine()}, args.json)
    return rows


def _load_average() -> float | None:
    """The 1-minute load average (Linux), None elsewhere: on a shared machine it says what the tails measured."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
