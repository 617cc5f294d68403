"""Learned depth sectors: an ONNX depth-sector CNN (and the large one's window model) behind the policy contract and runtime.

A depth-sector model (made by ``aegis train-depth``, aegis.training.depth_train) is an ONNX file
whose contract (aegis.inference.contract, in its metadata) reads like a policy's: one observation
field ``depth`` (the image as :func:`aegis.perception.depth_sectors.model_input` makes it: metres,
row-major, clipped to max range, holes 0, normalised by the contract's scale) and two action fields,
``range`` (K sector distances, m, in [0, max range]) and ``sigma`` (K Laplace scales, m: the
model's own uncertainty of each range); a cheap model made for the cascade's gain rule has a third,
``gain`` (K, m: its prediction of how much better the large model's range is there). It runs in :class:`aegis.inference.runtime.PolicyRuntime`
like any policy (contract checked against the graph, preallocated buffers, per-call latency). The
sector geometry the model was trained for (image size, downsampling factor, sectors, max range,
camera fov and mount) is a second metadata entry, ``aegis.depth_sectors`` (:class:`SectorSpec`),
which :class:`DepthSectorModel` checks against the camera it is given.

The cascade that runs them under a frame's budget is aegis.inference.depth_cascade.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from aegis.inference.contract import ContractError
from aegis.inference.latency import LatencyStats
from aegis.inference.runtime import PolicyRuntime
from aegis.perception.depth_sectors import ModelInput, SectorGeometry, window_input

P99_EVERY = 32
"""Calls of one size between two recomputations of a window model's p99 (the cascade asks for it on every frame it refines)."""
PROBE_FRAMES = 50
"""Frames run at load to estimate a model's time before its own calls give a p99."""
PROBE_CALLS = 10
"""Calls of each size (1 to K sectors) run at load to estimate a window model's time before its own calls give a p99."""
SECTORS_KEY = "aegis.depth_sectors"
"""The ONNX metadata key of a depth-sector model's :class:`SectorSpec` (JSON)."""


@dataclass(frozen=True)
class SectorSpec:
    """What a depth-sector model was trained on: the camera image and mount, its downsampling, sectors and range."""

    width_px: int
    height_px: int
    factor: int
    sectors: int
    max_range_m: float
    fov_deg: float
    mount_xyz_m: tuple[float, float, float]
    mount_pitch_rad: float
    cascade_sigma_threshold_m: float | None = None
    """A cheap model's sector sigma above which the cascade refines that sector, chosen on validation data at training (None: not a cheap stage);
    with :attr:`cascade_relative`, a ratio: its sigma / range."""
    window_px: int | None = None
    """A window model (the cascade's second stage): it reads this many full-resolution columns and their bearings, and answers per column (None: a whole-image model)."""

    cascade_relative: bool = False
    """The cascade's threshold is on the sector's sigma / range (:func:`unsure_scores`), not its sigma (``aegis train-depth --escalation relative``)."""
    cascade_gain: bool = False
    """The cascade's threshold is on the model's third output, ``gain``: its prediction of how much nearer the large model's range is to the
    truth than its own in each sector (m; ``python -m aegis.training.depth_gain``). Such a model's contract has the action fields range, sigma, gain."""

    @property
    def cascade_rule(self) -> str:
        """The cascade's escalation rule this model carries: "gain", "relative" (sigma / range) or "sigma"."""
        return "gain" if self.cascade_gain else "relative" if self.cascade_relative else "sigma"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SectorSpec:
        raw = json.loads(text)
        raw["mount_xyz_m"] = tuple(raw["mount_xyz_m"])
        return cls(**raw)

    def mismatches(self, width_px: int, height_px: int, fov_deg: float, mount_xyz_m: tuple, mount_pitch_rad: float) -> list[str]:
        """What differs between this spec and a camera (empty: none)."""
        problems = []
        if (width_px, height_px) != (self.width_px, self.height_px):
            problems.append(f"image {width_px}x{height_px} px, the model's {self.width_px}x{self.height_px}")
        if abs(fov_deg - self.fov_deg) > 1e-6:
            problems.append(f"fov_deg {fov_deg:g}, the model's {self.fov_deg:g}")
        if not np.allclose(mount_xyz_m, self.mount_xyz_m) or abs(mount_pitch_rad - self.mount_pitch_rad) > 1e-6:
            problems.append(f"mount {tuple(mount_xyz_m)} pitch {mount_pitch_rad:g}, the model's {self.mount_xyz_m} pitch {self.mount_pitch_rad:g}")
        return problems


def read_sector_spec(path: str | Path) -> SectorSpec:
    """The :class:`SectorSpec` in a model's metadata; ValueError naming the file when it has none."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends, a missing file: not a readable ONNX model
        raise ValueError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    for prop in model.metadata_props:
        if prop.key == SECTORS_KEY:
            return SectorSpec.from_json(prop.value)
    raise ValueError(f"{path}: no {SECTORS_KEY} metadata: not a depth-sector model (make one with aegis train-depth)")


class DepthSectorModel:
    """A depth-sector ONNX model ready to run: its spec, its runtime, and one frame -> (ranges m, sigmas m)."""

    def __init__(self, path: str | Path, threads: int = 1, warmup_calls: int = 200) -> None:
        self.path = Path(path)
        self.spec = read_sector_spec(self.path)
        self.runtime = PolicyRuntime(self.path, threads=threads, warmup_calls=warmup_calls)
        names = self.runtime.contract.action_names
        if names not in (("range", "sigma"), ("range", "sigma", "gain")):
            raise ValueError(f"{self.path}: a depth-sector model's actions are range, sigma (and gain); its contract has {', '.join(names)}")
        self.has_gain = names[-1] == "gain"
        """The model also predicts the large model's gain per sector (:meth:`predict_with_gain`: the cascade's "gain" rule)."""
        if self.spec.cascade_gain and not self.has_gain:
            raise ValueError(f"{self.path}: its {SECTORS_KEY} asks for the gain rule but its contract has no gain output")
        model_input = np.zeros(self.runtime.contract.input_size, dtype=np.float32)  # the contract's size: ModelInput checks it is the spec's
        try:
            self._prepare = ModelInput(self.spec.height_px, self.spec.width_px, self.spec.max_range_m, self.spec.factor, out=model_input)
        except ValueError as exc:
            raise ValueError(f"{self.path}: its {SECTORS_KEY} and its contract's depth field disagree: {exc}") from None
        self.latency = LatencyStats(1024)
        """Time of each whole frame (input preparation and the ONNX call), the last 1024."""
        self.geometry = SectorGeometry(
            self.spec.width_px, self.spec.height_px, self.spec.fov_deg, self.spec.mount_xyz_m, self.spec.mount_pitch_rad,
            sectors=self.spec.sectors, max_range_m=self.spec.max_range_m,
        )
        probe = np.full((self.spec.height_px, self.spec.width_px), np.inf, dtype=np.float32)
        started = time.perf_counter_ns()
        for _ in range(PROBE_FRAMES):
            self.predict(probe)
        self.probe_us = (time.perf_counter_ns() - started) / 1e3 / PROBE_FRAMES
        """Mean time of a whole frame (input preparation and the call) at load (µs)."""
        self.runtime.reset_stats()
        self.latency.reset()
        self._p99_us, self._p99_at = 2.0 * self.probe_us, 0
        self._median_us, self._median_at = self.probe_us, 0

    def _outputs(self, depth: np.ndarray) -> np.ndarray | None:
        """The network's outputs for one depth image (its call timed into :attr:`latency`); None if not finite."""
        started = time.perf_counter_ns()
        action = self.runtime.act(self._prepare(depth))
        self.latency.record(time.perf_counter_ns() - started)
        return action

    def predict(self, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(ranges, sigmas), each (K,) in metres, for one depth image at the camera's size; None if the network's output is not finite."""
        action, k = self._outputs(depth), self.spec.sectors
        return None if action is None else (action[:k], action[k : 2 * k])

    def predict_with_gain(self, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(ranges, sigmas, gains), each (K,) in metres, from the same one call as :meth:`predict` (a model with a gain output); None if
        not finite. A gain is the model's prediction of |its range's error| - |the large model's| in that sector: where the large one helps."""
        action, k = self._outputs(depth), self.spec.sectors
        return None if action is None else (action[:k], action[k : 2 * k], action[2 * k : 3 * k])

    def p99_us(self) -> float:
        """This model's p99 per frame (µs) over its recent frames, once there are 20; before that, twice its mean at load.

        Recomputed every :data:`P99_EVERY` frames (the cascade asks for it on every frame it refines: a percentile costs more than a call).
        """
        latency = self.latency
        if latency.count < 20:
            return 2.0 * self.probe_us
        if latency.count - self._p99_at >= P99_EVERY or self._p99_at < 20:
            self._p99_us, self._p99_at = latency.percentile_us(99.0), latency.count
        return self._p99_us

    def median_us(self) -> float:
        """This model's median per frame (µs) over its recent frames once there are 20 (before that, its mean at load), recomputed every
        :data:`P99_EVERY` frames: the cascade's measure of which way to the unsure sectors is cheaper (a p99 is the load's, not the work's)."""
        latency = self.latency
        if latency.count < 20:
            return self.probe_us
        if latency.count - self._median_at >= P99_EVERY or self._median_at < 20:
            self._median_us, self._median_at = latency.percentile_us(50.0), latency.count
        return self._median_us


class DepthWindowModel:
    """The cascade's second stage: the large network on sectors' windows of columns -> those sectors' (range m, sigma m), in one call.

    A window model (made with the large one by ``aegis train-depth``: its column layers, the same
    weights, on :attr:`SectorSpec.window_px` full-resolution columns with their bearings) answers per
    column; on a sector's band with the large network's margin either side (or the image's edge) those
    columns are the large network's, so the band's min range and max sigma are the large model's
    sector, at the cost of a ninth of its columns. Its batch dimension is dynamic: the windows of all
    the sectors asked for go in one onnxruntime call (:class:`aegis.inference.batch_call.BatchCall`),
    whose time is kept per number of sectors.
    """

    def __init__(self, path: str | Path, threads: int = 1, warmup_calls: int = 200) -> None:
        from aegis.inference.batch_call import BatchCall
        from aegis.perception.depth import camera_matrix

        self.path = Path(path)
        self.spec = spec = read_sector_spec(self.path)
        if spec.window_px is None:
            raise ValueError(f"{self.path}: not a window model ({SECTORS_KEY} has no window_px): the cascade's second stage is made by aegis train-depth")
        self.runtime = PolicyRuntime(self.path, threads=threads, warmup_calls=warmup_calls)
        contract = self.runtime.contract
        if contract.observation_names != ("depth", "bearing") or contract.action_names != ("range", "sigma"):
            raise ValueError(f"{self.path}: a window model reads depth, bearing and answers range, sigma; its contract: {contract.observation_layout} -> {contract.action_layout}")
        try:
            self.batch = BatchCall(self.runtime, spec.sectors)
        except ContractError as exc:
            raise ValueError(f"{exc} (a window model from before the batched cascade: python -m aegis.training.depth_window_export re-exports it)") from None
        width, band = spec.window_px, spec.width_px // spec.sectors
        self.band, self.width = band, width
        self.starts = np.clip(np.arange(spec.sectors) * band - (width - band) // 2, 0, spec.width_px - width)
        """Each sector's window's first column."""
        self.offsets = np.arange(spec.sectors) * band - self.starts
        """Where each sector's band begins in its window."""
        k = camera_matrix(spec.width_px, spec.height_px, spec.fov_deg)
        bearings = ((np.arange(spec.width_px) - k[0, 2]) / k[0, 0]).astype(np.float32)
        self._bearings = [bearings[start : start + width] for start in self.starts]
        self._input = np.zeros(contract.input_size, dtype=np.float32)
        self._depth, self._bearing = self._input[: spec.height_px * width], self._input[spec.height_px * width :]
        pixels = spec.height_px * width
        self._windows = self.batch.inputs[:, :pixels].reshape(spec.sectors, spec.height_px, width)  # views of the batch's rows
        self._window_bearings = self.batch.inputs[:, pixels:]
        self._bearing_table = np.stack(self._bearings)  # (K, W)
        self._starts, self._offsets = self.starts.tolist(), self.offsets.tolist()  # Python ints: the per-sector loop indexes with them
        self._ranges, self._sigmas = np.zeros(spec.sectors), np.zeros(spec.sectors)
        self.latency = [LatencyStats(256) for _ in range(spec.sectors)]
        """Time of each call (the windows' input and the ONNX call) by its number of sectors (``latency[n - 1]``), the last 256 each."""
        probe = np.full((spec.height_px, spec.width_px), np.inf, dtype=np.float32)
        sectors = np.arange(spec.sectors)
        self.probe_us = np.zeros(spec.sectors)
        """Mean time of a call of n sectors at load (µs), ``probe_us[n - 1]``."""
        for n in range(1, spec.sectors + 1):  # a first call of each size is slow (onnxruntime plans the shapes): not timed
            self.predict_sectors(probe, sectors[:n])
        for n in range(1, spec.sectors + 1):
            started = time.perf_counter_ns()
            for _ in range(PROBE_CALLS):
                self.predict_sectors(probe, sectors[:n])
            self.probe_us[n - 1] = (time.perf_counter_ns() - started) / 1e3 / PROBE_CALLS
        self.runtime.reset_stats()
        for stats in self.latency:
            stats.reset()
        self._measured = np.full(spec.sectors, np.nan)
        self._p99_us = 2.0 * np.maximum.accumulate(self.probe_us)
        self._p99_at = np.zeros(spec.sectors, dtype=int)
        self._measured_median = np.full(spec.sectors, np.nan)
        self._median_us = np.maximum.accumulate(self.probe_us)
        self._median_at = np.zeros(spec.sectors, dtype=int)

    def predict_sectors(self, depth: np.ndarray, sectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ranges, sigmas) in metres of the given sectors of a depth image, in their order, from ONE onnxruntime call; NaN where not finite."""
        n = len(sectors)
        started = time.perf_counter_ns()
        windows, bearings, table, starts, offsets = self._windows, self._window_bearings, self._bearing_table, self._starts, self._offsets
        width, band, max_range, copyto = self.width, self.band, self.spec.max_range_m, np.copyto
        for i in range(n):  # a row per sector: its window's columns and bearings (a loop: a frame refines a few sectors)
            sector = sectors[i]
            start = starts[sector]
            copyto(windows[i], depth[:, start : start + width])
            bearings[i] = table[sector]
        rows = windows[:n]  # as window_input: holes 0, beyond range the range, in two calls for the whole batch
        np.fmax(rows, 0.0, out=rows)
        np.minimum(rows, max_range, out=rows)
        out = self.batch(n)
        ranges, sigmas = self._ranges[:n], self._sigmas[:n]
        for i in range(n):
            o = offsets[sectors[i]]
            row = out[i]
            ranges[i] = row[o : o + band].min()
            sigmas[i] = row[width + o : width + o + band].max()
        self.latency[n - 1].record(time.perf_counter_ns() - started)
        return ranges.copy(), sigmas.copy()

    def predict_sector(self, depth: np.ndarray, sector: int) -> tuple[float, float] | None:
        """(range, sigma) in metres of one sector through :meth:`PolicyRuntime.act` (one call per sector: the reference the batch is tested against)."""
        window_input(depth, self.spec.max_range_m, int(self.starts[sector]), self._depth)
        self._bearing[:] = self._bearings[sector]
        action = self.runtime.act(self._input)
        if action is None:
            return None
        o, band, width = int(self.offsets[sector]), self.band, self.width
        return float(action[o : o + band].min()), float(action[width + o : width + o + band].max())

    def predict(self, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Every sector in one call: the large model's (ranges, sigmas) (tests compare the two); None if any is not finite."""
        ranges, sigmas = self.predict_sectors(depth, np.arange(self.spec.sectors))
        if not (np.isfinite(ranges).all() and np.isfinite(sigmas).all()):
            return None
        return ranges, sigmas

    def p99_us(self, sectors: int = 1) -> float:
        """The p99 of a call of ``sectors`` sectors (µs), never less than a smaller call's: over its recent calls once there are 20
        (before that, twice its mean at load).

        Recomputed every :data:`P99_EVERY` calls of a size, not on every call: a percentile of the window costs more than a sector.
        """
        i = sectors - 1
        latency = self.latency[i]
        if latency.count >= 20 and (latency.count - self._p99_at[i] >= P99_EVERY or self._p99_at[i] < 20):
            self._p99_at[i] = latency.count
            self._measured[i] = latency.percentile_us(99.0)
            self._p99_us = np.maximum.accumulate(np.where(np.isnan(self._measured), 2.0 * self.probe_us, self._measured))
        return float(self._p99_us[i])

    def median_us(self, sectors: int = 1) -> float:
        """The median of a call of ``sectors`` sectors (µs), never less than a smaller call's: over its recent calls once there are 20
        (before that, its mean at load), recomputed every :data:`P99_EVERY` calls of a size."""
        i = sectors - 1
        latency = self.latency[i]
        if latency.count >= 20 and (latency.count - self._median_at[i] >= P99_EVERY or self._median_at[i] < 20):
            self._median_at[i] = latency.count
            self._measured_median[i] = latency.percentile_us(50.0)
            self._median_us = np.maximum.accumulate(np.where(np.isnan(self._measured_median), self.probe_us, self._measured_median))
        return float(self._median_us[i])
