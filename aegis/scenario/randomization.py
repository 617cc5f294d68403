"""Domain randomisation: one episode's physical and sensing parameters drawn from a scenario's ranges."""

from __future__ import annotations

import numpy as np

from aegis.scenario.schema import Randomization


def sample_randomization(randomization: Randomization, rng: np.random.Generator) -> dict[str, float]:
    """One draw per range, uniform in [low, high], keyed by range name, in declaration order.

    Every range draws exactly once (a fixed one too), so narrowing one range does not change the
    others' draws: the same generator seed gives the same episode parameters.
    """
    return {
        name: float(rng.uniform(getattr(randomization, name).low, getattr(randomization, name).high))
        for name in type(randomization).model_fields
    }
