"""`aegis bench NAME`: each benchmark module owns its arguments (``add_arguments``) and its run (``run_from_args``); this table lists them."""

from __future__ import annotations

import argparse
import functools
import importlib

BENCHMARKS = (
    (
        "sim",
        "aegis.bench.sim",
        "closed-loop quadrotor sim throughput: executor vs the same nodes stepped inline vs a plain inline loop",
        "Fly the quadrotor config three ways (through the lockstep executor, its nodes stepped by a plain loop, and the "
        "world and cascade called directly) and print time per physics step, steps/s and real-time factor.",
    ),
    (
        "policy",
        "aegis.bench.inference",
        "policy inference per call: onnxruntime run, io_binding, the aegis runtime, numpy, int8, the C export",
        "Per-call latency of an ONNX policy through onnxruntime's run, io_binding, the aegis runtime (normalisation, "
        "scaling, clipping included), a numpy forward pass, onnxruntime's dynamic int8, and the aegis C export "
        "(float32 and int8, built with the host compiler, timed in C).",
    ),
    (
        "mpc",
        "aegis.bench.mpc",
        "MPC solve time per path (OSQP direct, cvxpy with Parameters, cvxpy rebuilt) for each model",
        "Closed-loop MPC ticks per model and solve path: median and p99 per call, iterations, ratio to cvxpy.",
    ),
    (
        "filter",
        "aegis.bench.filter",
        "CBF safety-filter call time per solve path (osqp-direct, closed-form, cvxpygen, cvxpy-param, cvxpy-rebuild)",
        "The whole filter call (rows from the state, solve, checks, report) per solve path: median and p99, and the "
        "speed-up over cvxpy with Parameters.",
    ),
    (
        "dds",
        "aegis.bench.dds",
        "one-way latency of an Odometry over DDS between two processes, beside in-process DDS and in memory",
        "Publish nav_msgs/Odometry at --rate for --duration to a second process on loopback through the DDS transport "
        "(ROS 2's wire): one-way latency from the send time stamped in the message (one machine, one monotonic clock), "
        "round trip / 2 as a cross-check, and the same message through DDS inside one process and through a dict.",
    ),
    (
        "link",
        "aegis.bench.link",
        "round trip of an Odometry frame and its command frame between two processes over a serial pty (921600 baud) and UDP",
        "Send an Odometry wire frame (COBS + CRC, aegis.transport.framing) from one process and answer it with a MotorSpeeds "
        "frame from a second, over a raw pty pair at 921600 baud (as fast as the pty goes, and paced at the baud rate) and "
        "over UDP on loopback: round trip median, p99 and max, the frame sizes and the wire time the baud rate implies.",
    ),
    (
        "link-stages",
        "aegis.bench.link_stages",
        "the paced serial round trip of `bench link` cut into stages: encode, wire time, transmitter lateness, pty hand-over, decode",
        "Time the serial, paced, fixed exchange of `aegis bench link` with both processes stamping its steps on one clock: "
        "per stage (the plant's encode, the sensor frame's wire time, how late the transmitter wrote it, the pty's hand-over "
        "to the controller, its read and check, decode, encode, the command's wire time and hand-over, the plant's read and "
        "decode) median, p90, p99 and max; the stages add up to the round trip.",
    ),
    (
        "pil",
        "aegis.bench.pil",
        "the quadrotor chain flown in lockstep with its policy on the emulated Cortex-M4F (UART wire frames) beside Python",
        "Fly a config with a policy twice in lockstep: the policy in Python (onnxruntime), then on QEMU mps2-an386 (the "
        "exported C behind the wire frame's UART): tracking RMSE of each, the largest distance between the flights, the "
        "MCU's instructions per answer (-icount) and the image's flash and RAM.",
    ),
    (
        "perception",
        "aegis.bench.perception",
        "perception per input on fixed inputs: a 360-beam lidar scan -> obstacles (math alone, the node's step), 1080 beams",
        "Time aegis.perception.lidar.detect and the lidar_obstacles node's step on a fixed synthetic scan of the husky_goal "
        "scenario (360 and 1080 beams): median and p99 per call, and the issue's target (360 beams, p99 <= 1 ms).",
    ),
    (
        "campaign",
        "aegis.bench.campaign",
        "campaign throughput: episodes per second per core of one aegis eval campaign on the local pool and on Ray",
        "Run the same campaign on the local process pool, on a Ray instance started for it and on one already running "
        "(a cluster), each with --workers cores: wall time, episodes per second per core, and whether the rows match.",
    ),
    (
        "bc",
        "aegis.training.bc_bench",  # training owns it: aegis.bench and aegis.training are one layer
        "behaviour cloning's CPU per Adam step and per epoch at several batch sizes (the fits of aegis train)",
        "Run aegis train's behaviour cloning (MLP, Adam, the spectral-norm projection) on synthetic rows at each batch "
        "size in turns: CPU ms per step, CPU s per epoch and its ratio to the first size. Needs torch.",
    ),
    (
        "loop",
        "aegis.bench.loop",
        "the quadrotor chain's control tick at 1 kHz on the wall clock (realtime executor), with and without SCHED_FIFO",
        "Run the quadrotor_oracle_sim chain (policy, safety filter, supervisor, attitude cascade) at --rate on the realtime executor, fed "
        "by a recorded flight's plant messages: median and p99 tick, deadline-miss rate and jitter per scheduler, and "
        "where the tick's time goes, the bare inference and QP calls (the floor), and each node's steps replayed warm.",
    ),
)
"""`aegis bench NAME`: (name, module with add_arguments and run_from_args, help, description)."""


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add bench and one subcommand per benchmark to the `aegis` subparsers."""
    bench = sub.add_parser("bench", help="benchmarks that print numbers", description="Benchmarks: print and optionally write rows.")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    for name, module, help_text, description in BENCHMARKS:
        bench_parser = bench_sub.add_parser(name, help=help_text, description=description)
        importlib.import_module(module).add_arguments(bench_parser)
        bench_parser.set_defaults(handler=functools.partial(_cmd_bench, module))



def _cmd_bench(module: str, args: argparse.Namespace) -> int:
    importlib.import_module(module).run_from_args(args)
    return 0
