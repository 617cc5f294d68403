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

A step of this small network is mostly overhead around little arithmetic, so the loop cuts the
overhead and keeps the arithmetic: each epoch's rows are gathered once (batches are slices), the
layers are called without their modules, the parameters are views of flat tensors that Adam updates
with one call per operation (and whose gradients backward fills in place), Adam is called as torch's
functional Adam (:func:`_adam_step`), and the norm is taken straight from svdvals. The weights are
the bits the plain loop (modules, Adam over each parameter, a gather per batch) writes:
tests/test_training.py keeps that loop and compares.
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
    batch_size: int = 512
    """512 since the step's cost is mostly per-step overhead: 0.59x the CPU per epoch of 256, a policy that flies alike
    (docs/policies-and-training.md#batch-512-is-the-default-now); the shipped models' commands name the 256 they were trained with."""
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
        flats, layers = _share_buffers(torch, linears)
        optimiser = torch.optim.Adam(flats, lr=settings.learning_rate)
        steps_per_epoch = max(1, -(-len(x) // settings.batch_size))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=settings.epochs * steps_per_epoch)
        shuffle = torch.Generator().manual_seed(seed)
        loss_value = float("nan")
        for epoch in range(settings.epochs):
            order = torch.randperm(len(x), generator=shuffle)
            x_epoch, y_epoch = x.index_select(0, order), y.index_select(0, order)  # the batches are then slices, not gathers
            total = 0.0
            for start in range(0, len(x), settings.batch_size):
                batch_x, batch_y = x_epoch[start : start + settings.batch_size], y_epoch[start : start + settings.batch_size]
                loss = torch.nn.functional.mse_loss(_forward(torch, layers, batch_x), batch_y)
                for flat in flats:
                    flat.grad.zero_()
                loss.backward()  # into the flat gradients, through the parameters' views of them (0 + g is g)
                _adam_step(torch, optimiser)
                schedule.step()
                project(linears, bound)
                total += loss.item() * len(batch_x)
            loss_value = total / len(x)
            if progress is not None:
                progress(epoch + 1, loss_value)
        weights = [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in linears]
    finally:
        torch.set_num_threads(threads)
    return BcResult(weights, loss_value)


def _adam_step(torch, optimiser) -> None:  # noqa: ANN001 - torch is imported lazily
    """``optimiser.step()`` of an Adam with its default options, through torch's functional Adam on the optimiser's own state.

    The same single-tensor arithmetic (the method passes these very arguments) without the method's
    per-call wrapping (profiling scope, hooks, state checks), which costs as much as the arithmetic of
    this network. The first step goes through the method: it creates the state, and the learning-rate
    schedule sees that the optimiser stepped.
    """
    from torch.optim.adam import adam

    if not optimiser.state:
        optimiser.step()
        return
    group = optimiser.param_groups[0]
    params = group["params"]
    states = [optimiser.state[p] for p in params]
    beta1, beta2 = group["betas"]
    with torch.no_grad():
        adam(  # the arguments torch >= 2.2 takes; the rest (fused, grad_scale, has_complex, ...) keep their defaults, as for this optimiser
            params, [p.grad for p in params], [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [], [s["step"] for s in states],
            foreach=False, capturable=False, differentiable=False, amsgrad=False, beta1=beta1, beta2=beta2, lr=group["lr"],
            weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
        )  # fmt: skip


def project(linears: Sequence, bound: float) -> None:
    """Scale each layer's weight down to spectral norm ``bound`` where it is above it (in place, no gradient)."""
    import torch

    with torch.no_grad():
        for layer in linears:
            norm = torch.linalg.svdvals(layer.weight)[0]  # matrix_norm(ord=2) is this, the largest, with more steps around it
            if norm > bound:
                layer.weight.mul_(bound / norm)


VECTOR_BLOCK = 64
"""Elements per block of torch's vectorised element-wise loops, rounded up (2 x 16 floats with AVX-512, 2 x 8 with AVX2)."""


def _share_buffers(torch, linears: Sequence):  # noqa: ANN001, ANN202 - torch is imported lazily
    """Flat tensors each holding several layers' weights and biases in turn; the layers' parameters become views of them.

    Adam then updates a few tensors with one call per operation instead of one per parameter. The
    arithmetic is element-wise and the same, and so are the bits, as long as each element falls in the
    same part of torch's loops as it did in its own tensor: the vectorised body (blocks of 2 vectors)
    or the scalar tail, which may round differently (a fused multiply-add in one, not the other). A
    parameter is therefore joined to the next only while its size is a multiple of :data:`VECTOR_BLOCK`
    (in the 12-64-64-3 policy all are, up to the last bias: one tensor; a view then also starts on a
    256-byte boundary). On the development machine one tensor for any widths gave the same bits too;
    the split costs nothing and does not rely on that.
    Each flat tensor's gradient is a flat buffer too, whose views are the parameters' gradients: backward
    adds into them (zeroed before each step: 0 + g is g), and Adam reads them with no copy.
    Returns the flat leaf tensors and [(W, b), ...] per layer.
    """
    parameters = [(m, name) for m in linears for name in ("weight", "bias")]
    runs: list[list[tuple]] = [[]]
    for m, name in parameters:
        runs[-1].append((m, name))
        if getattr(m, name).numel() % VECTOR_BLOCK:
            runs.append([])
    flats, views = [], {}
    for run in (r for r in runs if r):
        flat = torch.cat([getattr(m, name).detach().reshape(-1) for m, name in run]).requires_grad_(True)
        flat.grad = torch.zeros_like(flat)
        start = 0
        for m, name in run:
            size = getattr(m, name).numel()
            view = torch.nn.Parameter(flat.detach()[start : start + size].view_as(getattr(m, name)))
            view.grad = flat.grad[start : start + size].view_as(view)
            setattr(m, name, view)
            views[id(m), name] = view
            start += size
        flats.append(flat)
    return flats, [(views[id(m), "weight"], views[id(m), "bias"]) for m in linears]


def _forward(torch, layers: Sequence, x):  # noqa: ANN001, ANN202 - torch is imported lazily
    """The MLP of :func:`_mlp` called without its modules' overhead: the same operations (linear, ReLU, tanh) in the same order."""
    for weight, bias in layers[:-1]:
        x = torch.relu(torch.nn.functional.linear(x, weight, bias))
    weight, bias = layers[-1]
    return torch.tanh(torch.nn.functional.linear(x, weight, bias))


def _mlp(torch, n_in: int, hidden: Sequence[int], n_out: int):  # noqa: ANN001, ANN202 - torch is imported lazily
    layers: list = []
    previous = n_in
    for width in hidden:
        layers += [torch.nn.Linear(previous, width), torch.nn.ReLU()]
        previous = width
    layers += [torch.nn.Linear(previous, n_out), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers)
