"""Reference analysis: the progress measures computed the way the paper's notebook does.

The baseline of the analysis benchmark (docs/performance.md). For every checkpoint it
builds a TransformerLens model (``TransformerBridge.boot_native`` with the checkpoint's
weights converted by ``convert_tl_checkpoint``), runs ``run_with_cache`` on all p²
inputs and computes each column of grokinterp's measures table from the cached logits
and the model's weights. The measure code below is written independently of
``grokinterp.analysis`` (its own Fourier basis, ordered sin before cos as in the
TransformerLens demo, its own projections, cross-entropy and Gini), so agreement is a
check of both.

Only the key frequencies are taken from grokinterp, so that both compute on the same
set; ``neuron_key_frequencies`` recomputes them from the cache as a separate check.

    .venv/bin/python benchmarks/reference_analysis.py RUN_DIR --key-freqs 14 35 41 --limit 5
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import pandas as pd
import torch

from grokinterp.runs import load_run

try:  # run as a script from benchmarks/, or imported as benchmarks.reference_analysis
    from reference_trainer import bridge_config, bridge_from_state
except ImportError:  # pragma: no cover
    from benchmarks.reference_trainer import bridge_config, bridge_from_state


def make_fourier_basis(p):
    """Rows: constant, then sin k and cos k for k = 1..p//2, each of unit norm."""
    x = torch.arange(p, dtype=torch.float64)
    pairs = [("const", torch.ones(p, dtype=torch.float64))]
    for k in range(1, p // 2 + 1):
        w = 2 * math.pi * k / p
        pairs += [(f"sin {k}", torch.sin(w * x)), (f"cos {k}", torch.cos(w * x))]
    pairs = [(name, v) for name, v in pairs if v.norm() > 1e-9]  # sin(pi x) = 0, even p
    basis = torch.stack([v / v.norm() for _, v in pairs])
    return basis, [name for name, _ in pairs]


def freq_norms(component_norms, names, p):
    """sqrt(sin² + cos²) per frequency k = 1..p//2 from per-component norms."""
    out = torch.zeros(p // 2, dtype=torch.float64)
    for value, name in zip(component_norms, names, strict=True):
        if name != "const":
            out[int(name.split()[1]) - 1] += value**2
    return out.sqrt()


def gini_coefficient(values):
    """Hurley and Rickard (2009): 1 - 2 sum_i (c_(i)/|c|_1) (N - i + 1/2) / N."""
    c = np.sort(values.numpy())
    n = len(c)
    i = np.arange(1, n + 1)
    return float(1 - 2 * np.sum(c / c.sum() * (n - i + 0.5) / n))


def loss_fn(logits, labels):
    """Mean cross-entropy in float64."""
    log_probs = logits.to(torch.float64).log_softmax(dim=-1)
    return -log_probs.gather(-1, labels[:, None])[:, 0].mean().item()


def acc_fn(logits, labels):
    return (logits.argmax(dim=-1) == labels).to(torch.float64).mean().item()


def apb_direction(p, k, trig):
    """Unit vector over the (a, b) grid along trig(w_k (a + b)), or None if zero."""
    a = torch.arange(p, dtype=torch.float64)[:, None]
    b = torch.arange(p, dtype=torch.float64)[None, :]
    v = trig(2 * math.pi * k * (a + b) / p).flatten()
    return None if v.norm() < 1e-9 else v / v.norm()


def key_freq_terms(logits, p, freqs):
    """Sum of the projections of the logits on cos/sin(w_k (a + b)), k in freqs."""
    total = torch.zeros_like(logits)
    for k in freqs:
        for trig in (torch.cos, torch.sin):
            v = apb_direction(p, k, trig)
            if v is not None:
                total += v[:, None] * (v @ logits)[None, :]
    return total


def neuron_key_frequencies(post, p, threshold=0.85):
    """Key frequencies from last-position MLP activations [p*p, d_mlp], notebook style."""
    basis, names = make_fourier_basis(p)
    acts = post.to(torch.float64).reshape(p, p, -1)
    acts = acts - acts.mean(dim=(0, 1), keepdim=True)
    fourier = torch.einsum("ia,abn,jb->nij", basis, acts, basis)
    energy = fourier.pow(2)
    total = energy.sum(dim=(1, 2))
    fracs = []
    for k in range(1, p // 2 + 1):
        idx = [0] + [i for i, n in enumerate(names) if n in (f"sin {k}", f"cos {k}")]
        fracs.append(energy[:, idx][:, :, idx].sum(dim=(1, 2)) / total)
    fracs = torch.stack(fracs, dim=1).nan_to_num(0.0)
    best_frac, best = fracs.max(dim=1)
    return sorted({int(k) + 1 for k, f in zip(best, best_frac, strict=True) if f >= threshold})


def reference_measures(
    state, p, labels, train_idx, test_idx, key_freqs, cfg=None, device="cpu", dtype=None
):
    """Every column of grokinterp's measures table for one checkpoint's ``state``.

    ``dtype=torch.float64`` runs the model in float64 (for exactness checks).
    """
    cfg = cfg or bridge_config(p)
    model = bridge_from_state(cfg, state, device)
    if dtype is not None:
        model = model.to(dtype)
    tokens = torch.stack(torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij"))
    tokens = torch.cat([tokens.reshape(2, -1).T, torch.full((p * p, 1), p)], dim=1)
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens.to(device))
    logits = logits[:, -1].cpu().to(torch.float64)
    labels, train_idx, test_idx = labels.cpu(), train_idx.cpu(), test_idx.cpu()

    key = key_freq_terms(logits, p, key_freqs)
    restricted = logits.mean(dim=0, keepdim=True) + key
    excluded = logits - key
    row = {
        "train_loss": loss_fn(logits[train_idx], labels[train_idx]),
        "test_loss": loss_fn(logits[test_idx], labels[test_idx]),
        "train_acc": acc_fn(logits[train_idx], labels[train_idx]),
        "test_acc": acc_fn(logits[test_idx], labels[test_idx]),
        "restricted_loss": loss_fn(restricted, labels),
        "restricted_loss_test": loss_fn(restricted[test_idx], labels[test_idx]),
        "restricted_acc": acc_fn(restricted, labels),
        "excluded_loss": loss_fn(excluded[train_idx], labels[train_idx]),
    }
    for k in key_freqs:
        one = logits - key_freq_terms(logits, p, [k])
        row[f"excluded_loss_k{k}"] = loss_fn(one[train_idx], labels[train_idx])

    # cos(w_k (a + b - c)) coefficients: one explicit p x p x p cube per key frequency,
    # on logits centered over the classes.
    centered = (logits - logits.mean(dim=1, keepdim=True)).reshape(p, p, p)
    r = torch.arange(p, dtype=torch.float64)
    a_plus_b_minus_c = r[:, None, None] + r[None, :, None] - r[None, None, :]
    alphas = {}
    for k in key_freqs:
        cube = torch.cos(2 * math.pi * k * a_plus_b_minus_c / p)
        alphas[k] = ((cube / cube.norm()) * centered).sum().item()
        row[f"cos_coef_k{k}"] = alphas[k]
    row["cos_frac_explained"] = sum(v**2 for v in alphas.values()) / centered.pow(2).sum().item()
    row["_centered_norm"] = centered.norm().item()  # the scale of the alphas

    # Weights as the notebook reads them: W_E [d_vocab, d_model], W_out [d_mlp, d_model],
    # W_U [d_model, p]; the bridge stores nn.Linear weights, hence the transposes.
    weights = model.state_dict()
    W_E = weights["embed.weight"].cpu().double()
    W_out = weights["blocks.0.mlp.out.weight"].cpu().double().T
    W_U = weights["unembed.weight"].cpu().double().T
    basis, names = make_fourier_basis(p)
    embed_norms = (basis @ W_E[:p]).norm(dim=1)
    logit_norms = ((W_out @ W_U) @ basis.T).norm(dim=0)
    row["gini_embed"] = gini_coefficient(freq_norms(embed_norms, names, p))
    row["gini_logit"] = gini_coefficient(freq_norms(logit_norms, names, p))
    row["sum_sq_weights"] = sum(
        q.detach().cpu().double().pow(2).sum().item() for q in model.parameters()
    )
    row["_post"] = cache["blocks.0.mlp.hook_post"][:, -1].cpu()
    return row


def reference_analyze(run_dir, key_freqs, epochs=None, device="cpu", dtype=None) -> pd.DataFrame:
    """The measures table of ``run_dir``, one checkpoint at a time, notebook style."""
    run = load_run(run_dir)
    p, mcfg = run.p, run.config.model
    cfg = bridge_config(p, mcfg.d_model, mcfg.n_heads, mcfg.d_head, mcfg.d_mlp)
    labels = run.labels
    train_idx, test_idx = run.split.train, run.split.test
    rows = []
    for epoch in run.epochs if epochs is None else epochs:
        state = run.state_dict(epoch)
        row = reference_measures(
            state, p, labels, train_idx, test_idx, key_freqs, cfg, device, dtype
        )
        row.pop("_post")
        rows.append({"epoch": epoch, **row})
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--key-freqs", type=int, nargs="+", required=True)
    parser.add_argument("--limit", type=int, default=None, help="first N checkpoints only")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    epochs = load_run(args.run_dir).epochs[: args.limit]
    start = time.perf_counter()
    table = reference_analyze(args.run_dir, args.key_freqs, epochs, args.device)
    elapsed = time.perf_counter() - start
    print(table.to_string())
    print(f"{len(epochs)} checkpoints in {elapsed:.1f} s ({elapsed / len(epochs):.2f} s each)")
    print(json.dumps({"checkpoints": len(epochs), "loop_s": elapsed}))


if __name__ == "__main__":
    main()
