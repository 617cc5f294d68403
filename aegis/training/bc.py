"""Behaviour cloning of an MLP policy under a Lipschitz constraint: every layer's spectral norm projected to a bound after each step.

As in Al Makdah, Krishnan and Pasqualetti, "Learning Lipschitz Feedback Policies from Expert
Demonstrations: Closed-Loop Guarantees, Robustness and Generalization" (IEEE OJ-CSYS 2022): the
imitation loss (mean squared error to the expert's action, in units of the action's scale) is
minimised over networks whose Lipschitz constant is bounded. The bound is kept by projection:
after every optimiser step each layer's W is scaled down to spectral norm ``layer_bound`` when it
exceeds it (W <- W * layer_bound / ||W||_2, the nearest such matrix in the spectral norm along
W's own direction), so the product of the layers' norms, which bounds the network's constant
(ReLU and tanh are 1-Lipschitz), never exceeds ``layer_bound ** layers``.

Deterministic: torch.manual_seed, deterministic algorithms, one thread, a seeded shuffle; the same
data and seed give bit-identical weights. torch is imported here only (the optional ``[train]`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

PROJECTION_MARGIN = 1e-5
"""Layers are projected to bound x (1 - margin): float32 rounding never leaves one above the bound."""


@dataclass(frozen=True)
class BcSettings:
    """Network and optimiser: hidden layer widths, total Lipschitz bound of the network map, epochs, batch, learning rate."""

    hidden: tuple[int, ...] = (64, 64)
    lipschitz: float = 4.0
    epochs: int = 40
    batch_size: int = 256
    learning_rate: float = 2e-3

    @property
    def layer_bound(self) -> float:
        """Each layer's spectral-norm bound: the total bound's (layers)-th root."""
        return float(self.lipschitz ** (1.0 / (len(self.hidden) + 1)))


@dataclass(frozen=True)
class BcResult:
    """Float32 weights [(W (out, in), b (out,)), ...] and the last epoch's mean training loss."""

    weights: list[tuple[np.ndarray, np.ndarray]]
    final_loss: float


def train_bc(
    inputs: np.ndarray,
    targets: np.ndarray,
    settings: BcSettings,
    seed: int,
    progress: Callable[[int, float], None] | None = None,
) -> BcResult:
    """Fit tanh-output MLP to ``targets`` (raw actions in [-1, 1]) from normalised ``inputs``; ``progress(epoch, loss)`` per epoch."""
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
        y = torch.from_numpy(np.ascontiguousarray(np.clip(targets, -1.0, 1.0), dtype=np.float32))
        model = _mlp(torch, x.shape[1], settings.hidden, y.shape[1])
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        bound = settings.layer_bound * (1.0 - PROJECTION_MARGIN)
        project(linears, bound)
        optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
        steps_per_epoch = max(1, -(-len(x) // settings.batch_size))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=settings.epochs * steps_per_epoch)
        shuffle = torch.Generator().manual_seed(seed)
        loss_value = float("nan")
        for epoch in range(settings.epochs):
            order = torch.randperm(len(x), generator=shuffle)
            total = 0.0
            for start in range(0, len(x), settings.batch_size):
                batch = order[start : start + settings.batch_size]
                loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                project(linears, bound)
                total += float(loss.detach()) * len(batch)
            loss_value = total / len(x)
            if progress is not None:
                progress(epoch + 1, loss_value)
        weights = [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in linears]
    finally:
        torch.set_num_threads(threads)
    return BcResult(weights, loss_value)


def project(linears: Sequence, bound: float) -> None:
    """Scale each layer's weight down to spectral norm ``bound`` where it is above it (in place, no gradient)."""
    import torch

    with torch.no_grad():
        for layer in linears:
            norm = torch.linalg.matrix_norm(layer.weight, ord=2)
            if norm > bound:
                layer.weight.mul_(bound / norm)


def _mlp(torch, n_in: int, hidden: Sequence[int], n_out: int):  # noqa: ANN001, ANN202 - torch is imported lazily
    layers: list = []
    previous = n_in
    for width in hidden:
        layers += [torch.nn.Linear(previous, width), torch.nn.ReLU()]
        previous = width
    layers += [torch.nn.Linear(previous, n_out), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers)
