"""A synthetic run directory for the analysis and I/O benchmarks, written in seconds.

Training a canonical run to 40k epochs takes hours, so the benchmark writes a run of
the same size and format instead: ``config.json``, ``split.json``, a full
``metrics.csv``, ``resume.safetensors`` and one checkpoint every 100 epochs, through
grokinterp's own writers. The weights move from grokinterp's initialization to a
planted Fourier circuit, plus fresh noise at each checkpoint:

- W_E maps residue x to (cos w_k x, sin w_k x) for each planted frequency k, and '='
  to a constant direction;
- W_Q = W_K = 0, so the last position attends uniformly to a, b and '=';
- head 0 copies the residual stream (W_V, W_O identities on the used dimensions);
- neuron n reads one frequency k at a phase θ_n, ReLU((cos(w a - θ) + cos(w b - θ)) / 3),
  and W_out W_U sends it to cos(w c - 2θ_n): summed over the phases, the logits lie
  along cos(w (a + b - c)), the algorithm of Nanda et al. 2023 (arXiv 2301.05217).

The final checkpoint is a working modular-addition circuit (about 97% accuracy at
p = 113) whose neurons all cluster at the planted frequencies (over 96% of their
variance in one frequency), so every measure runs on a realistic key-frequency set and
the cos(w (a + b - c)) coefficients are far from zero. The path between the
checkpoints is an interpolation, not a training trajectory; for timing and for
comparing two implementations it need not be.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save

from grokinterp.config import RunConfig
from grokinterp.model import GrokTransformer
from grokinterp.runs import (
    CKPT_DIR,
    METRIC_COLUMNS,
    METRICS_FILE,
    RESUME_FILE,
    atomic_write_bytes,
    atomic_write_text,
    save_checkpoint,
    write_run_header,
)

PAPER_FREQS = (14, 35, 41, 42, 52)  # Nanda et al. 2023, main seed, p = 113


def planted_freqs(p: int) -> list[int]:
    """The paper's key frequencies rescaled to modulus ``p``."""
    return sorted({min(max(1, round(k * p / 113)), p // 2) for k in PAPER_FREQS})


def planted_state(
    config: RunConfig, freqs, seed: int = 0, scale: float = 1.0
) -> dict[str, torch.Tensor]:
    """Weights of a model whose neurons each use one of ``freqs`` (see module doc)."""
    mcfg = config.model
    p, d_model, d_mlp = config.task.p, mcfg.d_model, mcfg.d_mlp
    const = 2 * len(freqs)
    if const + 1 > mcfg.d_head or mcfg.d_head + 2 * len(freqs) > d_model:
        raise ValueError(f"{len(freqs)} frequencies need d_head >= {const + 1}")
    gen = torch.Generator().manual_seed(seed)
    state = {k: torch.zeros_like(v) for k, v in GrokTransformer(mcfg).state_dict().items()}
    x = torch.arange(p, dtype=torch.float32)
    for i, k in enumerate(freqs):
        state["embed.W_E"][:p, 2 * i] = torch.cos(2 * math.pi * k * x / p)
        state["embed.W_E"][:p, 2 * i + 1] = torch.sin(2 * math.pi * k * x / p)
    state["embed.W_E"][p, const] = 3.0
    eye = torch.eye(d_model, mcfg.d_head)
    eye[const + 1 :] = 0
    state["blocks.0.attn.W_V"][0] = eye
    state["blocks.0.attn.W_O"][0] = eye.T
    # Neuron n reads frequency k_n at phase θ_n: pre = (cos(w a - θ) + cos(w b - θ)) / 3.
    # ReLU is convex, which puts a positive cos(w (a + b) - 2θ) term in
    # its output; W_out W_U maps it to cos(w c - 2θ), and summed over the phases this
    # gives logits along cos(w (a + b - c)), the paper's algorithm.
    theta = 2 * math.pi * torch.rand(d_mlp, generator=gen)
    which = torch.arange(d_mlp) % len(freqs)
    n = torch.arange(d_mlp)
    W_in, W_out = state["blocks.0.mlp.W_in"], state["blocks.0.mlp.W_out"]
    W_in[2 * which, n] = torch.cos(theta)
    W_in[2 * which + 1, n] = torch.sin(theta)
    out_dims = mcfg.d_head + 2 * which  # outside what head 0 copies
    W_out[n, out_dims] = torch.cos(2 * theta)
    W_out[n, out_dims + 1] = torch.sin(2 * theta)
    for i, k in enumerate(freqs):
        state["unembed.W_U"][mcfg.d_head + 2 * i] = scale * torch.cos(2 * math.pi * k * x / p)
        state["unembed.W_U"][mcfg.d_head + 2 * i + 1] = scale * torch.sin(2 * math.pi * k * x / p)
    return state


def write_synthetic_run(
    out,
    p: int = 113,
    n_checkpoints: int = 400,
    every: int = 100,
    noise: float = 0.01,
    seed: int = 0,
) -> Path:
    """Write a run of ``n_checkpoints`` canonical-size checkpoints into ``out``."""
    out = Path(out)
    (out / CKPT_DIR).mkdir(parents=True, exist_ok=False)
    last = every * (n_checkpoints - 1)
    config = RunConfig(preset="synthetic").replace(
        p=p, epochs=max(last, 1), checkpoint_every=every, early_checkpoints=0
    )
    write_run_header(out, config)

    start = GrokTransformer(config.model, seed=config.train.seed).state_dict()
    end = planted_state(config, planted_freqs(p), seed)
    gen = torch.Generator().manual_seed(seed + 1)
    for i in range(n_checkpoints):
        s = i / max(n_checkpoints - 1, 1)
        state = {
            k: (1 - s) * start[k] + s * end[k] + noise * torch.randn(end[k].shape, generator=gen)
            for k in end
        }
        save_checkpoint(out, i * every, state)

    # A metrics row per epoch and a resume file, as training leaves them.
    rng = np.random.default_rng(seed)
    epochs = np.arange(last + 1)
    values = np.exp(-epochs / 5000)[:, None] * rng.uniform(0.5, 1.5, (len(epochs), 4))
    rows = "".join(
        f"{e},{a!r},{b!r},{c!r},{d!r}\n"
        for e, (a, b, c, d) in zip(epochs.tolist(), values.tolist(), strict=True)
    )
    atomic_write_text(out / METRICS_FILE, ",".join(METRIC_COLUMNS) + "\n" + rows)
    resume = {f"param.{k}": v.contiguous() for k, v in state.items()}
    for k, v in state.items():
        resume[f"adam.exp_avg.{k}"] = torch.zeros_like(v)
        resume[f"adam.exp_avg_sq.{k}"] = torch.zeros_like(v)
        resume[f"adam.step.{k}"] = torch.tensor(float(last))
    atomic_write_bytes(
        out / RESUME_FILE, save(resume, metadata={"epoch": str(last), "finished": "true"})
    )
    return out
