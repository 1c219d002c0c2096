"""Every progress measure on every checkpoint of a run (Nanda et al. 2023, §5).

The key frequencies are found once, on the final checkpoint, and the same set is used
for every checkpoint (REFERENCE.md §2). Checkpoints are streamed one at a time into a
single model, so memory does not grow with their number; logits come from the exact
last-position shortcut ``GrokTransformer.last_logits``.

Known gap: at p = 113 a checkpoint costs ~0.3 s on one loaded core, 3.5x less than
the TransformerLens reference but short of the 10x target (docs/performance.md). The
key-frequency projections could be built from p x p residue sums instead of the
[p^2, p] logits (prototype in benchmarks/proposals/residue_sum_measures.py).

Columns of the table (losses are float64 cross-entropies):

    epoch
    train_loss, test_loss, train_acc, test_acc   on the run's own split
    restricted_loss        restricted logits, all p^2 pairs (as the paper plots it)
    restricted_loss_test   restricted logits, test pairs
    restricted_acc         arg-max accuracy of the restricted logits, all pairs
    excluded_loss          excluded logits, train pairs
    excluded_loss_k{k}     one key frequency removed at a time, train pairs
    gini_embed, gini_logit Gini of per-frequency Fourier norms of W_E[:p] and W_out W_U
    sum_sq_weights         sum over all parameters of the squared entries
    cos_coef_k{k}          coefficient of the logits along cos(w_k (a + b - c)), key k
    cos_frac_explained     share of the logits' squared norm along those key directions
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from tqdm.auto import tqdm

from grokinterp.analysis.logit_coefs import cos_coefficients
from grokinterp.analysis.losses import (
    accuracy,
    cross_entropy,
    excluded_logits,
    restricted_logits,
)
from grokinterp.analysis.neurons import DEFAULT_THRESHOLD, NeuronClusters, neuron_clusters
from grokinterp.analysis.sparsity import gini
from grokinterp.fourier import embed_fourier_norms, logit_fourier_norms, per_freq_norms
from grokinterp.model import GrokTransformer
from grokinterp.runs import Run

log = logging.getLogger(__name__)


def grid_logits_and_acts(
    model: GrokTransformer, tokens: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Last-position logits [pair, c] and MLP activations [pair, d_mlp] on the grid."""
    with torch.no_grad():
        logits, post = model.last_logits(tokens, return_post=True)
    if post is None:  # deeper models: read the cache instead of the shortcut
        with torch.no_grad():
            full, cache = model.run_with_cache(tokens, names_filter=lambda n: "hook_post" in n)
        last = max(k for k in cache.keys())
        logits, post = full[:, -1], cache[last][:, -1]
    return logits, post


def final_clusters(run: Run, threshold: float = DEFAULT_THRESHOLD, device: str = "cpu"):
    """Neuron clusters of the run's last checkpoint."""
    if not run.epochs:
        raise ValueError(f"{run.path} has no checkpoints to analyse")
    model = run.model(run.epochs[-1], device=device)
    _, post = grid_logits_and_acts(model, run.tokens.to(device))
    p = run.p
    return neuron_clusters(post.reshape(p, p, -1).cpu(), threshold=threshold)


def checkpoint_measures(
    model: GrokTransformer,
    tokens: torch.Tensor,
    labels: torch.Tensor,
    train_idx: torch.Tensor,
    test_idx: torch.Tensor,
    key_freqs: Sequence[int],
) -> dict[str, float]:
    """All measures of one checkpoint whose weights are loaded in ``model``."""
    p = model.cfg.d_vocab_out
    logits, _ = grid_logits_and_acts(model, tokens)
    logits = logits.double()
    res = restricted_logits(logits, p, key_freqs)
    exc = excluded_logits(logits, p, key_freqs)
    row = {
        "train_loss": cross_entropy(logits[train_idx], labels[train_idx]),
        "test_loss": cross_entropy(logits[test_idx], labels[test_idx]),
        "train_acc": accuracy(logits[train_idx], labels[train_idx]),
        "test_acc": accuracy(logits[test_idx], labels[test_idx]),
        "restricted_loss": cross_entropy(res, labels),
        "restricted_loss_test": cross_entropy(res[test_idx], labels[test_idx]),
        "restricted_acc": accuracy(res, labels),
        "excluded_loss": cross_entropy(exc[train_idx], labels[train_idx]),
    }
    for k in key_freqs:
        one = excluded_logits(logits, p, [k])
        row[f"excluded_loss_k{k}"] = cross_entropy(one[train_idx], labels[train_idx])
    alpha = cos_coefficients(logits, p)
    centered = logits - logits.mean(dim=1, keepdim=True)
    for k in key_freqs:
        row[f"cos_coef_k{k}"] = alpha[k - 1].item()
    row["cos_frac_explained"] = (
        sum(alpha[k - 1].item() ** 2 for k in key_freqs) / centered.pow(2).sum().item()
    )
    with torch.no_grad():
        W_E = model.embed.W_E.double()
        W_L = model.blocks[-1].mlp.W_out.double() @ model.unembed.W_U.double()
        row["gini_embed"] = gini(per_freq_norms(embed_fourier_norms(W_E, p), p)).item()
        row["gini_logit"] = gini(per_freq_norms(logit_fourier_norms(W_L, p), p)).item()
        row["sum_sq_weights"] = sum(
            param.double().pow(2).sum().item() for param in model.parameters()
        )
    return row


@dataclass
class Analysis:
    """Measures of a run: the per-checkpoint table and the final neuron clusters."""

    measures: pd.DataFrame
    clusters: NeuronClusters

    @property
    def key_frequencies(self) -> list[int]:
        return self.clusters.key_frequencies


def progress_measures(
    run: Run,
    key_freqs: Sequence[int] | None = None,
    epochs: Sequence[int] | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> pd.DataFrame:
    """The progress measures of every checkpoint as a DataFrame (one row per epoch).

    Args:
        run: a run from ``load_run``.
        key_freqs: frequencies for restricted/excluded loss; default: the clusters of
            the final checkpoint.
        epochs: subset of ``run.epochs``; default all.
        device: where to compute.
        progress: show a progress bar.
    """
    return analyze(run, key_freqs, epochs, device, progress).measures


def analyze(
    run: Run,
    key_freqs: Sequence[int] | None = None,
    epochs: Sequence[int] | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> Analysis:
    """``progress_measures`` plus the final-checkpoint neuron clusters."""
    clusters = final_clusters(run, device=device)
    if key_freqs is None:
        key_freqs = clusters.key_frequencies
    key_freqs = sorted({int(k) for k in key_freqs})  # a repeated k would be removed twice
    epochs = run.epochs if epochs is None else list(epochs)
    log.info("key frequencies %s; measuring %d checkpoints", key_freqs, len(epochs))
    tokens = run.tokens.to(device)
    labels = run.labels.to(device)
    split = run.split
    train_idx, test_idx = split.train.to(device), split.test.to(device)
    model = GrokTransformer(run.config.model).to(device).eval()
    rows = []
    for epoch in tqdm(epochs, desc="analyze", unit="ckpt", disable=not progress):
        model.load_state_dict(run.state_dict(epoch, device=device))
        row = checkpoint_measures(model, tokens, labels, train_idx, test_idx, key_freqs)
        rows.append({"epoch": epoch, **row})
    return Analysis(pd.DataFrame(rows), clusters)
