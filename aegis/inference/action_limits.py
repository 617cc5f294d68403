"""An action's limits moved before its scale: bounds on the network's raw output whose scaled value provably stays in [low, high].

The contract's action is ``clip(raw * scale + offset, low, high)``. A physical graph computes it as
``clip(raw, raw_low, raw_high) * scale + offset`` instead: the limits then often become one scalar
pair for every element (one ``Clip`` node rather than a ``Max`` and a ``Min``), and a side whose
limit the network's output can never reach (a ``tanh`` output scaled inside its limits) needs no op
at all. Each op costs onnxruntime about 0.2-0.3 µs on a small policy, more than its arithmetic.

The raw bounds are chosen in the graph's float type so that the float result, rounded after the
multiply and again after the add as onnxruntime and the C export compute it, never leaves
``[low, high]``: rounding is monotone, so checking the bound itself suffices, and a bound whose
scaled value rounds outside is moved one float step inwards until it does not. (When no float of
the type lies in ``[low, high]``, e.g. ``low == high == 0.1`` in float32, the nearest is used.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RawLimits:
    """Bounds on the raw output, per element in the graph's float type (None: no element needs that side).

    Where an element needs no bound on a side, its entry is the type's largest finite value (with the
    sign of that side): it changes only an infinite raw value. ``scalar_low``/``scalar_high`` is the
    one value that serves every element on that side (a ``Clip``), None when the elements differ.
    """

    low: np.ndarray | None
    high: np.ndarray | None
    scalar_low: float | None
    scalar_high: float | None

    @property
    def needed(self) -> bool:
        return self.low is not None or self.high is not None

    @property
    def uniform(self) -> bool:
        """One Clip with scalar bounds does it (every present side has a scalar)."""
        return (self.low is None or self.scalar_low is not None) and (self.high is None or self.scalar_high is not None)


def scaled(raw: np.ndarray, scale: np.ndarray, offset: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``raw * scale + offset`` in ``dtype``, rounded after each op (no fused multiply-add), as the graph computes it."""
    t = np.dtype(dtype).type
    with np.errstate(over="ignore", invalid="ignore"):
        return (np.asarray(raw, dtype=t) * np.asarray(scale, dtype=t)) + np.asarray(offset, dtype=t)


def raw_limits(
    scale: np.ndarray,
    offset: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    dtype: np.dtype,
    raw_range: tuple[float, float] = (-np.inf, np.inf),
) -> RawLimits:
    """The raw bounds for physical limits [low, high] (see the module); ``raw_range`` is what the network can output at all."""
    dtype = np.dtype(dtype)
    t, big = dtype.type, np.finfo(dtype).max
    scale, offset = np.asarray(scale, np.float64), np.asarray(offset, np.float64)
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    n = scale.size
    lo_raw, hi_raw = np.full(n, raw_range[0]), np.full(n, raw_range[1])
    positive = scale > 0
    ends = scaled(np.stack([lo_raw, hi_raw]), scale, offset, dtype).astype(np.float64)
    phys_min, phys_max = np.where(positive, ends[0], ends[1]), np.where(positive, ends[1], ends[0])
    need_phys_low = np.isfinite(low) & ~(phys_min >= low)
    need_phys_high = np.isfinite(high) & ~(phys_max <= high)
    # a raw low bound keeps the physical value above low (scale > 0) or below high (scale < 0); a raw high bound the other way
    need_raw_low = np.where(positive, need_phys_low, need_phys_high)
    need_raw_high = np.where(positive, need_phys_high, need_phys_low)
    # The raw low bound is the smallest float whose scaled value is still >= low (scale > 0) or <= high (scale < 0);
    # the raw high bound the largest whose scaled value is <= high (scale > 0) or >= low (scale < 0). Both conditions
    # are monotone in the raw value (rounding is), so a bisection over the floats in order finds the exact bound.
    def at_least_low(values: np.ndarray) -> np.ndarray:
        return scaled(values, scale, offset, dtype).astype(np.float64) >= low

    def at_most_high(values: np.ndarray) -> np.ndarray:
        return scaled(values, scale, offset, dtype).astype(np.float64) <= high

    raw_low = _first(lambda r: np.where(positive, at_least_low(r), at_most_high(r)), dtype)
    raw_high = _last(lambda r: np.where(positive, at_most_high(r), at_least_low(r)), dtype)
    crossed = need_raw_low & need_raw_high & (raw_low > raw_high)  # no float of the type lies in [low, high]
    if crossed.any():
        middle = ((0.5 * (low + high) - offset) / scale).astype(t)
        raw_low, raw_high = np.where(crossed, middle, raw_low).astype(t), np.where(crossed, middle, raw_high).astype(t)
    raw_low = np.where(need_raw_low, raw_low, -big).astype(t)
    raw_high = np.where(need_raw_high, raw_high, big).astype(t)
    return RawLimits(
        raw_low if need_raw_low.any() else None,
        raw_high if need_raw_high.any() else None,
        _scalar(raw_low, need_raw_low, lo_raw, lambda bound, edge: edge >= bound),
        _scalar(raw_high, need_raw_high, hi_raw, lambda bound, edge: edge <= bound),
    )


def _scalar(bounds: np.ndarray, needed: np.ndarray, edges: np.ndarray, harmless) -> float | None:
    """The one bound every element can share: the needed ones agree, and it never acts on the others' raw range."""
    if not needed.any():
        return None
    values = np.unique(bounds[needed])
    if values.size != 1 or not np.all(harmless(values[0], edges[~needed])):
        return None
    return float(values[0])


_INT = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def _keys(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Integers in the order of the floats (the bits, with the negative ones reversed); the map is its own inverse."""
    bits = np.ascontiguousarray(values, dtype=dtype).view(_INT[dtype]).astype(np.int64)
    return np.where(bits < 0, np.iinfo(_INT[dtype]).min - bits, bits)


def _floats(keys: np.ndarray, dtype: np.dtype) -> np.ndarray:
    bits = np.where(keys < 0, np.iinfo(_INT[dtype]).min - keys, keys).astype(_INT[dtype])
    return bits.view(dtype)


def _first(condition, dtype: np.dtype) -> np.ndarray:
    """Per element, the smallest finite float of ``dtype`` where ``condition`` holds (the largest finite float if nowhere)."""
    big = np.finfo(dtype).max
    n = condition(np.zeros(1, dtype)).size
    low, high = np.full(n, int(_keys(np.array([-big]), dtype)[0])), np.full(n, int(_keys(np.array([big]), dtype)[0]))
    while np.any(low < high):  # invariant: the answer is in [low, high]
        middle = low + ((high.astype(np.uint64) - low.astype(np.uint64)) // 2).astype(np.int64)  # no int64 overflow
        holds = condition(_floats(middle, dtype))
        high, low = np.where(holds, middle, high), np.where(holds, low, middle + 1)
    return _floats(low, dtype)


def _last(condition, dtype: np.dtype) -> np.ndarray:
    """Per element, the largest finite float of ``dtype`` where ``condition`` holds (the smallest finite float if nowhere)."""
    first_not = _keys(_first(lambda r: ~condition(r), dtype), dtype)
    big = np.finfo(dtype).max
    holds_at_top = condition(np.full(first_not.size, big, dtype))
    return _floats(np.where(holds_at_top, first_not, np.maximum(first_not - 1, _keys(np.array([-big]), dtype)[0])), dtype)
