"""Restricted and excluded logits (Nanda et al. 2023, §5.1; REFERENCE.md §2).

The logits of the whole grid form a matrix L of shape [p * p, p]: rows are the inputs
(a, b) in row-major order, columns the output classes c. For a key frequency k the
input-axis directions are u_cos,k[a, b] ∝ cos(w_k (a + b)) and
u_sin,k[a, b] ∝ sin(w_k (a + b)), unit vectors of R^{p^2}; P_k(L) = u u^T L projects
the input axis onto them and leaves the output axis alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor


@lru_cache(maxsize=32)
def _directions(p: int, freqs: tuple[int, ...]) -> Tensor:
    a = torch.arange(p, dtype=torch.float64).repeat_interleave(p)
    b = torch.arange(p, dtype=torch.float64).repeat(p)
    cols = []
    for k in freqs:
        if not 1 <= k <= p // 2:
            raise ValueError(f"key frequency {k} is outside 1..{p // 2} for p = {p}")
        angle = 2 * math.pi * k * (a + b) / p
        cols.append(torch.cos(angle))
        if 2 * k != p:  # sin(pi (a + b)) is zero on the grid: no sin direction.
            cols.append(torch.sin(angle))
    if not cols:
        return torch.zeros(p * p, 0, dtype=torch.float64)
    u = torch.stack(cols, dim=1)
    return u / u.norm(dim=0, keepdim=True)


def key_directions(p: int, freqs: Sequence[int]) -> Float[Tensor, "pair direction"]:
    """Orthonormal columns u_cos,k and u_sin,k for each k in ``freqs`` (float64)."""
    return _directions(p, tuple(sorted({int(k) for k in freqs}))).clone()


def _key_projection(logits: Tensor, p: int, freqs: Sequence[int]) -> Tensor:
    u = _directions(p, tuple(sorted({int(k) for k in freqs}))).to(logits.device, logits.dtype)
    return u @ (u.T @ logits)


def restricted_logits(
    logits: Float[Tensor, "pair c"], p: int, freqs: Sequence[int]
) -> Float[Tensor, "pair c"]:
    """Mean over inputs plus the key-frequency projections: what the circuit alone gives.

    L_res = mean_{a,b}(L) + sum_k [P_cos,k(L) + P_sin,k(L)].
    """
    return logits.mean(dim=0, keepdim=True) + _key_projection(logits, p, freqs)


def excluded_logits(
    logits: Float[Tensor, "pair c"], p: int, freqs: Sequence[int]
) -> Float[Tensor, "pair c"]:
    """The logits with the key-frequency projections removed (no mean correction).

    L_exc = L - sum_k [P_cos,k(L) + P_sin,k(L)].
    """
    return logits - _key_projection(logits, p, freqs)


def cross_entropy(logits: Float[Tensor, "batch c"], labels: Int[Tensor, " batch"]) -> float:
    """Mean cross-entropy computed in float64 (float32 underflows near 1e-7 loss)."""
    return F.cross_entropy(logits.double(), labels).item()


def accuracy(logits: Float[Tensor, "batch c"], labels: Int[Tensor, " batch"]) -> float:
    return (logits.argmax(dim=-1) == labels).double().mean().item()
