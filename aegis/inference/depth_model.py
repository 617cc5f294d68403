"""Learned depth sectors: an ONNX depth-sector CNN behind the policy contract and runtime, and the cheap -> large cascade under a budget.

A depth-sector model (made by ``aegis train-depth``, aegis.training.depth_train) is an ONNX file
whose contract (aegis.inference.contract, in its metadata) reads like a policy's: one observation
field ``depth`` (the image as :func:`aegis.perception.depth_sectors.model_input` makes it: metres,
row-major, clipped to max range, holes 0, normalised by the contract's scale) and two action fields,
``range`` (K sector distances, m, in [0, max range]) and ``sigma`` (K Laplace scales, m: the
model's own uncertainty of each range). It runs in :class:`aegis.inference.runtime.PolicyRuntime`
like any policy (contract checked against the graph, preallocated buffers, per-call latency). The
sector geometry the model was trained for (image size, downsampling factor, sectors, max range,
camera fov and mount) is a second metadata entry, ``aegis.depth_sectors`` (:class:`SectorSpec`),
which :class:`DepthSectorModel` checks against the camera it is given.

:class:`DepthCascade` is the adaptive cascade (issue 13, after the nano-drone CNN cascades and DeeR's
dynamic early exit): every frame runs the cheap model; the large one runs only when the cheap one is
unsure (the mean of its sector sigmas above ``sigma_threshold_m``: on validation frames the mean told
the frames where the large model does better apart more sharply than the largest sigma did) AND what is left of the frame's
``budget_us``, after the time already spent on it, covers the large model's measured p99. The
decision is :func:`escalate`, a pure function of those numbers, tested with fake ones; the stages'
times come from a clock the cascade is given (``time.perf_counter_ns`` by default): this is a
measurement of the stage, so a run's escalations can differ with the machine's load, never its
deadline. The report counts which stage answered each frame.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from aegis.inference.latency import LatencyStats
from aegis.inference.runtime import PolicyRuntime
from aegis.perception.depth_sectors import SectorGeometry, model_input

PROBE_FRAMES = 50
"""Frames run at load to estimate a model's time before its own calls give a p99."""
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
    """A cheap model's sigma above which the cascade escalates, chosen on validation data at training (None: not a cheap stage)."""

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
        if names != ("range", "sigma"):
            raise ValueError(f"{self.path}: a depth-sector model's actions are range, sigma; its contract has {', '.join(names)}")
        self._input = np.zeros(self.runtime.contract.input_size, dtype=np.float32)
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

    def predict(self, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(ranges, sigmas), each (K,) in metres, for one depth image at the camera's size; None if the network's output is not finite."""
        spec = self.spec
        started = time.perf_counter_ns()
        model_input(depth, spec.max_range_m, spec.factor, out=self._input)
        action = self.runtime.act(self._input)
        self.latency.record(time.perf_counter_ns() - started)
        if action is None:
            return None
        return action[: spec.sectors], action[spec.sectors :]

    def p99_us(self) -> float:
        """This model's p99 per frame (µs) over its recent frames, once there are 20; before that, twice its mean at load."""
        latency = self.latency
        return latency.percentile_us(99.0) if latency.count >= 20 else 2.0 * self.probe_us


def escalate(sigma_m: float, sigma_threshold_m: float, spent_us: float, budget_us: float, large_p99_us: float) -> tuple[bool, str]:
    """Whether to run the large model, and why: ("large", "confident", or "budget": unsure but no time left).

    ``sigma_m`` is the cheap model's frame sigma (the mean of its sector sigmas), ``spent_us`` the
    frame's time so far; the large model runs when it is above the threshold and the budget left
    covers the large model's p99.
    """
    if sigma_m <= sigma_threshold_m:
        return False, "confident"
    if not budget_us - spent_us >= large_p99_us:  # an unknown (NaN) p99 does not fit either
        return False, "budget"
    return True, "large"


Predictor = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray] | None"]


@dataclass
class CascadeCounts:
    """Which stage answered each frame: the cheap one because it was sure, the cheap one because the budget was short, the large one."""

    cheap_confident: int = 0
    cheap_budget: int = 0
    large: int = 0
    failed: int = 0


class DepthCascade:
    """Cheap model every frame; the large one when the cheap one is unsure and the budget left covers the large one's p99."""

    def __init__(
        self,
        cheap: Predictor,
        large: Predictor,
        large_p99_us: Callable[[], float],
        sigma_threshold_m: float,
        budget_us: float,
        clock_ns: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.cheap, self.large, self.large_p99_us = cheap, large, large_p99_us
        self.sigma_threshold_m = sigma_threshold_m
        self.budget_us = budget_us
        self.clock_ns = clock_ns
        self.counts = CascadeCounts()
        self.frame_us: deque[float] = deque(maxlen=4096)
        """The cascade's time per frame (µs), the last 4096 frames."""

    def reset(self) -> None:
        self.counts = CascadeCounts()
        self.frame_us.clear()

    def predict(self, depth: np.ndarray, started_ns: int | None = None) -> tuple[np.ndarray, np.ndarray, str] | None:
        """(ranges, sigmas, stage) for one frame; ``started_ns`` is when the frame's work began (default: now).

        ``stage``: "cheap" (it was sure), "cheap_budget" (it was not, but the large model's p99 did not fit
        in what was left of the budget) or "large". None when the cheap model's output was not finite.
        """
        start = self.clock_ns() if started_ns is None else started_ns
        answer = self.cheap(depth)
        stage = "cheap"
        if answer is None:
            self.counts.failed += 1
            return None
        spent_us = (self.clock_ns() - start) / 1e3
        go, why = escalate(float(np.mean(answer[1])), self.sigma_threshold_m, spent_us, self.budget_us, self.large_p99_us())
        if go:
            large = self.large(depth)
            if large is not None:
                answer, stage = large, "large"
                self.counts.large += 1
            else:
                self.counts.failed += 1  # the large one's output was not finite: the cheap answer stands
        elif why == "budget":
            self.counts.cheap_budget += 1
            stage = "cheap_budget"
        else:
            self.counts.cheap_confident += 1
        self.frame_us.append((self.clock_ns() - start) / 1e3)
        return answer[0], answer[1], stage
