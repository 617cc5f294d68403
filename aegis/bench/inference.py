"""Policy inference latency per call: onnxruntime (run, io_binding, int8), the aegis runtime, numpy, and the C export.

One model (by default a 12-64-64-4 MLP, Gemm + Relu + Tanh, random weights from ``seed``, with a
contract that normalises every observation field and scales the action: the work a real
contract asks) is called nine ways, ``calls`` times each, ``repeats`` times in turn:

``ort-run``
    ``session.run([output], {input: x})`` on the bare network, a preallocated normalised float32
    input: a new output array a call.
``ort-iobinding``
    ``session.run_with_iobinding(binding)`` on the bare network, input and output bound to
    preallocated buffers: the raw floor, the baseline of ``vs_iobinding``. It does none of the
    contract's work (normalisation, scale, limits).
``ort-iobinding-floor``
    the same call as the runtime makes it: the session's C method (no Python wrapper) with one
    ``RunOptions`` made beforehand (given None, onnxruntime builds a default one per call). The
    fastest call onnxruntime's Python API offers; not the issue's baseline, shown beside it.
``ort-iobinding-physical``
    the same as ``ort-iobinding`` on the model's physical graph (:mod:`aegis.inference.physical_graph`): the contract's
    work inside onnxruntime, on a physical float32 observation; what the runtime calls.
``aegis-runtime``
    :meth:`aegis.inference.runtime.PolicyRuntime.act` on a physical float64 observation: shape
    check, the cast into the bound input, the physical graph (io_binding unless ``session.run``
    measured faster), the finiteness check, a new float64 action, and the latency record.
``aegis-runtime-numpy``
    the same with ``physical_graph=False``: the bare network, the contract applied in numpy around
    it (the way the runtime worked before the contract moved into the graph).
``numpy``
    :func:`aegis.inference.mlp.numpy_forward` of the bare network in float32 (no contract work).
``ort-int8``
    the bare network pre-processed (``quant_pre_process``) and quantized by
    ``onnxruntime.quantization.quantize_dynamic`` (uint8 weights as aegis model quantize writes them, activations quantized per call),
    run with io_binding as ``ort-iobinding``.
``c-float32``, ``c-int8``
    the model exported by :func:`aegis.export.export_c` (float32; int8 weights with per-channel
    scales), with its contract (physical observation in, physical clipped action out), compiled
    with the host C compiler (-O2) into a shared library. Timed in C: the library reads
    CLOCK_MONOTONIC just before and just after each inference
    (:meth:`aegis.export.host.HostPolicy.call_times_ns`), so neither Python nor ctypes is in the
    number. What a Python caller pays through ctypes is in the row's note.

The Python rows' time is the wall time (``time.perf_counter_ns``) around one call, the same probe
for all of them. The sessions run on the CPU provider with ``threads`` intra-op threads,
sequentially. A way that cannot run here (no host C compiler, an op the C export refuses, a
graph numpy_forward cannot take) gets a row of NaN with the reason in its note.

Targets from the issue (printed as met or not, never asserted): wrapper overhead <= 1.3x raw
onnxruntime io_binding (the ``aegis-runtime`` median over the ``ort-iobinding`` median; also shown
over ``ort-iobinding-physical``, the same graph, which isolates the Python around the call); host C
export <= 2 µs per inference (the ``c-float32`` median).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aegis.bench import machine, write_document
from aegis.cli_options import output_file, positive_int, seed

ROW_NAMES = (
    "ort-run", "ort-iobinding", "ort-iobinding-floor", "ort-iobinding-physical", "aegis-runtime", "aegis-runtime-numpy", "numpy", "ort-int8",
    "c-float32", "c-int8",
)  # fmt: skip
ROW_KEYS = ("name", "median_us", "p99_us", "mean_us", "vs_iobinding", "calls", "repeats", "note")
DESCRIPTIONS = {
    "ort-run": "session.run on the bare network, a preallocated normalised input",
    "ort-iobinding": "session.run_with_iobinding on the bare network, input and output bound (raw floor, no contract work)",
    "ort-iobinding-floor": "ort-iobinding through the session's C method with one RunOptions for every call (what the runtime calls)",
    "ort-iobinding-physical": "session.run_with_iobinding on the physical graph (the contract's work inside onnxruntime)",
    "aegis-runtime": "PolicyRuntime.act: the physical graph, cast in, finiteness check, float64 action out, latency stats",
    "aegis-runtime-numpy": "PolicyRuntime.act with physical_graph=False: the contract in numpy around the bare network",
    "numpy": "numpy forward of the bare network, float32",
    "ort-int8": "quantize_dynamic (uint8 weights, activations quantized per call), run_with_iobinding",
    "c-float32": "aegis export c (physical units), float32, host cc -O2; timed in C around each call (no Python, no ctypes)",
    "c-int8": "aegis export c --precision int8 (per-channel scales), timed as c-float32",
}
DEFAULT_SIZES = (12, 64, 64, 4)
TARGET_WRAPPER_OVERHEAD = 1.3
TARGET_C_US = 2.0


def default_model(folder: Path, seed: int = 0) -> Path:
    """Write the benchmark's default model (12-64-64-4 MLP with a normalising, scaling contract) into ``folder``."""
    import onnx

    from aegis.inference.contract import (
        ActionField,
        Normalization,
        ObservationField,
        PolicyContract,
        Producer,
    )
    from aegis.inference.mlp import mlp_model, random_mlp_weights
    from aegis.inference.stamping import write_contract

    contract = PolicyContract(
        robot_kind="quadrotor",
        control_rate_hz=48.0,
        observation=(
            ObservationField(name="position_error", size=3, unit="m", normalization=Normalization(mean=0.0, std=0.5)),
            ObservationField(name="velocity", size=3, unit="m/s", normalization=Normalization(mean=0.0, std=1.0)),
            ObservationField(name="attitude", size=3, unit="rad", normalization=Normalization(scale=2.0)),
            ObservationField(name="body_rates", size=3, unit="rad/s", normalization=Normalization(scale=0.5)),
        ),
        action=(
            ActionField(name="thrust", size=1, unit="N", scale=0.2, offset=0.265, low=0.0, high=0.6),
            ActionField(name="body_rates", size=3, unit="rad/s", scale=3.0, low=-3.0, high=3.0),
        ),
        producer=Producer(name="aegis.bench.inference", notes=f"random weights, seed {seed}", seed=seed),
    )
    model = mlp_model(random_mlp_weights(DEFAULT_SIZES, seed))
    write_contract(model, contract)
    path = folder / "bench_mlp_12_64_64_4.onnx"
    onnx.save(model, str(path))
    return path


def run_policy_benchmark(
    model: str | Path | None = None,
    mapping: str | Path | None = None,
    calls: int = 20_000,
    repeats: int = 3,
    threads: int = 1,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Time the ways on ``model`` (default: :func:`default_model`); one row per way in :data:`ROW_NAMES` order."""
    if calls < 1 or repeats < 1:
        raise ValueError(f"calls and repeats must be >= 1, got {calls} and {repeats}")
    with tempfile.TemporaryDirectory(prefix="aegis-bench-policy-") as tmp:
        path = Path(model) if model is not None else default_model(Path(tmp), seed)
        ways, notes = _ways(path, mapping, threads, seed, Path(tmp), calls)
        warmup = min(calls, 2_000)
        for timer in ways.values():
            timer(warmup)
        samples: dict[str, list[np.ndarray]] = {name: [] for name in ways}
        for _ in range(repeats):  # interleaved, so a slow moment of the machine hits every way alike
            for name, timer in ways.items():
                samples[name].append(timer(calls))
    medians = {name: float(np.median(np.concatenate(s))) for name, s in samples.items()}
    rows = []
    for name in ROW_NAMES:
        if name not in samples:
            rows.append({"name": name, "median_us": math.nan, "p99_us": math.nan, "mean_us": math.nan,
                         "vs_iobinding": math.nan, "calls": 0, "repeats": repeats, "note": notes.get(name, "")})  # fmt: skip
            continue
        us = np.concatenate(samples[name])
        rows.append(
            {
                "name": name,
                "median_us": medians[name],
                "p99_us": float(np.percentile(us, 99)),
                "mean_us": float(us.mean()),
                "vs_iobinding": medians[name] / medians["ort-iobinding"],
                "calls": calls,
                "repeats": repeats,
                "note": notes.get(name, ""),
            }
        )
    return rows


Timer = Callable[[int], np.ndarray]
"""Runs a way n times and returns each call's time in µs."""


def _ways(path: Path, mapping: str | Path | None, threads: int, seed: int, folder: Path, calls: int) -> tuple[dict[str, Timer], dict[str, str]]:
    """A timer per way that can run here, and notes (why a way is missing, how a way was measured)."""
    import onnx
    import onnxruntime as ort

    from aegis.inference.mlp import numpy_forward
    from aegis.inference.runtime import PolicyRuntime

    runtime = PolicyRuntime(path, threads=threads, contract=mapping)
    in_numpy = PolicyRuntime(path, threads=threads, contract=mapping, physical_graph=False)
    contract, binding = runtime.contract, in_numpy.binding
    rng = np.random.default_rng(seed)
    observation = rng.standard_normal(contract.input_size)
    offset, gain = contract.loader_observation_affine()  # identity for a model whose graph is physical already
    x = ((observation - offset) * gain).astype(binding.input.dtype).reshape(binding.input_shape)
    y = np.zeros(binding.output_shape, dtype=binding.output.dtype)

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

    def bound(
        model: Path | bytes, fed: np.ndarray, names: tuple[str, str] = (binding.input.name, binding.output.name), floor: bool = False
    ) -> Callable[[], Any]:
        session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), sess_options=options, providers=["CPUExecutionProvider"])
        io = session.io_binding()
        io.bind_ortvalue_input(names[0], ort.OrtValue.ortvalue_from_numpy(fed))
        io.bind_ortvalue_output(names[1], ort.OrtValue.ortvalue_from_numpy(np.zeros_like(y, dtype=runtime.binding.output.dtype)))
        if not floor:
            return lambda: session.run_with_iobinding(io)
        run_options = ort.RunOptions()
        c_session, c_binding = getattr(session, "_sess", None), getattr(io, "_iobinding", None)
        if c_session is not None and c_binding is not None and hasattr(c_session, "run_with_iobinding"):
            return lambda: c_session.run_with_iobinding(c_binding, run_options)
        return lambda: session.run_with_iobinding(io, run_options)

    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    names, feed = [binding.output.name], {binding.input.name: x}
    act, act_in_numpy = runtime.act, in_numpy.act
    physical = runtime.binding
    physical_x = observation.astype(physical.input.dtype).reshape(physical.input_shape)
    calls_of: dict[str, Callable[[], Any]] = {
        "ort-run": lambda: session.run(names, feed),
        "ort-iobinding": bound(path, x),
        "ort-iobinding-floor": bound(path, x, floor=True),
        "ort-iobinding-physical": bound(_physical_bytes(path, contract), physical_x, (physical.input.name, physical.output.name)),
        "aegis-runtime": lambda: act(observation),
        "aegis-runtime-numpy": lambda: act_in_numpy(observation),
    }
    notes = {
        "aegis-runtime": f"call mode {runtime.call_mode}; contract {runtime.contract_applied}",
        "aegis-runtime-numpy": f"call mode {in_numpy.call_mode}",
    }
    try:
        forward = numpy_forward(onnx.load(str(path)))
    except ValueError as exc:
        notes["numpy"] = str(exc)
    else:
        calls_of["numpy"] = lambda: forward(x)
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process

        from aegis.inference.quantize import DYNAMIC_WEIGHT_TYPE

        prepared, quantized = folder / "int8_prepared.onnx", folder / "int8_dynamic.onnx"
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)  # as onnxruntime asks; no sympy needed
        quantize_dynamic(str(prepared), str(quantized), weight_type=getattr(QuantType, DYNAMIC_WEIGHT_TYPE))
        calls_of["ort-int8"] = bound(quantized, x)
    except Exception as exc:  # noqa: BLE001 - a model onnxruntime cannot quantize is a note, not a crash
        notes["ort-int8"] = f"quantize_dynamic failed: {type(exc).__name__}: {exc}"
    ways: dict[str, Timer] = {name: (lambda n, call=call: _time(call, n)) for name, call in calls_of.items()}
    for precision in ("float32", "int8"):
        name = f"c-{precision}"
        try:
            policy, physical_c = _host_c(path, precision, folder)
        except Exception as exc:  # noqa: BLE001 - no compiler, or a graph the export refuses: a note
            notes[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            continue
        fed = (observation if physical_c else x).astype(np.float32).reshape(1, -1)
        inputs = np.repeat(fed, calls, axis=0)
        ways[name] = lambda n, policy=policy, inputs=inputs: policy.call_times_ns(inputs[:n]) / 1e3
        call, _ = policy.single_call(fed)
        _time(call, 2_000)
        through_ctypes = float(np.median(_time(call, min(calls, 20_000))))
        units = "physical units" if physical_c else "network units (no contract)"
        notes[name] = f"{units}; from Python through ctypes: {through_ctypes:.2f} µs median per call"
    return ways, notes


def _host_c(model: Path, precision: str, folder: Path) -> tuple[Any, bool]:
    """The model exported to C (``precision``, with its contract when it has one) and built here: (HostPolicy, physical units)."""
    from aegis.export import export_c
    from aegis.export.host import build_host

    report = export_c(model, folder / f"c_{precision}", precision=precision)  # type: ignore[arg-type]
    return build_host(report), report.physical


def _physical_bytes(model: Path, contract: Any) -> bytes:
    """The model's physical graph, serialized (the file itself when its graph is physical already)."""
    import onnx

    from aegis.inference.physical_graph import physical_model

    return physical_model(onnx.load(str(model)), contract).model.SerializeToString()


def _time(call: Callable[[], Any], n: int) -> np.ndarray:
    """Wall time of each of ``n`` calls, µs."""
    samples = np.empty(n, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(n):
        started = clock()
        call()
        samples[i] = clock() - started
    return samples / 1e3


def wrapper_overhead(rows: Sequence[dict[str, Any]], baseline: str = "ort-iobinding") -> float:
    """The issue's wrapper overhead: aegis-runtime median over the ``baseline`` row's median (default: the bare network's io_binding)."""
    return float(_row(rows, "aegis-runtime")["median_us"] / _row(rows, baseline)["median_us"])


def targets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets against the rows: [{target, value, goal, met}] (information, not a verdict)."""
    out = []
    for label, baseline in (("wrapper overhead", "ort-iobinding"), ("wrapper overhead, same graph", "ort-iobinding-physical")):
        overhead = wrapper_overhead(rows, baseline)
        goal = f"<= {TARGET_WRAPPER_OVERHEAD}x raw io_binding" + ("" if baseline == "ort-iobinding" else " of the physical graph")
        out.append({"target": label, "value": overhead, "goal": goal, "met": overhead <= TARGET_WRAPPER_OVERHEAD})
    c_median = _row(rows, "c-float32")["median_us"]
    if not math.isnan(c_median):
        out.append({"target": "host C export", "value": c_median, "goal": f"<= {TARGET_C_US:g} µs per inference", "met": c_median <= TARGET_C_US})
    return out


def report(rows: Sequence[dict[str, Any]], model: str | Path | None = None) -> dict[str, Any]:
    """The JSON document: the rows, the wrapper overhead, the target and the machine that measured them."""
    import onnxruntime as ort

    return {
        "benchmark": "policy",
        "model": str(model) if model is not None else "default 12-64-64-4 MLP (aegis.bench.inference.default_model)",
        "rows": list(rows),
        "wrapper_overhead": wrapper_overhead(rows),
        "wrapper_overhead_same_graph": wrapper_overhead(rows, "ort-iobinding-physical"),
        "wrapper_overhead_floor": wrapper_overhead(rows, "ort-iobinding-floor"),
        "targets": targets(rows),
        "machine": machine(onnxruntime=ort.__version__),
    }


def write_json(rows: Sequence[dict[str, Any]], path: str | Path, model: str | Path | None = None) -> Path:
    """Write :func:`report` to ``path`` (parent folders created); returns the path."""
    return write_document(report(rows, model), path)


def print_report(rows: Sequence[dict[str, Any]], console: Any = None) -> None:
    """A rich table of the rows, each row's meaning, then the target with its value and whether it is met."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    first = rows[0]
    table = Table(title=f"policy inference, {first['calls']:,} calls x {first['repeats']}: time per call")
    for column, justify in (("way", "left"), ("median µs", "right"), ("p99 µs", "right"), ("mean µs", "right"), ("vs io_binding", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        if math.isnan(row["median_us"]):
            table.add_row(row["name"], "—", "—", "—", "—")
            continue
        table.add_row(row["name"], f"{row['median_us']:.2f}", f"{row['p99_us']:.2f}", f"{row['mean_us']:.2f}", f"{row['vs_iobinding']:.2f}x")
    console.print(table)
    for row in rows:
        note = f" ({row['note']})" if row.get("note") else ""
        console.print(f"  {row['name']}: {DESCRIPTIONS[row['name']]}{note}")
    floor = wrapper_overhead(rows, "ort-iobinding-floor")
    console.print(f"aegis-runtime over ort-iobinding-floor (the same call, bare network; information): {floor:.2f}x")
    for target in targets(rows):
        verdict = "[green]met[/green]" if target["met"] else "[red]not met[/red]"
        shown = f"{target['value']:.2f} µs" if target["goal"].endswith("inference") else f"{target['value']:.2f}x"
        console.print(f"target {target['target']} {target['goal']}: {shown} — {verdict}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the policy benchmark, for a bench/ script and the ``aegis bench policy`` command line."""
    parser.add_argument("--model", type=Path, default=None, help="ONNX policy with a contract (default: a 12-64-64-4 MLP with a normalising contract)")
    parser.add_argument("--mapping", type=Path, default=None, help="contract mapping file for a model without metadata")
    parser.add_argument("--calls", type=positive_int, default=20_000, metavar="N", help="timed calls of each way per repeat (default 20000)")
    parser.add_argument("--repeats", type=positive_int, default=3, metavar="N", help="timed runs of each way (default 3)")
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N", help="onnxruntime intra-op threads (default 1)")
    parser.add_argument("--seed", type=seed, default=0, help="weights of the default model and the observation (default 0)")
    parser.add_argument("--json", type=output_file, default=None, metavar="FILE", help="also write the rows, target and machine as JSON")


def run_from_args(args: argparse.Namespace, console: Any = None) -> list[dict[str, Any]]:
    """Run with parsed :func:`add_arguments` options: print the table and the target, write --json if given."""
    rows = run_policy_benchmark(args.model, args.mapping, args.calls, args.repeats, args.threads, args.seed)
    print_report(rows, console)
    if args.json is not None:
        write_json(rows, args.json, args.model)
    return rows


def _row(rows: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    for row in rows:
        if row["name"] == name:
            return row
    raise KeyError(f"no {name!r} row (have: {', '.join(r['name'] for r in rows)})")

