"""Every progress measure on every checkpoint of a run (Nanda et al. 2023, §5).

The key frequencies are found once, on the final checkpoint, and the same set is used
for every checkpoint (REFERENCE.md §2). Checkpoints are streamed through one model per
worker thread (at most two queued per worker), so memory does not grow with their
number.

Two implementations compute the same row. ``GridMeasures`` is the fast one that
``analyze`` uses for modular addition: logits from ``GrokTransformer.grid_logits``,
and every key-frequency quantity from p x p residue sums (below). The plain
``checkpoint_measures`` applies the definitions of ``losses.py`` to the [p², p] logit
matrix directly; it serves tasks the fast path does not cover, and the tests check the
two against each other.

Why residue sums are exact: every key-frequency direction u(a, b) depends on the pair
only through s = (a + b) mod p, and so does the label. Reordering the grid rows as
(s, a), with b = s - a, the projection of the logits onto the key directions is the
same p x p table G[s, c] for all p rows of residue s, built from
M[s, c] = sum_a L[(s, a), c]. The restricted logits then have p distinct rows, one per
residue. The excluded logits L - G[s] need a log-sum-exp per row for each variant;
with E = exp(L - rowmax) computed once, sum_c exp(L - G) = sum_c E * exp(-G[s]) is one
batched product over s for all variants together. The cos(w (a + b - c))
coefficients also come from M (``logit_coefs`` derives them from the same sums).

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
import math
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor
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
from grokinterp.errors import CheckpointError
from grokinterp.fourier import embed_fourier_norms, logit_fourier_norms, per_freq_norms
from grokinterp.model import GrokTransformer
from grokinterp.runs import Run

log = logging.getLogger(__name__)

# The logit columns every row starts with, in table order.
LOGIT_COLUMNS = (
    "train_loss",
    "test_loss",
    "train_acc",
    "test_acc",
    "restricted_loss",
    "restricted_loss_test",
    "restricted_acc",
    "excluded_loss",
)


def grid_logits_and_acts(
    model: GrokTransformer, tokens: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Last-position logits [pair, c] and last-layer MLP activations [pair, d_mlp].

    One-layer models use the ``last_logits`` shortcut; deeper ones the hooked forward.
    """
    with torch.no_grad():
        if model.cfg.n_layers == 1:
            return model.last_logits(tokens, return_post=True)
        name = f"blocks.{model.cfg.n_layers - 1}.mlp.hook_post"
        full, cache = model.run_with_cache(tokens, names_filter=name)
    return full[:, -1], cache[name][:, -1]


def final_clusters(run: Run, threshold: float = DEFAULT_THRESHOLD, device: str = "cpu"):
    """Neuron clusters of the run's last checkpoint."""
    if not run.epochs:
        raise ValueError(f"{run.path} has no checkpoints to analyse")
    model = run.model(run.epochs[-1], device=device)
    if model.cfg.n_layers == 1:
        with torch.no_grad():
            _, post = model.grid_logits(return_post=True)
    else:
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
    """All measures of one checkpoint whose weights are loaded in ``model``.

    The definitions applied directly to the [pair, c] logits of ``tokens`` (any task,
    any depth). ``GridMeasures`` computes the same row faster for modular addition.
    """
    logits, _ = grid_logits_and_acts(model, tokens)
    row = logit_measures(logits, labels, train_idx, test_idx, key_freqs)
    row.update(weight_measures(model))
    return row


def logit_measures(
    logits: Float[Tensor, "pair c"],
    labels: Int[Tensor, " pair"],
    train_idx: Int[Tensor, " train"],
    test_idx: Int[Tensor, " test"],
    key_freqs: Sequence[int],
) -> dict[str, float]:
    """The logit columns of the measures table, from the grid logits (in float64)."""
    p = logits.shape[-1]
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
    row["cos_frac_explained"] = _share(
        sum((alpha[k - 1].item() ** 2 for k in key_freqs), 0.0), centered.pow(2).sum().item()
    )
    return row


def _share(part: float, total: float) -> float:
    """part / total, NaN when the logits are constant (no variance to explain)."""
    return part / total if total > 0 else math.nan


def weight_measures(model: GrokTransformer) -> dict[str, float]:
    """Gini of the W_E and W_out W_U Fourier norms, and the sum of squared weights.

    A Gini coefficient is NaN when the matrix has no non-constant Fourier component
    (all-zero weights), where it is undefined.
    """
    p = model.cfg.d_vocab_out
    with torch.no_grad():
        W_E = model.embed.W_E.double()
        W_L = model.blocks[-1].mlp.W_out.double() @ model.unembed.W_U.double()
        embed = per_freq_norms(embed_fourier_norms(W_E, p), p)
        logit = per_freq_norms(logit_fourier_norms(W_L, p), p)
        return {
            "gini_embed": gini(embed).item() if embed.sum() > 0 else math.nan,
            "gini_logit": gini(logit).item() if logit.sum() > 0 else math.nan,
            "sum_sq_weights": sum(
                param.double().pow(2).sum().item() for param in model.parameters()
            ),
        }


# Largest spread (max - min over the classes) of a key-frequency projection row for
# which exp(-G) is used; beyond it the excluded losses are computed row by row.
_MAX_PROJECTION_SPREAD = 600.0


class GridMeasures:
    """The measures of ``checkpoint_measures`` for (a + b) mod p on the full grid, fast.

    Set up once per run (index layouts, projection matrices), then called once per
    checkpoint. See the module docstring for why the residue-sum shortcut is exact;
    tests compare it with ``checkpoint_measures`` on random and trained weights.

    Example:
        >>> measure = GridMeasures(run.p, run.split.train, run.split.test, [14, 35])
        >>> row = measure(run.model(run.epochs[-1]))
    """

    def __init__(
        self,
        p: int,
        train_idx: Int[Tensor, " train"],
        test_idx: Int[Tensor, " test"],
        key_freqs: Sequence[int],
        device: str | torch.device = "cpu",
    ):
        key_freqs = sorted({int(k) for k in key_freqs})
        for k in key_freqs:
            if not 1 <= k <= p // 2:
                raise ValueError(f"key frequency {k} is outside 1..{p // 2} for p = {p}")
        self.p, self.key_freqs = p, key_freqs
        f64 = dict(dtype=torch.float64, device=device)
        s = torch.arange(p, device=device)[:, None]
        a = torch.arange(p, device=device)[None, :]
        # Row (s, a) of the residue layout is grid row a * p + b with b = (s - a) mod p.
        self.order = (a * p + (s - a) % p).reshape(-1)
        self.residues = torch.arange(p, device=device)
        member = torch.zeros(2, p * p, **f64)
        member[0, train_idx.to(device)] = 1.0
        member[1, test_idx.to(device)] = 1.0
        self.train_w, self.test_w = member[:, self.order].view(2, p, p)
        self.n_train, self.n_test = len(train_idx), len(test_idx)
        # Q_k [s, s']: maps residue sums M to the projection table G_k = Q_k M. A unit
        # grid direction with value v[s] on each of the p rows of residue s has squared
        # norm p * |v|^2. Index 0 is the sum over all key frequencies.
        r = torch.arange(p, **f64)
        blocks = []
        for k in key_freqs:
            Q = torch.zeros(p, p, **f64)
            for trig in (torch.cos, torch.sin):
                if trig is torch.sin and 2 * k == p:
                    continue  # sin(pi (a + b)) vanishes on the grid
                v = trig(2 * math.pi * k * r / p)
                Q += torch.outer(v, v) / (p * v.dot(v))
            blocks.append(Q)
        total = torch.stack(blocks).sum(0) if blocks else torch.zeros(p, p, **f64)
        self.Q = torch.stack([total, *blocks])  # [1 + key, s, s']
        # cos/sin(w_k s) for all k, for the cos(w (a + b - c)) coefficients.
        ks = torch.arange(1, p // 2 + 1, **f64)
        angle = 2 * math.pi * ks[:, None] * r[None, :] / p
        self.cos, self.sin = torch.cos(angle), torch.sin(angle)
        norm_sq = torch.full_like(ks, p**3 / 2)
        if p % 2 == 0:
            norm_sq[-1] = p**3
        self.cube_norm = norm_sq.sqrt()

    def __call__(self, model: GrokTransformer) -> dict[str, float]:
        """All measures of the checkpoint whose weights are loaded in ``model``."""
        with torch.no_grad():
            logits = model.grid_logits()
        return {**self.from_logits(logits), **weight_measures(model)}

    def from_logits(self, logits: Float[Tensor, "pair c"]) -> dict[str, float]:
        """The logit measures of ``checkpoint_measures`` from the grid logits."""
        p, n_key = self.p, len(self.key_freqs)
        L = logits.index_select(0, self.order).view(p, p, p)  # [s, a, c], input dtype
        M = L.sum(dim=1, dtype=torch.float64)  # residue sums [s, c]
        G = self.Q @ M  # key projections [1 + key, s, c]
        spread = (G.amax(dim=-1) - G.amin(dim=-1)).max().item()
        low = G.amin(dim=-1, keepdim=True)
        factor = (low - G).exp().permute(1, 2, 0)  # exp(-(G - min G)) <= 1: [s, c, 1 + key]
        G_correct = G.diagonal(dim1=1, dim2=2).T  # G_j[s, s]: [s, 1 + key]
        low = low[..., 0].T  # [s, 1 + key]

        # Per-row quantities, residues ``block`` at a time so the float64 working set
        # stays in cache: cross-entropy and the excluded cross-entropies. Row maxima
        # and arg-maxima need no float64 and are taken on all rows at once.
        top = L.amax(dim=-1).to(torch.float64)  # [s, a]
        hit = (L.argmax(dim=-1) == self.residues[:, None]).double()
        ce = torch.empty(p, p, dtype=torch.float64, device=L.device)
        excluded = torch.empty(p, p, 1 + n_key, dtype=torch.float64, device=L.device)
        square_sum = torch.zeros((), dtype=torch.float64, device=L.device)
        block = max(1, 2**16 // (p * p))
        for lo in range(0, p, block):
            hi = min(lo + block, p)
            D = L[lo:hi].to(torch.float64, copy=True)  # modified in place below
            D -= top[lo:hi, :, None]  # log-space offsets from each row's maximum, <= 0
            # the centered logits' squared norm: sum D^2 - (sum D)^2 / p per row
            flat, row_sums = D.view(-1), D.sum(dim=-1).view(-1)
            square_sum += flat.dot(flat) - row_sums.dot(row_sums) / p
            correct = D[self.residues[: hi - lo], :, self.residues[lo:hi]]  # label s
            D.exp_()
            torch.sub(D.sum(dim=-1).log_(), correct, out=ce[lo:hi])
            if spread <= _MAX_PROJECTION_SPREAD:
                sums = torch.bmm(D, factor[lo:hi])  # sum_c exp(L - top - (G - min G))
                excluded[lo:hi] = sums.log_().sub_(low[lo:hi, None]).sub_(correct[..., None])
        if spread <= _MAX_PROJECTION_SPREAD:
            excluded += G_correct[:, None, :]
        else:  # exp(-G) could overflow or lose every term: one log-sum-exp per row
            excluded = self._excluded_direct(L, G)

        restricted = M.sum(dim=0) / p**2 + G[0]  # one row per residue
        r_ce = restricted.logsumexp(dim=-1) - restricted.diagonal()
        r_hit = (restricted.argmax(dim=-1) == self.residues).double()

        Mc = M - M.mean(dim=1, keepdim=True)  # residue sums of class-centered logits
        alpha = ((self.cos @ Mc) * self.cos).sum(1) + ((self.sin @ Mc) * self.sin).sum(1)
        alpha = alpha / self.cube_norm

        def train_mean(x):
            return (x * self.train_w).sum() / self.n_train

        def test_mean(x):
            return (x * self.test_w).sum() / self.n_test

        keys = [alpha[k - 1] for k in self.key_freqs]
        values = torch.stack(
            [
                train_mean(ce),
                test_mean(ce),
                train_mean(hit),
                test_mean(hit),
                r_ce.mean(),
                (r_ce * self.test_w.sum(dim=1)).sum() / self.n_test,
                r_hit.mean(),
                *(train_mean(excluded[..., j]) for j in range(1 + n_key)),
                *keys,
                sum(x**2 for x in keys) if keys else torch.zeros((), dtype=torch.float64),
                square_sum,
            ]
        ).tolist()
        names = [
            *LOGIT_COLUMNS,
            *(f"excluded_loss_k{k}" for k in self.key_freqs),
            *(f"cos_coef_k{k}" for k in self.key_freqs),
        ]
        row = dict(zip(names, values[: len(names)], strict=True))
        row["cos_frac_explained"] = _share(values[-2], values[-1])
        return row

    def _excluded_direct(self, L, G) -> Tensor:
        """Excluded cross-entropies [s, a, 1 + key], one log-sum-exp per row and variant."""
        L = L.to(torch.float64)
        s = self.residues
        out = []
        for g in G:  # [s, c]
            x = L - g[:, None, :]
            out.append(x.logsumexp(dim=-1) - x[s, :, s])
        return torch.stack(out, dim=-1)


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
    workers: int | None = None,
) -> pd.DataFrame:
    """The progress measures of every checkpoint as a DataFrame (one row per epoch).

    Args:
        run: a run from ``load_run``.
        key_freqs: frequencies for restricted/excluded loss; default: the clusters of
            the final checkpoint.
        epochs: subset of ``run.epochs``; default all.
        device: where to compute.
        progress: show a progress bar.
        workers: checkpoints measured at once (see ``analyze``).
    """
    return analyze(run, key_freqs, epochs, device, progress, workers).measures


def default_workers(device: str | torch.device) -> int:
    """One checkpoint per torch thread on the CPU (at most 8), one on an accelerator."""
    return min(torch.get_num_threads(), 8) if torch.device(device).type == "cpu" else 1


def analyze(
    run: Run,
    key_freqs: Sequence[int] | None = None,
    epochs: Sequence[int] | None = None,
    device: str = "cpu",
    progress: bool = True,
    workers: int | None = None,
) -> Analysis:
    """``progress_measures`` plus the final-checkpoint neuron clusters.

    ``epochs`` are measured in increasing order, each once; every one must have a
    checkpoint. On the CPU, ``workers`` checkpoints are measured at once in threads,
    each with one torch thread: the per-checkpoint operations are too small to keep
    several cores busy one at a time. torch's thread count is set to 1 meanwhile and restored after.
    Rows come out in epoch order either way; the numbers are identical to a one-thread
    sequential analysis, and equal to a multi-threaded one up to float rounding.
    """
    epochs = _checked_epochs(run, epochs)
    workers = default_workers(device) if workers is None else _integer(workers, "workers")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if key_freqs is not None:  # a repeated k would be removed twice
        key_freqs = sorted({_integer(k, "a key frequency") for k in key_freqs})
    clusters = final_clusters(run, device=device)
    if key_freqs is None:
        key_freqs = clusters.key_frequencies
    log.info(
        "key frequencies %s; measuring %d checkpoints, %d at a time",
        key_freqs,
        len(epochs),
        workers,
    )
    train_idx, test_idx = run.split.train.to(device), run.split.test.to(device)
    if run.config.task.name == "add":
        measure = GridMeasures(run.p, train_idx, test_idx, key_freqs, device)
    else:  # pragma: no cover - addition is the only task today
        tokens, labels = run.tokens.to(device), run.labels.to(device)

        def measure(model):
            return checkpoint_measures(model, tokens, labels, train_idx, test_idx, key_freqs)

    models = threading.local()  # one model per thread, reloaded for each checkpoint

    def one(epoch: int) -> dict:
        if not hasattr(models, "model"):
            models.model = GrokTransformer(run.config.model).to(device).eval()
        models.model.load_state_dict(run.state_dict(epoch, device=device))
        return {"epoch": epoch, **measure(models.model)}

    bar = tqdm(total=len(epochs), desc="analyze", unit="ckpt", disable=not progress)
    rows = []
    with bar:
        for row in _in_order(one, epochs, workers):
            rows.append(row)
            bar.update()
    return Analysis(pd.DataFrame(rows), clusters)


def _integer(value, what: str) -> int:
    """``value`` as an int; ValueError for booleans and non-integral numbers."""
    try:
        as_int = int(value)
        integral = not isinstance(value, bool) and as_int == value
    except (TypeError, ValueError):
        integral = False
    if not integral:
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return as_int


def _checked_epochs(run: Run, epochs: Sequence | None) -> list[int]:
    """The epochs to measure, sorted and unique; each must have a checkpoint."""
    if epochs is None:
        return list(run.epochs)
    chosen = sorted({_integer(e, "an epoch") for e in epochs})
    if not chosen:
        raise ValueError("epochs is empty: nothing to measure (None measures every checkpoint)")
    missing = sorted(set(chosen) - set(run.epochs))
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise CheckpointError(
            f"{run.path} has no checkpoint for epoch(s) {shown}; its checkpoints are "
            f"epochs {run.epochs[0]}..{run.epochs[-1]} ({len(run.epochs)} of them, "
            "listed by run.epochs)"
            if run.epochs
            else f"{run.path} has no checkpoints"
        )
    return chosen


def _in_order(fn, items: Sequence, workers: int) -> Iterator:
    """``fn(item)`` for each item, in order, ``workers`` at a time.

    At most 2 * workers calls are queued, so memory stays flat. An exception (a bad
    checkpoint, Ctrl-C) cancels what has not started and waits for what has.
    """
    if workers == 1:
        yield from map(fn, items)
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    pool = ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,))
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)
        torch.set_num_threads(threads)
