"""The Fourier basis over the residues mod p (REFERENCE.md §2).

Rows are ordered ``const, cos 1, sin 1, cos 2, sin 2, ...`` (cos before sin; the
TransformerLens demo puts sin first). Each row has unit norm, so the basis is
orthonormal. For even p the Nyquist frequency k = p/2 has a cos row, (-1)^x / sqrt(p),
and no sin row, since sin(pi x) vanishes on the integers.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from jaxtyping import Float
from torch import Tensor


def n_freqs(p: int) -> int:
    """Number of non-constant frequencies, p // 2."""
    return p // 2


@lru_cache(maxsize=16)
def _basis(p: int) -> Tensor:
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, n_freqs(p) + 1):
        w = 2 * math.pi * k / p
        rows.append(torch.cos(w * x))
        if 2 * k != p:
            rows.append(torch.sin(w * x))
    basis = torch.stack(rows)
    return basis / basis.norm(dim=1, keepdim=True)


def fourier_basis(p: int, dtype: torch.dtype = torch.float64) -> Float[Tensor, "p p"]:
    """Orthonormal p x p basis; row i is component ``component_names(p)[i]``."""
    if p < 2:
        raise ValueError(f"p must be at least 2, got {p}")
    return _basis(p).to(dtype).clone()


def component_names(p: int) -> list[str]:
    """Labels of the basis rows: ``const, cos 1, sin 1, ...``."""
    names = ["const"]
    for k in range(1, n_freqs(p) + 1):
        names.append(f"cos {k}")
        if 2 * k != p:
            names.append(f"sin {k}")
    return names


def component_freqs(p: int) -> Tensor:
    """Frequency of each basis row (0 for the constant)."""
    freqs = [0]
    for k in range(1, n_freqs(p) + 1):
        freqs.extend([k] if 2 * k == p else [k, k])
    return torch.tensor(freqs)


def component_index(p: int, k: int) -> tuple[int, int | None]:
    """Rows of cos k and sin k (sin is None at the Nyquist frequency of even p)."""
    if not 1 <= k <= n_freqs(p):
        raise ValueError(f"frequency must be in 1..{n_freqs(p)} for p = {p}, got {k}")
    cos = 2 * k - 1
    return cos, (None if 2 * k == p else cos + 1)


def per_freq_norms(component_norms: Float[Tensor, "... p"], p: int) -> Float[Tensor, "... freq"]:
    """Combine the cos and sin components of each frequency as sqrt(cos^2 + sin^2).

    The constant component is dropped; the result is indexed by k - 1 for k = 1..p//2.
    """
    freqs = component_freqs(p).to(component_norms.device)
    sq = component_norms.pow(2)
    out = torch.zeros(*sq.shape[:-1], n_freqs(p) + 1, dtype=sq.dtype, device=sq.device)
    out.index_add_(-1, freqs, sq)
    return out[..., 1:].sqrt()


def embed_fourier_norms(W_E: Float[Tensor, "d_vocab d_model"], p: int) -> Float[Tensor, " p"]:
    """Norm of each Fourier component of the number-token embedding W_E[:p]."""
    fb = fourier_basis(p, W_E.dtype).to(W_E.device)
    return (fb @ W_E[:p]).norm(dim=-1)


def logit_fourier_norms(W_L: Float[Tensor, "d_mlp p"], p: int) -> Float[Tensor, " p"]:
    """Norm of each Fourier component of the neuron-logit map W_L = W_out @ W_U."""
    fb = fourier_basis(p, W_L.dtype).to(W_L.device)
    return (W_L @ fb.T).norm(dim=0)
