"""The adaptive depth cascade under a latency budget: the cheap depth-sector model every frame, the large one on the sectors it is unsure of.

:class:`DepthCascade` (issue 13, after the nano-drone CNN cascades and DeeR's dynamic early exit):
every frame runs the cheap model; then the large network runs, in ONE onnxruntime call, on the
SECTORS the cheap one is unsure of (:func:`unsure_scores` above the threshold: its sigma, or its
sigma over the range; or, the "gain" rule, the cheap model's own prediction of the large model's gain there): the most unsure ones, as many as what is left of the frame's ``budget_us``,
after the time already spent on it, covers the measured p99 of a call on that many. It runs there
through :class:`aegis.inference.depth_model.DepthWindowModel` (a batch of windows): the large
network's own layers on each sector's columns and the margin its convolutions read, so a refined
sector is the large model's sector at a ninth of its columns. The decision is :func:`escalate`, a
pure function of those numbers, tested with fake ones; the stages' times come from a clock the
cascade is given (``time.perf_counter_ns`` by default): this is a measurement of the stage, so a
run's refinements can differ with the machine's load, never its deadline. The report counts which
stage answered each frame and the sectors refined or left for the budget.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

RANGE_FLOOR_M = 0.1
"""The least range a relative score (sigma / range) divides by: a sector's range can be near 0 (an obstacle at the bumper)."""


def unsure_scores(ranges: np.ndarray, sigmas: np.ndarray, relative: bool) -> np.ndarray:
    """The cascade's unsureness of each sector: the cheap sigma (m), or with ``relative`` the sigma over the range (at least
    :data:`RANGE_FLOOR_M`): a relative error, which on the validation frames picks where the large network helps better than the sigma."""
    return sigmas / np.maximum(ranges, RANGE_FLOOR_M) if relative else sigmas


def escalate(sigma_m: float, sigma_threshold_m: float, spent_us: float, budget_us: float, large_p99_us: float) -> tuple[bool, str]:
    """Whether to run the large network on a sector, and why: ("large", "confident", or "budget": unsure but no time left).

    ``sigma_m`` is the cheap model's sigma of the sector, ``spent_us`` the frame's time so far; the
    large network runs when it is above the threshold and the budget left covers its p99 per sector.
    """
    if sigma_m <= sigma_threshold_m:
        return False, "confident"
    if not budget_us - spent_us >= large_p99_us:  # an unknown (NaN) p99 does not fit either
        return False, "budget"
    return True, "large"


Predictor = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray] | None"]
"""depth -> (ranges, sigmas); for the cascade's cheap stage under the gain rule (ranges, sigmas, gains)."""
SectorsPredictor = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, np.ndarray]"]
"""(depth, sectors) -> those sectors' (ranges, sigmas), in one call; NaN where the network's output was not finite."""


@dataclass
class CascadeCounts:
    """Which stage answered each frame (the cheap one, sure of every sector; the cheap one for some sectors because the budget
    was short; the large network for every unsure sector), and how many sectors the large network answered or the budget left out."""

    cheap_confident: int = 0
    cheap_budget: int = 0
    large: int = 0
    failed: int = 0
    sectors_refined: int = 0
    sectors_budget: int = 0
    whole_frames: int = 0
    """Frames whose unsure sectors the whole large model answered: its p99 was below that of a window call on them all."""


class DepthCascade:
    """Cheap model every frame; the large network, in ONE call, on the sectors the cheap one is unsure of: the most unsure first, as many as
    the budget left covers the p99 of a call of that many. Given the whole large model (``whole``), it runs that instead when it is the
    cheaper way to every unsure sector and its p99 fits the budget (many unsure sectors: their windows' columns outnumber the image's);
    cheaper by the medians when given (``large_median_us``, ``whole_median_us``: the work), else by the p99s (the load's spikes too).
    With ``relative`` a sector is unsure where its sigma / range (:func:`unsure_scores`) is above the threshold, not its sigma.
    The sectors of one call are in sector order, sorted most unsure first only when the budget cannot take them all."""

    def __init__(
        self,
        cheap: Predictor,
        large: SectorsPredictor,
        large_p99_us: Callable[[int], float],
        sigma_threshold_m: float,
        budget_us: float,
        clock_ns: Callable[[], int] = time.perf_counter_ns,
        whole: Predictor | None = None,
        whole_p99_us: Callable[[], float] | None = None,
        relative: bool = False,
        large_median_us: Callable[[int], float] | None = None,
        whole_median_us: Callable[[], float] | None = None,
        gain: bool = False,
    ) -> None:
        self.cheap, self.large, self.large_p99_us = cheap, large, large_p99_us
        self.large_median_us, self.whole_median_us = large_median_us, whole_median_us
        """Given both, the cheaper way to the unsure sectors (the windows or the whole large model) is the one with the lower median:
        p99s at load are the machine's spikes (they sent half the held-out frames to the whole model); without them, the p99s decide."""
        self.relative = relative
        self.gain = gain
        """Unsure where the cheap model's predicted gain of the large model (its third output: ``cheap`` returns (ranges, sigmas, gains),
        e.g. :meth:`DepthSectorModel.predict_with_gain`) is above the threshold (m): the "gain" rule; ``relative`` is then ignored."""
        """Unsure where sigma / range (:func:`unsure_scores`) is above the threshold rather than the sigma: the threshold is then a ratio."""
        self.whole, self.whole_p99_us = whole, whole_p99_us
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

        ``stage``: "cheap" (it was sure of every sector), "cheap_budget" (some unsure sectors kept the
        cheap answer: the p99 of a call on them did not fit in what was left of the budget) or "large"
        (the large network answered every unsure sector). None when the cheap model's output was not finite.
        """
        clock = self.clock_ns
        start = clock() if started_ns is None else started_ns
        answer = self.cheap(depth)
        if answer is None:
            self.counts.failed += 1
            return None
        counts, threshold = self.counts, self.sigma_threshold_m
        if self.gain:
            ranges, sigmas, scores = answer
        else:
            ranges, sigmas = answer
            scores = sigmas / np.maximum(ranges, RANGE_FLOOR_M) if self.relative else sigmas  # unsure_scores, inlined: every frame
        unsure = (scores > threshold).nonzero()[0]
        stage = "cheap"
        if unsure.size:
            spent_us = (clock() - start) / 1e3
            order = unsure  # in sector order while every unsure sector fits (the usual case: no sort needed)
            n = order.size  # the most unsure sectors whose one call's p99 fits in what is left
            whole = self._whole_frame(depth, order, spent_us) if self.whole is not None else None
            if whole is not None:
                ranges[order], sigmas[order] = whole[0][order], whole[1][order]
                counts.sectors_refined += order.size
                counts.whole_frames += 1
            elif not self.budget_us - spent_us >= self.large_p99_us(n):  # escalate()'s budget test for all of them: not all fit
                order = unsure[np.argsort(-scores[unsure], kind="stable")]
                while n and not escalate(float(scores[order[n - 1]]), threshold, spent_us, self.budget_us, self.large_p99_us(n))[0]:
                    n -= 1
            if n and whole is None:
                chosen = order[:n]
                refined_ranges, refined_sigmas = self.large(depth, chosen)
                if math.isfinite(refined_ranges.dot(refined_sigmas)):  # one call: a NaN or inf anywhere makes the product not finite
                    ranges[chosen], sigmas[chosen] = refined_ranges, refined_sigmas
                    counts.sectors_refined += n
                else:
                    good = np.isfinite(refined_ranges) & np.isfinite(refined_sigmas)
                    counts.failed += int(n - good.sum())  # the large network's output was not finite there: the cheap answer stands
                    ranges[chosen[good]], sigmas[chosen[good]] = refined_ranges[good], refined_sigmas[good]
                    counts.sectors_refined += int(good.sum())
            skipped = order.size - n
            counts.sectors_budget += skipped
            stage = "cheap_budget" if skipped else "large"
        if stage == "large":
            counts.large += 1
        elif stage == "cheap_budget":
            counts.cheap_budget += 1
        else:
            counts.cheap_confident += 1
        self.frame_us.append((clock() - start) / 1e3)
        return ranges, sigmas, stage

    def _whole_frame(self, depth: np.ndarray, order: np.ndarray, spent_us: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The whole large model's answer when it is the cheaper way to every unsure sector and fits the budget; else None."""
        assert self.whole is not None and self.whole_p99_us is not None
        p99 = self.whole_p99_us()
        if self.large_median_us is not None and self.whole_median_us is not None:
            cheaper = self.whole_median_us() < self.large_median_us(order.size)
        else:
            cheaper = p99 < self.large_p99_us(order.size)
        if not cheaper or not self.budget_us - spent_us >= p99:  # every sector in order is unsure: escalate()'s budget test
            return None
        answer = self.whole(depth)
        if answer is None:  # not finite: the windows may still answer
            self.counts.failed += 1
        return answer
