"""Algorithmic tasks and their train/test splits.

Only modular addition exists today (Nanda et al. 2023, arXiv 2301.05217, and
``REFERENCE.md`` §1): inputs are the tokens ``[a, b, =]`` with ``=`` the token id
``p``, the label is ``(a + b) mod p``, and the dataset is the whole ``p x p`` grid.
Row ``i`` of the grid is the pair ``(a, b) = (i // p, i % p)``; every analysis relies
on that order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Int
from torch import Tensor

TASKS = ("add",)


@dataclass(frozen=True)
class TaskConfig:
    """What the network learns and how the grid is split.

    Args:
        name: the operation; only ``"add"`` today.
        p: the modulus; any integer >= 3 (the paper uses the prime 113).
        train_frac: fraction of the p * p pairs used for training, in (0, 1).
        data_seed: seed of the shuffle that draws the training pairs.
    """

    name: str = "add"
    p: int = 113
    train_frac: float = 0.3
    data_seed: int = 598

    def __post_init__(self) -> None:
        if self.name not in TASKS:
            raise ValueError(f"unknown task {self.name!r}; known tasks: {', '.join(TASKS)}")
        if not isinstance(self.p, int) or self.p < 3:
            raise ValueError(f"p must be an integer >= 3, got {self.p!r}")
        if not 0.0 < self.train_frac < 1.0:
            raise ValueError(f"train_frac must lie strictly between 0 and 1, got {self.train_frac}")
        n_train = int(round(self.train_frac * self.p**2))
        if n_train < 1 or n_train >= self.p**2:
            raise ValueError(
                f"train_frac {self.train_frac} leaves {n_train} of {self.p**2} pairs for "
                "training; both train and test need at least one pair"
            )

    @property
    def n_train(self) -> int:
        return int(round(self.train_frac * self.p**2))


@dataclass(frozen=True)
class Split:
    """Indices into the p * p grid (row-major over (a, b))."""

    train: Int[Tensor, " n_train"]
    test: Int[Tensor, " n_test"]


def grid_tokens(p: int) -> Int[Tensor, "pair 3"]:
    """All p * p inputs ``[a, b, p]``, row ``a * p + b``."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    eq = torch.full_like(a, p)
    return torch.stack([a, b, eq], dim=1)


def grid_labels(p: int, name: str = "add") -> Int[Tensor, " pair"]:
    """Correct answers for every grid row."""
    if name != "add":
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return (a + b) % p


def make_split(cfg: TaskConfig) -> Split:
    """A seeded shuffle of all pairs; the first ``n_train`` are the training set.

    numpy's PCG64 generator is used so that the split does not depend on the torch
    version. Both index sets are sorted, which changes nothing for full-batch training.
    """
    perm = np.random.default_rng(cfg.data_seed).permutation(cfg.p**2)
    train = np.sort(perm[: cfg.n_train])
    test = np.sort(perm[cfg.n_train :])
    return Split(torch.from_numpy(train), torch.from_numpy(test))
