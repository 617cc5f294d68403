"""Lipschitz bounds of an MLP policy (ReLU hidden layers, tanh output): certified from the weights, empirical from samples.

For f(x) = tanh(W_n relu(... relu(W_1 x + b_1) ...) + b_n), every activation is 1-Lipschitz, so

    L <= prod_i ||W_i||_2                 (certified: the product of the layers' spectral norms)

in the network's own units (normalised observation -> raw action in [-1, 1]). In physical units the
policy is x_phys -> S f(G (x_phys - mean)) with G = diag(1 / std) and S = diag(action scale); folding
G into W_1 and S into W_n gives the certified bound of that map with the same product. The
empirical bound is a lower bound on the true constant: the largest Jacobian spectral norm at
sampled points, and the largest ||f(x) - f(y)|| / ||x - y|| over sampled pairs. certified >= true >=
empirical always holds; the gap says how conservative the product is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Weights = Sequence[tuple[np.ndarray, np.ndarray]]
"""(W (out, in), b (out,)) per layer, as :func:`aegis.inference.mlp.mlp_model` takes them."""


def spectral_norms(weights: Weights) -> list[float]:
    """The largest singular value of each layer's W."""
    return [float(np.linalg.norm(np.asarray(w, dtype=np.float64), 2)) for w, _ in weights]


def certified_bound(weights: Weights, input_gain: np.ndarray | None = None, output_scale: np.ndarray | None = None) -> float:
    """prod ||W_i||_2, with diag(input_gain) folded into the first layer and diag(output_scale) into the last when given."""
    layers = [np.asarray(w, dtype=np.float64) for w, _ in weights]
    if input_gain is not None:
        layers[0] = layers[0] * np.asarray(input_gain, dtype=np.float64)[None, :]
    if output_scale is not None:
        layers[-1] = np.asarray(output_scale, dtype=np.float64)[:, None] * layers[-1]
    return float(math.prod(np.linalg.norm(w, 2) for w in layers))


def forward(weights: Weights, x: np.ndarray) -> np.ndarray:
    """f(x) for a batch (B, in): ReLU hidden layers, tanh output, float64."""
    h = np.asarray(x, dtype=np.float64)
    for i, (w, b) in enumerate(weights):
        z = h @ np.asarray(w, dtype=np.float64).T + np.asarray(b, dtype=np.float64)
        h = np.tanh(z) if i == len(weights) - 1 else np.maximum(z, 0.0)
    return h


def jacobians(weights: Weights, x: np.ndarray) -> np.ndarray:
    """df/dx at each row of ``x`` (B, in): (B, out, in).

    Reverse mode: the forward pass keeps each layer's slope, then the output rows are carried back
    through the layers as one (B * out, width) @ W product per layer (BLAS), a few outputs against
    the many inputs and hidden units a forward-mode product carries (4x fewer flops at 12-64-64-3).
    """
    h = np.asarray(x, dtype=np.float64)
    layers = [np.asarray(w, dtype=np.float64) for w, _ in weights]
    slopes = []
    for i, (w, (_, b)) in enumerate(zip(layers, weights)):
        z = h @ w.T + np.asarray(b, dtype=np.float64)
        last = i == len(layers) - 1
        h = np.tanh(z) if last else np.maximum(z, 0.0)
        slopes.append(1.0 - h * h if last else (z > 0.0).astype(np.float64))
    rows, n_out = h.shape
    back = slopes[-1][:, :, None] * layers[-1][None]  # (B, out, width): d f / d (last hidden layer)
    for w, slope in zip(layers[-2::-1], slopes[-2::-1]):
        back = (back * slope[:, None, :]).reshape(rows * n_out, -1) @ w
        back = back.reshape(rows, n_out, -1)
    return back


JACOBIAN_CHUNK = 2048
"""Rows whose Jacobians are formed at once: their (rows, width, in) float64 intermediates stay a few MB, not 250 MB at 40,000 states,
which page-faulted and cost 11 s of CPU per bound on the development machine (0.1-0.3 s in chunks)."""


@dataclass(frozen=True)
class EmpiricalBound:
    """Largest Jacobian spectral norm at the sampled points, and largest output/input distance ratio over sampled pairs."""

    gradient: float
    ratio: float
    points: int
    pairs: int

    @property
    def value(self) -> float:
        return max(self.gradient, self.ratio)


def empirical_bound(
    weights: Weights,
    points: np.ndarray,
    rng: np.random.Generator,
    pairs: int = 20000,
    input_gain: np.ndarray | None = None,
    output_scale: np.ndarray | None = None,
) -> EmpiricalBound:
    """Empirical Lipschitz constant over ``points`` (normalised inputs, (B, in)): Jacobians there, and pairs of them.

    Half the pairs are two random points, half a point and a near neighbour (0.01 to 0.1 away in
    normalised units), where the local slope shows. With ``input_gain``/``output_scale`` the
    numbers are for the physical map (distances in physical units on both sides).
    """
    return empirical_bounds(weights, points, rng, [(input_gain, output_scale)], pairs)[0]


def empirical_bounds(
    weights: Weights,
    points: np.ndarray,
    rng: np.random.Generator,
    maps: Sequence[tuple[np.ndarray | None, np.ndarray | None]],
    pairs: int = 20000,
) -> list[EmpiricalBound]:
    """:func:`empirical_bound` for several (input_gain, output_scale) maps of one network at once, on the same points and
    pairs: the Jacobians and the pairs' forward passes, the expensive part, are computed once for all of them."""
    points = np.asarray(points, dtype=np.float64)
    n_in, n_out = points.shape[1], len(weights[-1][1])
    scaled = [
        (np.ones(n_in) if gain is None else np.asarray(gain, dtype=np.float64), np.ones(n_out) if scale is None else np.asarray(scale, dtype=np.float64))
        for gain, scale in maps
    ]
    gradients = [0.0] * len(scaled)
    for start in range(0, len(points), JACOBIAN_CHUNK):  # in chunks: the whole batch's (B, width, in) arrays were 250 MB each
        jac = jacobians(weights, points[start : start + JACOBIAN_CHUNK])
        for k, (gain, scale) in enumerate(scaled):
            gradients[k] = max(gradients[k], float(np.linalg.norm(scale[None, :, None] * jac * gain[None, None, :], ord=2, axis=(1, 2)).max()))
    half = pairs // 2
    a = points[rng.integers(len(points), size=pairs)]
    b = np.concatenate([
        points[rng.integers(len(points), size=half)],
        a[half:] + rng.standard_normal((pairs - half, points.shape[1])) * rng.uniform(0.01, 0.1, size=(pairs - half, 1)),
    ])
    difference = forward(weights, a) - forward(weights, b)
    bounds = []
    for gradient, (gain, scale) in zip(gradients, scaled):
        distance_in = np.linalg.norm((a - b) / gain, axis=1)  # physical distance: normalised / gain
        distance_out = np.linalg.norm(difference * scale, axis=1)
        keep = distance_in > 1e-9
        ratio = float((distance_out[keep] / distance_in[keep]).max()) if keep.any() else 0.0
        bounds.append(EmpiricalBound(gradient, ratio, len(points), int(keep.sum())))
    return bounds
