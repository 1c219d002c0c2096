"""Proposal, not package code: the progress measures from residue sums of the logits.

docs/performance.md ("Analysis: where the time goes") explains the idea: every
key-frequency direction depends on (a, b) only through s = (a + b) mod p, so the
projections of the [p², p] logit matrix reduce to p x p matrices built from
M[s, c] = sum over a + b = s of L[(a, b), c], and each excluded variant only needs
the train rows. This script checks that ``residue_sum_measures`` gives the same row
as ``grokinterp.analysis.measures.checkpoint_measures`` and times both:

    .venv/bin/python benchmarks/proposals/residue_sum_measures.py --p 113

It is here for the owners of ``grokinterp/analysis`` to adopt or discard.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synthetic_run import write_synthetic_run  # noqa: E402

from grokinterp.analysis.measures import checkpoint_measures, final_clusters  # noqa: E402
from grokinterp.analysis.sparsity import gini  # noqa: E402
from grokinterp.fourier import (  # noqa: E402
    embed_fourier_norms,
    logit_fourier_norms,
    per_freq_norms,
)
from grokinterp.model import GrokTransformer  # noqa: E402
from grokinterp.runs import load_run  # noqa: E402


def _ce(logits, labels) -> float:
    return F.cross_entropy(logits, labels).item()


def _acc(logits, labels) -> float:
    return (logits.argmax(-1) == labels).double().mean().item()


def key_projection_tables(M, p: int, key_freqs) -> dict[int, torch.Tensor]:
    """G_k[s, c]: the projection of any grid row with residue s on frequency k."""
    r = torch.arange(p, dtype=torch.float64)
    tables = {}
    for k in key_freqs:
        G = torch.zeros(p, p, dtype=torch.float64)
        for trig in (torch.cos, torch.sin):
            v = trig(2 * math.pi * k * r / p)  # the direction's value at residue s
            norm_sq = p * v.pow(2).sum()  # each residue occurs p times on the grid
            if norm_sq > 1e-9:  # sin at the Nyquist frequency of even p
                G += torch.outer(v, v @ M) / norm_sq
        tables[k] = G
    return tables


def residue_sum_measures(model, tokens, labels, train_idx, test_idx, key_freqs) -> dict:
    """The row of ``checkpoint_measures`` for a 1-layer model, via residue sums."""
    p = model.cfg.d_vocab_out
    with torch.no_grad():
        logits = model.last_logits(tokens).double()
    s_idx = (tokens[:, 0] + tokens[:, 1]) % p
    M = torch.zeros(p, p, dtype=torch.float64).index_add_(0, s_idx, logits)
    tables = key_projection_tables(M, p, key_freqs)
    G = sum(tables.values()) if tables else torch.zeros(p, p, dtype=torch.float64)
    y_tr, y_te = labels[train_idx], labels[test_idx]
    L_tr, L_te, s_tr = logits[train_idx], logits[test_idx], s_idx[train_idx]
    restricted = logits.mean(0, keepdim=True) + G[s_idx]
    row = {
        "train_loss": _ce(L_tr, y_tr),
        "test_loss": _ce(L_te, y_te),
        "train_acc": _acc(L_tr, y_tr),
        "test_acc": _acc(L_te, y_te),
        "restricted_loss": _ce(restricted, labels),
        "restricted_loss_test": _ce(restricted[test_idx], y_te),
        "restricted_acc": _acc(restricted, labels),
        "excluded_loss": _ce(L_tr - G[s_tr], y_tr),
    }
    for k in key_freqs:
        row[f"excluded_loss_k{k}"] = _ce(L_tr - tables[k][s_tr], y_tr)

    # cos(w (a + b - c)) coefficients from the residue sums of class-centered logits
    Mc = M - M.mean(dim=1, keepdim=True)
    r = torch.arange(p, dtype=torch.float64)
    ks = torch.arange(1, p // 2 + 1, dtype=torch.float64)
    angle = 2 * math.pi * ks[:, None] * r[None, :] / p
    cos, sin = torch.cos(angle), torch.sin(angle)
    norm_sq = torch.full_like(ks, p**3 / 2)
    if p % 2 == 0:
        norm_sq[-1] = p**3
    alpha = (((cos @ Mc) * cos).sum(1) + ((sin @ Mc) * sin).sum(1)) / norm_sq.sqrt()
    centered_sq = (logits.pow(2).sum() - logits.sum(1).pow(2).sum() / p).item()
    for k in key_freqs:
        row[f"cos_coef_k{k}"] = alpha[k - 1].item()
    row["cos_frac_explained"] = sum(alpha[k - 1].item() ** 2 for k in key_freqs) / centered_sq

    with torch.no_grad():
        W_E = model.embed.W_E.double()
        W_L = model.blocks[-1].mlp.W_out.double() @ model.unembed.W_U.double()
        row["gini_embed"] = gini(per_freq_norms(embed_fourier_norms(W_E, p), p)).item()
        row["gini_logit"] = gini(per_freq_norms(logit_fourier_norms(W_L, p), p)).item()
        row["sum_sq_weights"] = sum(q.double().pow(2).sum().item() for q in model.parameters())
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--p", type=int, default=113)
    parser.add_argument("--checkpoints", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        run = load_run(write_synthetic_run(Path(tmp) / "run", args.p, args.checkpoints))
        key_freqs = final_clusters(run).key_frequencies
        model = GrokTransformer(run.config.model).eval()
        data = (run.tokens, run.labels, run.split.train, run.split.test, key_freqs)
        now, proposed, forward, worst = [], [], [], 0.0
        for epoch in run.epochs:
            model.load_state_dict(run.state_dict(epoch))
            t0 = time.perf_counter()
            a = checkpoint_measures(model, *data)
            t1 = time.perf_counter()
            b = residue_sum_measures(model, *data)
            t2 = time.perf_counter()
            with torch.no_grad():
                model.last_logits(run.tokens)
            t3 = time.perf_counter()
            now.append(t1 - t0)
            proposed.append(t2 - t1)
            forward.append(t3 - t2)
            for key, value in a.items():
                scale = max(abs(value), 1e-3 if key.startswith("cos_coef") else 1e-300)
                worst = max(worst, abs(value - b[key]) / scale)
    med = statistics.median
    print(
        f"p = {args.p}: checkpoint_measures {med(now):.3f} s, residue sums "
        f"{med(proposed):.3f} s, forward alone {med(forward):.3f} s per checkpoint; "
        f"largest difference {worst:.1e}"
    )


if __name__ == "__main__":
    main()
