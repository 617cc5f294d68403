"""The policy runtime: an ONNX policy behind its contract, run by onnxruntime with preallocated buffers, in physical units.

:class:`PolicyRuntime` loads a model with the execution providers a hw_config asks for (falling back
to CPU loudly: a log warning and a line in ``fallbacks`` for each provider that is absent), moves its
contract into the graph (:mod:`aegis.inference.physical_graph`: onnxruntime then normalises, scales
and clips, as the quantized model and the C export do), checks the contract against the graph and
the deployment, binds preallocated input and output buffers (onnxruntime io_binding, or plain
``session.run`` where that measured faster; one RunOptions made at load serves every call), warms up,
and keeps per-call latency statistics.
:meth:`PolicyRuntime.act` takes a physical observation and returns a physical, clipped action; a
non-finite observation (or network output) gives None and is counted, so the caller chooses the
fallback. ``physical_graph=False`` runs the bare network and applies the contract in numpy around
it instead (the way before; kept as the reference the physical graph is tested against).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from aegis.inference.checks import (
    DeploymentExpectation,
    GraphBinding,
    check_contract,
    session_specs,
)
from aegis.inference.contract import (
    ContractError,
    LoadedContract,
    PolicyContract,
    load_contract,
)
from aegis.inference.latency import LatencyStats
from aegis.inference.physical_graph import PhysicalGraph
from aegis.inference.providers import CPU, Precision, fallback_lines, plan_providers
from aegis.inference.runtime_setup import (
    clip_function,
    finiteness_check,
    prepare_graph,
    python_finisher,
    python_normalizer,
)

if TYPE_CHECKING:
    from aegis.config import HwConfig

logger = logging.getLogger(__name__)

CallMode = Literal["auto", "iobinding", "run"]
_HOT = (
    "clock", "flat_shape", "row_shape", "copyto", "x_flat", "normalize", "run_call", "run_arg", "run_options", "check", "checked", "inf",
    "y_flat", "float64", "action_shape", "finish", "ring", "counter", "window",
)  # fmt: skip
"""What act() unpacks from one tuple (locals are faster than attributes), in this order."""
PROBE_CALLS = 300
"""Calls of each way (io_binding, session.run) timed at load to choose the faster, in ``auto`` mode."""
_clip = clip_function()


class PolicyRuntime:
    """An ONNX policy ready to act: contract checked, session made, buffers bound, warmed up.

    ``providers`` in order of preference (hw_config ``inference.providers``); absent ones fall back
    to CPU with a warning and a line in :attr:`fallbacks`. ``threads`` is onnxruntime's intra-op
    thread count (inter-op is 1, sequential execution). ``contract`` is a PolicyContract or a
    mapping file, for models without metadata (default: ``<stem>.aegis.yaml`` beside the model);
    ``expected`` is what the deployment expects (see :func:`aegis.inference.checks.expectation_from_config`).
    ``precision`` and ``engine_cache_dir`` become TensorRT options when TensorRT is asked for.
    ``call_mode`` ``auto`` times io_binding against ``session.run`` at load and keeps the faster.
    ``physical_graph`` (default) runs the model's physical graph (contract applied by onnxruntime);
    False runs the bare network and applies the contract in numpy. A model whose contract says the
    graph applies it already (``physical_graph: true``) is never normalised again either way.

    One runtime serves one caller at a time (its buffers are shared between calls); give each
    thread its own.
    """

    def __init__(
        self,
        model_path: str | Path,
        providers: Sequence[str] = (CPU,),
        threads: int = 1,
        contract: PolicyContract | str | Path | None = None,
        expected: DeploymentExpectation | None = None,
        *,
        precision: Precision = "fp32",
        sha256: str | None = None,
        warmup_calls: int = 200,
        latency_window: int = 4096,
        call_mode: CallMode = "auto",
        engine_cache_dir: Path | None = None,
        physical_graph: bool = True,
    ) -> None:
        import onnxruntime as ort

        from aegis.config_files import sha256_of

        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"policy model {path}: no such file")
        if sha256 is not None and (actual := sha256_of(path)) != sha256:
            raise ValueError(f"policy model {path} has sha256 {actual}, expected {sha256}")
        if not (isinstance(threads, int) and 1 <= threads <= 64):
            raise ValueError(f"threads must be an integer in 1..64, got {threads!r}")
        if call_mode not in ("auto", "iobinding", "run"):
            raise ValueError(f"call_mode must be auto, iobinding or run, got {call_mode!r}")
        if warmup_calls < 1:
            raise ValueError(f"warmup_calls must be >= 1, got {warmup_calls}")
        self.model_path = path
        self.precision = precision
        self.threads = threads

        plan = plan_providers(list(providers), precision, engine_cache_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        prepared = prepare_graph(path, contract, physical_graph, expected)
        self.session = ort.InferenceSession(
            prepared.model, sess_options=options, providers=list(plan.providers), provider_options=list(plan.options)
        )
        self.providers_requested: tuple[str, ...] = plan.requested
        self.providers: tuple[str, ...] = tuple(self.session.get_providers())
        self.fallbacks: list[str] = fallback_lines(plan, self.providers)
        """One line per requested provider that is not in use, naming it and what runs instead (empty: none)."""
        for line in self.fallbacks:
            logger.warning("policy %s: %s", path.name, line)

        if prepared.loaded is None:  # a file onnx could not read and onnxruntime could: its metadata from the session
            metadata = dict(self.session.get_modelmeta().custom_metadata_map)
            self.loaded: LoadedContract = load_contract(path, contract, metadata)
        else:
            self.loaded = prepared.loaded
        self.contract: PolicyContract = self.loaded.contract
        """The model's contract as found (its metadata or mapping file)."""
        self.graph_contract: PolicyContract = prepared.contract or self.contract
        """The contract of the graph onnxruntime runs: ``physical_graph`` true when that graph applies it (act() then does not)."""
        self.physical: PhysicalGraph | None = prepared.physical
        """What was moved into the graph at load (None: nothing; see :attr:`contract_applied`)."""
        self.action_fused: bool = prepared.fused_action
        """The action's scale and offset run as one Gemm in this session (aegis.inference.runtime_setup.fuse_action_affine)."""
        self.network_output: str | None = prepared.network_output
        """The graph output holding the network's raw action, checked for finiteness (None: the action itself is)."""
        inputs, outputs = session_specs(self.session)
        outputs = [o for o in outputs if o.name != self.network_output]
        self.binding: GraphBinding = check_contract(
            self.contract, inputs, outputs, expected, where=str(path), contract_source=f"the contract ({self.loaded.source})"
        )
        self.latency = LatencyStats(latency_window)
        self.nonfinite_observations = 0
        """Calls refused because the observation was not finite (or overflowed the model's input type)."""
        self.nonfinite_actions = 0
        """Calls refused because the network's output was not finite."""
        self._bind_buffers(ort)
        self.call_timing_us: dict[str, float] = self._choose_call_mode(call_mode)
        self._warm_up(warmup_calls)

    @classmethod
    def from_config(cls, config: HwConfig, expected: DeploymentExpectation | None = None, **kwargs: Any) -> PolicyRuntime:
        """The runtime a hw_config's ``inference`` section describes (model path relative to the config, sha256 checked)."""
        inference = config.inference
        if inference.model is None:
            source = config.source or "hw_config"
            raise ContractError(f"{source}: inference.model is not set: no policy to load")
        return cls(
            config.resolve(inference.model),
            providers=list(inference.providers),
            threads=inference.threads,
            expected=expected,
            precision=inference.precision,
            sha256=inference.sha256,
            **kwargs,
        )

    # --- the call ------------------------------------------------------------------------------

    def act(self, observation: np.ndarray, out: np.ndarray | None = None) -> np.ndarray | None:
        """The action (physical units, clipped to the contract's limits) for a physical observation.

        ``observation`` has the model input's elements (the observation layout x history_length,
        oldest frame first), shape (n,) or (1, n); a wrong shape or a non-numeric dtype raises
        ValueError. A non-finite observation, or a non-finite network output, returns None and is
        counted (:attr:`nonfinite_observations`, :attr:`nonfinite_actions`): the caller chooses the
        fallback. The action is a new float64 array, or ``out`` (float64, shape (m,)) filled in place.
        """
        (clock, flat_shape, row_shape, copyto, x_flat, normalize, run_call, run_arg, run_options, check, checked, inf,
         y_flat, float64, action_shape, finish, ring, counter, window) = self._hot  # fmt: skip  (the order of _HOT)
        started = clock()
        try:
            shape = observation.shape
        except AttributeError:
            observation = np.asarray(observation, dtype=np.float64)
            shape = observation.shape
        if shape != flat_shape:
            if shape != row_shape:
                raise ValueError(self._shape_message(shape))
            observation = observation[0]
        try:
            if normalize is None:  # the graph normalises: the physical values, cast once into the input buffer
                copyto(x_flat, observation, casting="same_kind")
            else:
                normalize(observation)
        except TypeError:
            raise ValueError(f"observation: dtype {observation.dtype} is not a real number type") from None
        run_call(run_arg, run_options)
        # The buffer's squared norm (input, the network's raw output, the action) is NaN or inf exactly when an element
        # is NaN or infinite (or above ~1e19, whose square overflows float32): one C call, and no floating-point warning.
        if not check(checked) < inf:
            self._count_nonfinite()
            return None
        if out is None:
            action = y_flat.astype(float64)
        elif out.shape != action_shape or out.dtype != float64:
            raise ValueError(f"out: expected a float64 array of shape {action_shape}, got {out.dtype} {out.shape}")
        else:
            copyto(out, y_flat)
            action = out
        if finish is not None:
            finish(action)
        i = counter[0]  # LatencyStats.record, inline
        ring[i % window] = clock() - started
        counter[0] = i + 1
        return action

    # --- reports -------------------------------------------------------------------------------

    @property
    def input_size(self) -> int:
        return self.contract.input_size

    @property
    def action_size(self) -> int:
        return self.contract.action_size

    def reset_stats(self) -> None:
        """Forget latencies and non-finite counts (warm-up calls are never counted)."""
        self.latency.reset()
        self.nonfinite_observations = self.nonfinite_actions = 0

    @property
    def contract_applied(self) -> str:
        """Where the contract's normalisation, scaling and limits happen, in words."""
        fused = "; the action's scale and offset run as one Gemm" if self.action_fused else ""
        if self.physical is not None:
            return f"in the graph, moved there at load: {self.physical.describe()}{fused}"
        if self.graph_contract.physical_graph:
            return f"in the graph (the model file is physical){fused}"
        return "in numpy around the bare network (physical_graph=False)"

    def diagnostics(self) -> dict[str, str]:
        """Key/value text for a diagnostic_msgs/DiagnosticStatus: providers, fallbacks, call mode, latency, refusals."""
        stats = self.latency.summary()
        return {
            "model": str(self.model_path),
            "contract": self.loaded.source,
            "contract_applied": self.contract_applied,
            "providers_requested": ",".join(self.providers_requested),
            "providers": ",".join(self.providers),
            "fallbacks": " | ".join(self.fallbacks),
            "call_mode": self.call_mode,
            "threads": str(self.threads),
            "calls": str(stats["count"]),
            "p50_us": repr(stats["p50_us"]),
            "p99_us": repr(stats["p99_us"]),
            "nonfinite_observations": str(self.nonfinite_observations),
            "nonfinite_actions": str(self.nonfinite_actions),
        }

    # --- set-up --------------------------------------------------------------------------------

    def _bind_buffers(self, ort: Any) -> None:
        """Preallocate the input, the network's raw output (when exposed) and the action (one buffer when their dtypes
        agree, so one call checks them all), bind them to the session, and lay out what act() needs."""
        contract, binding = self.graph_contract, self.binding
        n, m = contract.input_size, contract.action_size
        specs = [("input", binding.input.dtype, n), ("action", binding.output.dtype, m)]
        raw_spec = next((o for o in session_specs(self.session)[1] if o.name == self.network_output), None)
        if raw_spec is not None:
            specs.insert(1, ("raw", raw_spec.dtype, m))
        dtypes = {np.dtype(dtype) for _, dtype, _ in specs}
        parts: dict[str, np.ndarray] = {}
        if len(dtypes) == 1:
            buffer = np.zeros(sum(size for _, _, size in specs), dtype=dtypes.pop())
            start = 0
            for role, _, size in specs:
                parts[role], start = buffer[start : start + size], start + size
            check, checked = finiteness_check(buffer), buffer
        else:
            parts = {role: np.zeros(size, dtype=dtype) for role, dtype, size in specs}
            checks = [(finiteness_check(a), a) for a in parts.values()]
            check, checked = (lambda _: sum(f(a) for f, a in checks)), None
        x_flat, y_flat = parts["input"], parts["action"]
        x_bound, y_bound = x_flat.reshape(binding.input_shape), y_flat.reshape(binding.output_shape)
        bound = [(binding.output.name, y_bound)]
        if raw_spec is not None:
            bound.append((raw_spec.name, parts["raw"].reshape(binding.output_shape)))
        self._x_flat = x_flat
        self._ort_values = [ort.OrtValue.ortvalue_from_numpy(x_bound), *(ort.OrtValue.ortvalue_from_numpy(a) for _, a in bound)]
        io = self.session.io_binding()
        io.bind_ortvalue_input(binding.input.name, self._ort_values[0])
        for (name, _), value in zip(bound, self._ort_values[1:]):
            io.bind_ortvalue_output(name, value)
        # The public run_with_iobinding(io, None) is a Python wrapper around the session's C method; call that
        # directly when this onnxruntime has it (saves ~0.3 µs a call), else the public one. Same arguments.
        c_session, c_binding = getattr(self.session, "_sess", None), getattr(io, "_iobinding", None)
        if c_session is not None and c_binding is not None and hasattr(c_session, "run_with_iobinding"):
            self._iobinding_call: tuple[Callable[..., Any], Any] = (c_session.run_with_iobinding, c_binding)
        else:
            self._iobinding_call = (self.session.run_with_iobinding, io)
        run, names, copyto = self.session.run, [name for name, _ in bound], np.copyto
        # One RunOptions for every call: given None, onnxruntime builds a default one per call, which measured
        # 0.7 µs of a 3.5 µs io_binding call (aegis.bench.inference's model).
        self._run_options = ort.RunOptions()

        def run_and_copy(feed: dict[str, np.ndarray], run_options: Any) -> None:
            for (_, target), result in zip(bound, run(names, feed, run_options)):
                copyto(target, result)

        self._run_call: tuple[Callable[..., Any], Any] = (run_and_copy, {binding.input.name: x_bound})
        self._neutral_observation = contract.observation_affine()[0].copy()  # physical; normalises to zero
        ring, counter, window = self.latency.recorder()
        self._hot_parts: dict[str, Any] = {
            "clock": time.perf_counter_ns, "flat_shape": (n,), "row_shape": (1, n), "copyto": np.copyto, "x_flat": x_flat,
            "normalize": python_normalizer(contract, x_flat), "run_call": None, "run_arg": None, "run_options": self._run_options,
            "check": check, "checked": checked,
            "inf": math.inf, "y_flat": y_flat, "float64": np.dtype(np.float64), "action_shape": (m,), "finish": python_finisher(contract, _clip),
            "ring": ring, "counter": counter, "window": window,
        }  # fmt: skip

    def _set_mode(self, mode: Literal["iobinding", "run"]) -> None:
        parts = self._hot_parts
        parts["run_call"], parts["run_arg"] = self._iobinding_call if mode == "iobinding" else self._run_call
        assert set(parts) == set(_HOT), set(parts) ^ set(_HOT)
        self._hot = tuple(parts[name] for name in _HOT)
        self.call_mode: Literal["iobinding", "run"] = mode

    def _session_call(self, mode: Literal["iobinding", "run"]) -> Callable[[], Any]:
        call, arg, options = *(self._iobinding_call if mode == "iobinding" else self._run_call), self._run_options
        return lambda: call(arg, options)

    def _choose_call_mode(self, mode: CallMode) -> dict[str, float]:
        """Run each way once (a shape the graph refuses surfaces here), then time both in ``auto`` mode and keep the faster."""
        np.copyto(self._x_flat, 0.0)
        modes: tuple[Literal["iobinding", "run"], ...] = ("iobinding", "run") if mode == "auto" else (mode,)
        calls = {m: self._session_call(m) for m in modes}
        for name, call in calls.items():
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
                raise ContractError(
                    f"{self.model_path}: the model does not run with input {self.binding.input.name!r} "
                    f"{list(self.binding.input_shape)} and output {self.binding.output.name!r} {list(self.binding.output_shape)} "
                    f"as the contract ({self.loaded.source}) lays them out ({name}): {exc}"
                ) from None
        timing: dict[str, float] = {}
        if mode == "auto":
            clock = time.perf_counter_ns
            samples: dict[str, list[int]] = {m: [] for m in modes}
            for _ in range(PROBE_CALLS // 50):  # interleaved blocks, so a slow moment hits both ways alike
                for name, call in calls.items():
                    for _ in range(50):
                        started = clock()
                        call()
                        samples[name].append(clock() - started)
            timing = {name: float(np.median(s)) / 1e3 for name, s in samples.items()}
            mode = min(timing, key=timing.__getitem__)  # type: ignore[assignment]
        self._set_mode(mode)  # type: ignore[arg-type]
        return timing

    def _warm_up(self, calls: int) -> None:
        """Act ``calls`` times on the neutral observation (normalises to zero), then forget those calls."""
        neutral = self._neutral_observation
        for _ in range(calls):
            if self.act(neutral) is None:
                raise ContractError(f"{self.model_path}: the network's output is not finite for the neutral observation: a broken model?")
        self.reset_stats()

    def _count_nonfinite(self) -> None:
        """Count a refused call against the observation when the input refused it, else against the action (rare path)."""
        with np.errstate(all="ignore"):
            observation_bad = not finiteness_check(self._x_flat)(self._x_flat) < math.inf
        if observation_bad:
            self.nonfinite_observations += 1
        else:
            self.nonfinite_actions += 1

    def _shape_message(self, shape: tuple[int, ...]) -> str:
        c = self.contract
        history = f" x history_length {c.history_length}" if c.history_length > 1 else ""
        return (
            f"observation: expected shape ({c.input_size},) or (1, {c.input_size}) "
            f"(the contract's {c.observation_layout()}{history}), got {shape}"
        )
