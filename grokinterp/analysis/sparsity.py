"""Sparsity of Fourier norms: the Gini coefficient (Hurley and Rickard 2009)."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def gini(values: Float[Tensor, "... n"]) -> Float[Tensor, "..."]:
    """Gini coefficient of non-negative vectors along the last axis.

    G = 1 - 2 * sum_i (c_(i) / ||c||_1) * (N - i + 1/2) / N with c sorted ascending
    and i = 1..N. It is 0 for a flat vector and 1 - 1/N for a single spike.

    grokinterp applies it to per-frequency norms (cos and sin combined, constant
    dropped; see ``fourier.per_freq_norms``), so it measures how few frequencies a
    weight matrix uses. The paper does not publish code for this measure.

    Raises:
        ValueError: if any value is negative or a vector is all zero.
    """
    if (values < 0).any():
        raise ValueError("gini needs non-negative values")
    total = values.sum(dim=-1, keepdim=True)
    if (total == 0).any():
        raise ValueError("gini is undefined for an all-zero vector")
    n = values.shape[-1]
    c = values.sort(dim=-1).values / total
    i = torch.arange(1, n + 1, dtype=values.dtype, device=values.device)
    return 1 - 2 * (c * (n - i + 0.5) / n).sum(dim=-1)
