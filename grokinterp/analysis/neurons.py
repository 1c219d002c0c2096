"""Neuron frequency clusters and key frequencies (Nanda et al. 2023, §4; REFERENCE.md §2).

Each neuron's last-position activation over the input grid, A[a, b], is centered and
transformed on both axes, Â = F A F^T. The fraction of the neuron explained by
frequency k is the energy of Â in the 3 x 3 block {const, cos k, sin k}^2 over the
neuron's total energy. A neuron joins the cluster of its best frequency when that
fraction is at least the threshold (0.85 in the paper), else no cluster. Key
frequencies are those with a non-empty cluster; unlike the reference notebook, the
threshold is applied before taking the arg-max, so a frequency no neuron really uses
is never admitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from grokinterp.fourier import component_index, fourier_basis, n_freqs

DEFAULT_THRESHOLD = 0.85


@dataclass(frozen=True)
class NeuronClusters:
    """Result of ``neuron_clusters``.

    Attributes:
        frac_explained: [neuron, freq] fraction of each neuron explained by k = 1..p//2.
        best_freq: [neuron] frequency with the largest fraction.
        cluster: [neuron] best frequency if its fraction >= threshold, else 0.
        threshold: the threshold used.
    """

    frac_explained: Tensor
    best_freq: Tensor
    cluster: Tensor
    threshold: float

    @property
    def key_frequencies(self) -> list[int]:
        return sorted(int(k) for k in torch.unique(self.cluster) if k > 0)

    @property
    def cluster_sizes(self) -> dict[int, int]:
        return {k: int((self.cluster == k).sum()) for k in self.key_frequencies}

    @property
    def n_unexplained(self) -> int:
        return int((self.cluster == 0).sum())

    @property
    def fraction_explained(self) -> float:
        """Fraction of neurons that belong to some cluster."""
        return 1.0 - self.n_unexplained / self.cluster.numel()


def neuron_clusters(
    acts: Float[Tensor, "a b neuron"], threshold: float = DEFAULT_THRESHOLD
) -> NeuronClusters:
    """Cluster neurons by frequency from their activations over the whole grid.

    Args:
        acts: [p, p, neuron] activations (e.g. ``blocks.0.mlp.hook_post`` at the last
            position, reshaped to the grid).
        threshold: minimum fraction of a neuron's energy in one frequency's block.

    Returns:
        NeuronClusters. Dead neurons (zero variance) explain nothing and join no cluster.
    """
    if acts.ndim != 3 or acts.shape[0] != acts.shape[1]:
        raise ValueError(f"acts must have shape [p, p, neuron], got {tuple(acts.shape)}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    p = acts.shape[0]
    x = acts.double()
    x = x - x.mean(dim=(0, 1), keepdim=True)
    fb = fourier_basis(p).to(x.device)
    coeffs = torch.einsum("ia,abn,jb->nij", fb, x, fb)  # [neuron, comp, comp]
    energy = coeffs.pow(2)
    total = energy.sum(dim=(1, 2))
    fracs = torch.zeros(acts.shape[2], n_freqs(p), dtype=torch.float64, device=x.device)
    for k in range(1, n_freqs(p) + 1):
        cos, sin = component_index(p, k)
        rows = [0, cos] if sin is None else [0, cos, sin]
        idx = torch.tensor(rows, device=x.device)
        fracs[:, k - 1] = energy[:, idx][:, :, idx].sum(dim=(1, 2))
    fracs = fracs / total.clamp_min(torch.finfo(torch.float64).tiny).unsqueeze(1)
    fracs[total == 0] = 0.0
    best_val, best_idx = fracs.max(dim=1)
    best = best_idx + 1
    cluster = torch.where(best_val >= threshold, best, torch.zeros_like(best))
    return NeuronClusters(fracs.float(), best, cluster, threshold)
