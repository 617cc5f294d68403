"""A stereo depth camera's errors on a clean rendered depth image: range noise growing with z², disparity quantisation, holes.

A stereo camera (a RealSense D435, a ZED) measures disparity ``d = f b / z`` and inverts it, so its
errors are those of disparity carried through ``z = f b / d``:

* **range noise**: a sub-pixel disparity error sigma gives a depth error growing with the square of the
  depth, ``sigma_z = sigma_per_m2 * z**2`` (D435 at 848x480: about 2 % at 2 m; the default 0.005/m
  gives 2 cm at 2 m, 4.5 cm at 3 m);
* **quantisation**: disparity comes in discrete steps, so inverse depth is quantised to
  ``inverse_depth_step_per_m`` (0.002/m: 8 mm steps at 2 m, 3 cm at 4 m);
* **holes** (NaN, REP 117's invalid measurement): a fraction of pixels dropped at random
  (``dropout``: texture-less patches, specular spots), and pixels at depth edges, where one eye sees
  what the other cannot (the stereo shadow), dropped with ``edge_dropout`` probability when a
  horizontal neighbour differs by more than ``edge_jump_m``;
* beyond ``max_range_m`` the matcher finds nothing: no return, +inf (as where nothing was drawn).

The model is applied to the renderer's clean z-depth with a caller's generator, so the same seed gives
the same noisy image (:func:`noisy_depth`). Default off on the camera (``CameraParams.noise``); the
learned depth path's dataset (aegis.training.depth_dataset) trains on images with it.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from aegis.node import NodeParams

_Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
_NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class DepthNoiseParams(NodeParams):
    """Stereo depth errors: z² range noise, inverse-depth quantisation, random and edge holes, a range limit."""

    sigma_per_m2: _NonNegative = Field(0.005, description="range noise 1 sigma per metre squared of depth (1/m): sigma_z = this * z²")
    inverse_depth_step_per_m: _NonNegative = Field(0.002, description="inverse depth quantum (1/m); 0: none")
    dropout: _Fraction = Field(0.02, description="fraction of pixels lost at random (NaN)")
    edge_dropout: _Fraction = Field(0.5, description="probability that a pixel at a depth edge is lost (the stereo shadow)")
    edge_jump_m: _NonNegative = Field(0.3, description="a horizontal neighbour this much further or nearer makes a depth edge (m)")
    max_range_m: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(8.0, description="no return beyond this (m): +inf")


def noisy_depth(depth: np.ndarray, params: DepthNoiseParams, rng: np.random.Generator) -> np.ndarray:
    """A noisy copy (float32) of the clean z-depth image ``depth`` (m; +inf no return), drawn from ``rng``."""
    clean = np.asarray(depth, dtype=np.float64)
    finite = np.isfinite(clean)
    z = np.where(finite, clean, 0.0)
    noisy = z + rng.standard_normal(z.shape) * params.sigma_per_m2 * z * z
    if params.inverse_depth_step_per_m > 0.0:
        step = params.inverse_depth_step_per_m
        with np.errstate(divide="ignore"):
            inverse = np.round(1.0 / np.maximum(noisy, 1e-6) / step) * step
            noisy = np.where(inverse > 0.0, 1.0 / np.maximum(inverse, 1e-12), np.inf)
    noisy = np.where(finite & (noisy <= params.max_range_m), noisy, np.inf)
    lost = rng.random(z.shape) < params.dropout
    if params.edge_dropout > 0.0:
        capped = np.where(finite, clean, 1e3)
        jump = np.abs(np.diff(capped, axis=1)) > params.edge_jump_m
        edge = np.zeros(z.shape, dtype=bool)
        edge[:, 1:] |= jump
        edge[:, :-1] |= jump
        lost |= edge & (rng.random(z.shape) < params.edge_dropout)
    noisy[lost] = np.nan
    return noisy.astype(np.float32)
