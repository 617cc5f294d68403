"""Int8 weights for the C export: symmetric, one scale per output channel, dequantized after a float sum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QMAX = 127  # symmetric range [-127, 127]: no -128, so negating a weight never overflows


@dataclass(frozen=True, eq=False)
class QuantizedWeight:
    """weight[i, j] ~= values[i, j] * scale[j] (values int8 [n_in, n_out], scale float32 [n_out])."""

    values: np.ndarray
    scale: np.ndarray

    def dequantized(self) -> np.ndarray:
        return (self.values.astype(np.float32) * self.scale[np.newaxis, :]).astype(np.float32)


def quantize_per_output_channel(weight: np.ndarray) -> QuantizedWeight:
    """Symmetric int8 per output channel (column j of an [n_in, n_out] weight): scale_j = max|w_.j| / 127.

    A column of zeros gets scale 1 (all its values are 0). Rounding is to nearest, ties to even.
    """
    weight = np.asarray(weight, dtype=np.float32)
    peak = np.max(np.abs(weight), axis=0)
    scale = np.where(peak > 0, peak / np.float32(QMAX), np.float32(1.0)).astype(np.float32)
    values = np.clip(np.rint(weight / scale[np.newaxis, :]), -QMAX, QMAX).astype(np.int8)
    return QuantizedWeight(values, scale)
