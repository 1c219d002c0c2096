"""Coefficients of the logits along cos(w(a + b - c)) (Nanda et al. 2023, §4.2).

The algorithm the paper reverse-engineers computes logits proportional to
sum_k cos(w_k (a + b - c)). For each frequency k, C_k[a, b, c] = cos(w_k (a + b - c))
scaled to unit Frobenius norm; the coefficient is alpha_k = <C_k, L>. The p^3 x (p-1)/2
tensor of all C_k (about 3 GB at p = 113) is never built: C_k depends on (a, b) only
through s = (a + b) mod p, so L is first summed into M[s, c] (p x p) and
alpha_k = (cos_k^T M cos_k + sin_k^T M sin_k) / ||C_k||, a p x p contraction.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from grokinterp.fourier import n_freqs


def sum_by_residue(logits: Float[Tensor, "pair c"], p: int) -> Float[Tensor, "s c"]:
    """M[s, c] = sum over the inputs with (a + b) mod p = s of L[(a, b), c]."""
    a = torch.arange(p, device=logits.device).repeat_interleave(p)
    b = torch.arange(p, device=logits.device).repeat(p)
    out = torch.zeros(p, logits.shape[1], dtype=logits.dtype, device=logits.device)
    return out.index_add_(0, (a + b) % p, logits)


def cos_coefficients(logits: Float[Tensor, "pair c"], p: int) -> Float[Tensor, " freq"]:
    """alpha_k = <C_k, L> for k = 1..p//2 (index k - 1), L centered over classes."""
    L = logits.double()
    L = L - L.mean(dim=1, keepdim=True)  # logits are defined up to a shift per input
    M = sum_by_residue(L, p)
    x = torch.arange(p, dtype=torch.float64, device=L.device)
    ks = torch.arange(1, n_freqs(p) + 1, dtype=torch.float64, device=L.device)
    angle = 2 * math.pi * ks[:, None] * x[None, :] / p  # [freq, residue]
    cos, sin = torch.cos(angle), torch.sin(angle)
    raw = torch.einsum("ks,sc,kc->k", cos, M, cos) + torch.einsum("ks,sc,kc->k", sin, M, sin)
    # ||C_k||^2 = sum over the cube of cos^2: p^3 / 2, or p^3 at the Nyquist frequency.
    norm_sq = torch.full_like(ks, p**3 / 2)
    if p % 2 == 0:
        norm_sq[-1] = p**3
    return raw / norm_sq.sqrt()


def fraction_explained(logits: Float[Tensor, "pair c"], p: int, freqs: list[int]) -> float:
    """Share of ||L||^2 (centered over classes) along the C_k of the given frequencies.

    The C_k are mutually orthogonal, so the share is sum_k alpha_k^2 / ||L||^2.
    """
    L = logits.double()
    L = L - L.mean(dim=1, keepdim=True)
    total = L.pow(2).sum().item()
    if total == 0:
        return 0.0
    alpha = cos_coefficients(logits, p)
    return sum(alpha[k - 1].item() ** 2 for k in freqs) / total
