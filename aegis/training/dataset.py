"""Imitation data: observation frames and expert actions in physical units, aggregated over episodes, with their normalisation.

The network sees normalised observations ``(x - mean) / std`` (statistics of the data it is trained
on, written into the contract) and outputs the action divided by its scale,
so the tanh output's +-1 is a little more than the expert's full range (aegis.training.expert.ACTION_HEADROOM).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_STD = 0.05
"""Floor of a normalisation std (physical units): a field that hardly varies in the data is not blown up."""


@dataclass(frozen=True)
class Dataset:
    """``observations`` (n, frame_size) and ``actions`` (n, action_size), physical units, rows in collection order."""

    observations: np.ndarray
    actions: np.ndarray

    def __len__(self) -> int:
        return int(self.observations.shape[0])

    @staticmethod
    def empty(frame_size: int, action_size: int) -> Dataset:
        return Dataset(np.zeros((0, frame_size)), np.zeros((0, action_size)))

    @staticmethod
    def concat(parts: Sequence[Dataset]) -> Dataset:
        """The rows of every part, in order (DAgger's aggregation)."""
        return Dataset(np.concatenate([p.observations for p in parts]), np.concatenate([p.actions for p in parts]))

    def normalization(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) per observation element; std floored at MIN_STD."""
        return self.observations.mean(axis=0), np.maximum(self.observations.std(axis=0), MIN_STD)


def imitation_error(predicted: np.ndarray, expert: np.ndarray, limit: np.ndarray) -> float:
    """Root-mean-square difference per action element, as a fraction of the action's limit (0: the expert's actions)."""
    return float(np.sqrt(np.mean(np.square((predicted - expert) / limit))))
