"""A trained policy as an ONNX file carrying its contract: layouts, normalisation, scales, rate, kind, Lipschitz bound, producer.

The graph is :func:`aegis.inference.mlp.mlp_model` of the float32 weights (Gemm + Relu, Tanh out:
the ops the C export and numpy_forward support), so the same weights and contract always give
the same bytes. The observation is the robot kind's default layout (aegis.inference.observations)
unless chosen, each field normalised by the training data's mean and std; the action is the kind's
layout, scaled from the tanh output (by ACTION_HEADROOM x the expert's limits) and clipped to the limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import aegis
from aegis.inference.contract import ActionField, Normalization, ObservationField, PolicyContract, Producer
from aegis.inference.stamping import write_contract
from aegis.inference.observations import OBSERVATION_SOURCES
from aegis.training.expert import ExpertSetup

INPUT_NAME = "obs"
OUTPUT_NAME = "action"


def policy_contract(
    setup: ExpertSetup,
    mean: np.ndarray,
    std: np.ndarray,
    lipschitz_bound: float,
    command: str,
    seed: int,
    notes: str = "",
    plant: dict[str, Any] | None = None,
) -> PolicyContract:
    """The contract of a policy trained from ``setup``'s expert with observation statistics ``mean``/``std``.

    ``plant``: what it was trained on beyond the config (``dynamics`` and ``overlay``, recorded in the producer).
    """
    fields, offset = [], 0
    for name, size in setup.observation:
        source = OBSERVATION_SOURCES[name]
        part = slice(offset, offset + size)
        offset += size
        fields.append(
            ObservationField(
                name=name,
                size=size,
                unit=source.unit,
                description=source.description,
                normalization=Normalization(mean=_values(mean[part]), std=_values(std[part])),
            )
        )
    actions, offset = [], 0
    for spec in setup.action:
        part = slice(offset, offset + spec.size)
        offset += spec.size
        scale, limit = setup.action_scale[part], setup.action_limit[part]
        actions.append(
            ActionField(name=spec.name, size=spec.size, unit=spec.unit, scale=_values(scale), low=_values(-limit), high=_values(limit))
        )
    return PolicyContract(
        robot_kind=setup.robot_kind,
        control_rate_hz=setup.rate_hz,
        history_length=1,
        observation=tuple(fields),
        action=tuple(actions),
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        lipschitz_bound=float(lipschitz_bound),
        producer=Producer(
            name="aegis train", version=aegis.__version__, command=command, seed=seed, expert=setup.type_name, notes=notes, **(plant or {})
        ),
        description=f"MLP imitating {setup.type_name} ({setup.robot_kind}), behaviour cloning with DAgger under a Lipschitz bound",
    )


def export_policy(weights: Sequence[tuple[np.ndarray, np.ndarray]], contract: PolicyContract, path: str | Path) -> Path:
    """Write the MLP with ``contract`` in its metadata to ``path`` (folders made); returns the path."""
    import onnx

    from aegis.inference.mlp import mlp_model

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = mlp_model(weights, hidden_activation="Relu", output_activation="Tanh", input_name=INPUT_NAME, output_name=OUTPUT_NAME)
    model.producer_name = "aegis train"
    model.producer_version = aegis.__version__
    write_contract(model, contract)
    onnx.save(model, str(path))
    return path


def _values(array: np.ndarray) -> float | tuple[float, ...]:
    """One number per element, rounded to float32 precision so the JSON is short and stable."""
    values = tuple(float(np.float32(v)) for v in np.atleast_1d(array))
    return values[0] if len(values) == 1 else values
